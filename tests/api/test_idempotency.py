"""Every route that moves money or creates something, under one property: the same Idempotency-Key and request
replays the first response and changes nothing; the same key with another request is 409 and changes nothing.
Nothing here means no row in any table and the same trial balance, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from openice.access.keys import ApiKeys
from openice.storage import servicing_tables
from openice.storage.schema import metadata
from tests.api.conftest import World
from tests.api.test_collections import PROMISE, cases_by_loan
from tests.api.test_offers import draw, manual_world
from tests.decisioning.helpers import application_body, person
from tests.matching.test_boxes import body, institution


def state(world: World) -> dict[str, int]:
    """Rows in every table, and the sum of every journal line (zero while the books balance)."""
    with world.engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }
        lines = servicing_tables.journal_lines.c.amount
        counts["trial balance"] = conn.execute(select(func.coalesce(func.sum(lines), 0))).scalar_one()
    return counts


def once(
    world: World, who: str, url: str, body: Any, other: tuple[str, Any], key: str, shown_once: str | None = None
) -> dict[str, Any]:
    """POST `body` to `url` under `key`, then again (a replay), then `other` (url, body) under the same key."""
    first = world.call(who, "POST", url, key=key, json=body)
    assert first.status_code == 201, (url, first.text)
    before = state(world)
    again = world.call(who, "POST", url, key=key, json=body)
    expected = {**first.json(), shown_once: None} if shown_once else first.json()  # a secret is never stored
    assert (again.status_code, again.json()) == (201, expected), url
    assert state(world) == before, url
    other_url, other_body = other
    clash = world.call(who, "POST", other_url, key=key, json=other_body)
    assert clash.status_code == 409 and clash.json()["field"] == "idempotency_key", (url, clash.text)
    assert state(world) == before, url
    return first.json()


def test_every_creating_and_money_route_replays_once_and_refuses_another_request(world: World) -> None:
    bid, line, loan, other_loan = (*(world.ids[1][k] for k in ("borrower", "line", "loan")), world.ids[2]["loan"])
    reg, other_reg = (person(k) for k in (3, 4))
    for r in (reg, other_reg):
        r["date_of_birth"] = r["date_of_birth"].isoformat()
    once(world, "operator", "/v1/borrowers", reg, ("/v1/borrowers", other_reg), "reg")
    applications = f"/v1/borrowers/{bid}/applications"
    once(world, "borrower1", applications, application_body(), (applications, application_body(purpose="x")), "app")
    drawdowns = f"/v1/credit-lines/{line}/drawdowns"
    drawdown = {"amount": "1000.00", "currency": "CNY", "tenor": 12}
    once(world, "borrower1", drawdowns, drawdown, (drawdowns, {**drawdown, "amount": "2000.00"}), "dd")
    new_key = {"role": "institution", "tenant": "INST-A"}
    made = once(
        world, "operator", "/v1/api-keys", new_key, ("/v1/api-keys", {**new_key, "tenant": "INST-B"}), "ak", "secret"
    )
    spare = ApiKeys(world.engine).create("institution", "INST-B")["id"]
    rotation = f"/v1/api-keys/{made['id']}/rotation"
    once(world, "operator", rotation, None, (f"/v1/api-keys/{spare}/rotation", None), "rot", "secret")
    tenant = {"institution": body(institution("INST-T")), "admin_email": "admin@inst-t.cn"}
    other_tenant = {**tenant, "admin_email": "other@inst-t.cn"}
    once(world, "operator", "/v1/tenants", tenant, ("/v1/tenants", other_tenant), "tenant", "secrets")
    own_keys = "/v1/institutions/INST-A/keys"
    mine = once(world, "INST-A", own_keys, {"label": "a"}, (own_keys, {"label": "b"}), "own-ak", "secret")
    own_rotation = f"{own_keys}/{mine['id']}/rotation"
    other_rotation = (f"{own_keys}/{mine['id']}/rotation?overlap_hours=0", None)
    once(world, "INST-A", own_rotation, None, other_rotation, "own-rot", "secret")
    settlement = "/v1/institutions/INST-A/referral-settlements"
    fee = {"amount": "1.00", "currency": "CNY"}
    once(world, "operator", settlement, fee, (settlement, {**fee, "amount": "2.00"}), "fee")

    manual_line, _ = manual_world(world)
    for verb, path in (("accept", "acceptance"), ("decline", "decline")):
        drawn = draw(world, manual_line, f"dd-{verb}")["id"]
        offer = world.call("INST-M", "GET", "/v1/offers", params={"drawdown_id": drawn}).json()["items"][0]["id"]
        url = f"/v1/offers/{offer}/{path}"
        once(world, "INST-M", url, {"reason": "fits"}, (url, {"reason": "changed our mind"}), verb)

    world.first_due()
    case = cases_by_loan(world, "collections")[loan]["id"]
    contacts = f"/v1/collections/cases/{case}/contacts"
    once(world, "collections", contacts, PROMISE, (contacts, {"channel": "sms", "outcome": "no_answer"}), "contact")
    assignments = "/v1/collections/assignments"
    once(world, "operator", assignments, {"agents": ["ann"]}, (assignments, {"agents": ["bob"]}), "assign")
    payment = {"amount": "10.00", "currency": "CNY"}
    repayments, prepayments = f"/v1/loans/{loan}/repayments", f"/v1/loans/{loan}/prepayments"
    paid = once(world, "borrower1", repayments, payment, (repayments, {**payment, "amount": "20.00"}), "pay")
    prepayment = {"amount": "3000.00", "currency": "CNY", "mode": "shorten"}
    prepaid = once(
        world, "borrower1", prepayments, prepayment, (prepayments, {**prepayment, "amount": "3100.00"}), "pre"
    )
    reversal = "/v1/transactions/{}/reversal"
    undo = (reversal.format(prepaid["transaction_id"]), None)
    once(world, "operator", reversal.format(paid["transaction_id"]), None, undo, "undo")
    write_off = f"/v1/loans/{other_loan}/write-off"
    once(world, "operator", write_off, {"reason": "fraud"}, (write_off, {"reason": "deceased"}), "wo")
    recoveries = f"/v1/loans/{other_loan}/recoveries"
    once(world, "collections", recoveries, payment, (recoveries, {**payment, "amount": "20.00"}), "rec")
    statement = "/v1/institutions/INST-A/settlements/{}/paid"
    once(world, "operator", statement.format("CNY-2026-01"), None, (statement.format("CNY-2026-02"), None), "settle")
    pushed = {"reference": "D-1", "decided_on": "2026-01-15", "outcome": "approved", "model_hash": "0" * 64}
    decisions = "/v1/hybrid/decisions"
    once(world, "INST-A", decisions, {"decisions": [pushed]}, (decisions, {"decisions": [pushed] * 2}), "hybrid-d")
    outcome = {"reference": "D-1", "months_on_book": 3, "bad": False}
    outcomes = "/v1/hybrid/outcomes"
    once(world, "INST-A", outcomes, {"outcomes": [outcome]}, (outcomes, {"outcomes": [outcome] * 2}), "hybrid-o")
