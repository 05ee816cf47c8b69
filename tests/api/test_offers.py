"""Offers over HTTP: an institution that decides by hand accepts or declines the offers made to it."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from openice.matching.institutions import CreditBox
from openice.storage import api_tables, decisioning_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World, make_app
from tests.decisioning.helpers import application_body
from tests.matching.test_boxes import body, institution


def manual_world(world: World) -> tuple[str, str]:
    """INST-M decides by hand and, at the best margin for small amounts, gets the offer first; a fresh line."""
    inst = institution(
        "INST-M", rate="0.05", acceptance="manual", credit_box=CreditBox(max_pd=0.2, max_amount=1_500_000)
    )
    assert world.call("operator", "PUT", "/v1/institutions/INST-M", json=body(inst)).status_code == 200
    from openice.access.keys import ApiKeys

    world.keys["INST-M"] = ApiKeys(EngineUnits(world.engine)).create("institution", "INST-M")["secret"]
    bid = world.ids[1]["borrower"]
    decision = world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="app-m", json=application_body()
    )
    return decision.json()["line_id"], bid


def draw(world: World, line: str, key: str) -> dict:
    drawn = world.call(
        "borrower1",
        "POST",
        f"/v1/credit-lines/{line}/drawdowns",
        key=key,
        json={"amount": "5000.00", "currency": "CNY", "tenor": 12},
    )
    assert drawn.status_code == 201, drawn.text
    return drawn.json()


def test_an_institution_accepts_its_offer_and_the_loan_is_originated(world: World) -> None:
    line, _ = manual_world(world)
    drawn = draw(world, line, "dd-m")
    assert drawn["status"] == "offered" and drawn["institution_code"] == "INST-M" and drawn["loan_id"] is None
    pending = world.call("INST-M", "GET", "/v1/offers", params={"status": "sent"}).json()["items"]
    assert [o["drawdown_id"] for o in pending] == [drawn["id"]] and pending[0]["expires_at"]
    offer = pending[0]["id"]
    with world.engine.connect() as conn:
        offers = decisioning_tables.offers.c
        stored = conn.execute(select(offers.expected_margin).where(offers.id == offer)).scalar_one()
    # the margin is kept in fen and read in yuan with its currency: 12,345 fen would read "123.45"
    assert stored > 0 and pending[0]["expected_margin"] == {
        "amount": f"{stored // 100}.{stored % 100:02d}",
        "currency": "CNY",
    }
    assert world.call("INST-M", "GET", f"/v1/offers/{offer}").json()["expected_margin"] == pending[0]["expected_margin"]
    assert world.call("INST-A", "POST", f"/v1/offers/{offer}/acceptance", key="a1").status_code == 404
    assert world.call("operator", "POST", f"/v1/offers/{offer}/acceptance", key="a1").status_code == 403
    accepted = world.call("INST-M", "POST", f"/v1/offers/{offer}/acceptance", key="a1", json={"reason": "fits"})
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert body["offer"]["status"] == "accepted" and body["drawdown_status"] == "funded" and body["loan_id"]
    assert body["offer"]["expected_margin"] == pending[0]["expected_margin"]
    assert (
        world.call("INST-M", "POST", f"/v1/offers/{offer}/acceptance", key="a1", json={"reason": "fits"}).json() == body
    )  # the same key replays
    assert world.call("INST-M", "POST", f"/v1/offers/{offer}/decline", key="d1").status_code == 409
    loan = world.call("INST-M", "GET", f"/v1/loans/{body['loan_id']}").json()
    assert loan["funder"] == "INST-M" and loan["principal"]["amount"] == "5000.00"
    assert world.call("borrower1", "GET", f"/v1/drawdowns/{drawn['id']}").json()["status"] == "funded"
    with world.engine.connect() as conn:
        rows = conn.execute(select(api_tables.audit_log).where(api_tables.audit_log.c.resource == f"offer/{offer}"))
        actions = [r.action for r in rows]
    assert actions == ["offer.accepted"]


def test_a_declined_offer_goes_to_the_next_institution(world: World) -> None:
    line, _ = manual_world(world)
    drawn = draw(world, line, "dd-d")
    offer = world.call("INST-M", "GET", "/v1/offers", params={"drawdown_id": drawn["id"]}).json()["items"][0]["id"]
    declined = world.call("INST-M", "POST", f"/v1/offers/{offer}/decline", key="d1", json={"reason": "sector limit"})
    assert declined.status_code == 201, declined.text
    assert declined.json()["offer"]["status"] == "declined" and declined.json()["drawdown_status"] == "funded"
    after = world.call("borrower1", "GET", f"/v1/drawdowns/{drawn['id']}").json()
    assert after["institution_code"] == "INST-A" and after["reasons"]["INST-M"] == ["declined: sector limit"]
    bad = world.call("INST-M", "POST", f"/v1/offers/{offer}/decline", key="d2", json={"reason": "x" * 501})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("reason")


def test_each_worker_sweeps_unanswered_offers_without_waiting_for_a_request(world: World) -> None:
    line, _ = manual_world(world)
    drawn = draw(world, line, "dd-s")
    with world.engine.begin() as conn:  # its deadline has passed; no request comes after it
        conn.execute(
            update(decisioning_tables.offers)
            .where(decisioning_tables.offers.c.drawdown_id == drawn["id"])
            .values(expires_at="2000-01-01T00:00:00.000+00:00")
        )
    with TestClient(make_app(world.engine, offer_sweep_seconds=0.05)):  # the lifespan starts the sweeper
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and drawdown_status(world, drawn["id"]) == "offered":
            time.sleep(0.05)
    assert drawdown_status(world, drawn["id"]) == "funded"
    with world.engine.connect() as conn:
        offers = conn.execute(
            select(decisioning_tables.offers.c.institution_code, decisioning_tables.offers.c.status)
            .where(decisioning_tables.offers.c.drawdown_id == drawn["id"])
            .order_by(decisioning_tables.offers.c.id)
        ).all()
    assert [tuple(o) for o in offers] == [("INST-M", "expired"), ("INST-A", "accepted")]
    audit = world.call("operator", "GET", "/v1/audit", params={"action": "offer.expired"}).json()["items"]
    mine = [r for r in audit if r["detail"]["drawdown_id"] == drawn["id"]]
    assert len(mine) == 1, audit  # the sweep's expiry is in the audit trail, with the service as its actor
    assert (mine[0]["role"], mine[0]["key_id"], mine[0]["tenant"]) == ("system", None, "platform")
    assert mine[0]["request_id"].startswith("offer-sweep-")
    assert (mine[0]["detail"]["institution"], mine[0]["detail"]["drawdown_status"]) == ("INST-M", "funded")


def test_an_answer_request_audits_the_expiries_it_applies(world: World) -> None:
    line, _ = manual_world(world)
    late = draw(world, line, "dd-late")
    waiting = draw(world, line, "dd-wait")
    offers = {
        k: world.call("INST-M", "GET", "/v1/offers", params={"drawdown_id": dd["id"]}).json()["items"][0]["id"]
        for k, dd in (("late", late), ("wait", waiting))
    }
    with world.engine.begin() as conn:  # the first offer's deadline passes; no sweep runs in this app
        conn.execute(
            update(decisioning_tables.offers)
            .where(decisioning_tables.offers.c.id == offers["late"])
            .values(expires_at="2000-01-01T00:00:00.000+00:00")
        )
    answered = world.call("INST-M", "POST", f"/v1/offers/{offers['wait']}/acceptance", key="a-late", json={})
    assert answered.status_code == 201, answered.text
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(api_tables.audit_log).where(api_tables.audit_log.c.resource == f"offer/{offers['late']}")
        ).all()
    assert [(r.action, r.role) for r in rows] == [("offer.expired", "system")]
    assert rows[0].request_id == answered.headers["x-request-id"]


def drawdown_status(world: World, drawdown_id: int) -> str:
    with world.engine.connect() as conn:
        return conn.execute(
            select(decisioning_tables.drawdowns.c.status).where(decisioning_tables.drawdowns.c.id == drawdown_id)
        ).scalar_one()
