"""Tenant isolation: another tenant's identifiers give 404 and no data, on every read and write operation."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from openice.storage import servicing_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World
from tests.decisioning.helpers import good_application

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "field", "request_id", "errors"}


def foreign_calls(ids: dict) -> list[tuple[str, str, dict | None]]:
    """Every operation that takes another tenant's identifier, with a body valid for it."""
    pay = {"amount": "1.00", "currency": "CNY"}
    return [
        ("GET", f"/v1/loans/{ids['loan']}", None),
        ("GET", f"/v1/loans/{ids['loan']}/transactions", None),
        ("POST", f"/v1/loans/{ids['loan']}/repayments", pay),
        ("POST", f"/v1/loans/{ids['loan']}/prepayments", pay),
        ("POST", f"/v1/loans/{ids['loan']}/recoveries", pay),
        ("POST", f"/v1/loans/{ids['loan']}/write-off", None),
        ("GET", f"/v1/offers/{ids['offer']}", None),
        ("GET", f"/v1/offers/{ids['offer']}/report", None),
        ("POST", f"/v1/offers/{ids['offer']}/acceptance", {}),
        ("POST", f"/v1/offers/{ids['offer']}/decline", {"reason": "no"}),
        ("GET", f"/v1/institutions/{ids['institution']}", None),
        ("GET", f"/v1/institutions/{ids['institution']}/quota", None),
        ("POST", f"/v1/institutions/{ids['institution']}/referral-settlements", {"amount": "1.00", "currency": "CNY"}),
        ("GET", f"/v1/borrowers/{ids['borrower']}", None),
        ("POST", f"/v1/borrowers/{ids['borrower']}/applications", good_application()),
        ("GET", f"/v1/decisions/{ids['decision']}", None),
        ("GET", f"/v1/credit-lines/{ids['line']}", None),
        ("POST", f"/v1/credit-lines/{ids['line']}/drawdowns", {"amount": "100.00", "currency": "CNY", "tenor": 12}),
        ("GET", f"/v1/drawdowns/{ids['drawdown']}", None),
    ]


def probe(world: World, who: str, ids: dict) -> dict[str, int]:
    """Status per operation; anything but 403 (role not allowed) or 404 must not happen."""
    seen = {}
    for n, (method, url, body) in enumerate(foreign_calls(ids)):
        response = world.call(who, method, url, key=f"probe-{who}-{n}" if method == "POST" else None, json=body)
        assert response.status_code in (403, 404), (who, method, url, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) <= PROBLEM_FIELDS  # an error document, no data
        seen[f"{method} {url}"] = response.status_code
    return seen


def test_an_institution_sees_nothing_of_another(world: World) -> None:
    seen = probe(world, "INST-A", world.ids[2])
    reads = [k for k in seen if k.startswith("GET") and ("/loans/" in k or "/offers/" in k or "/institutions/" in k)]
    assert reads and all(seen[k] == 404 for k in reads)
    lists = {
        path: world.call("INST-A", "GET", path).json()["items"]
        for path in ("/v1/loans", "/v1/offers", "/v1/institutions")
    }
    assert [x["id"] for x in lists["/v1/loans"]] == [world.ids[1]["loan"]]
    assert {x["institution_code"] for x in lists["/v1/offers"]} == {"INST-A"}
    assert [x["code"] for x in lists["/v1/institutions"]] == ["INST-A"]
    filtered = world.call("INST-A", "GET", "/v1/loans", params={"funder": "INST-B"}).json()["items"]
    assert filtered == []


def test_a_borrower_cannot_read_or_move_another_borrowers_things(world: World) -> None:
    seen = probe(world, "borrower1", world.ids[2])
    assert all(
        code == 404
        for key, code in seen.items()
        if "/offers/" not in key and "/institutions/" not in key and "recoveries" not in key and "write-off" not in key
    )
    for path in ("/v1/loans", "/v1/credit-lines", "/v1/drawdowns", "/v1/decisions", "/v1/borrowers"):
        items = world.call("borrower1", "GET", path).json()["items"]
        assert items and all(world.ids[2]["borrower"] not in str(item) for item in items), path
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(servicing_tables.transactions)).scalar_one() == 0


def test_a_collections_agent_of_one_institution_sees_only_its_loans(world: World) -> None:
    from openice.api.keys import ApiKeys

    world.keys["desk-A"] = ApiKeys(EngineUnits(world.engine)).create("collections", "INST-A")["secret"]
    assert [x["id"] for x in world.call("desk-A", "GET", "/v1/loans").json()["items"]] == [world.ids[1]["loan"]]
    assert world.call("desk-A", "GET", f"/v1/borrowers/{world.ids[2]['borrower']}").status_code == 404
    probe(world, "desk-A", world.ids[2])


def test_a_revoked_key_is_refused(world: World) -> None:
    made = world.call("operator", "POST", "/v1/api-keys", key="kx", json={"role": "institution", "tenant": "INST-B"})
    secret = made.json()["secret"]
    assert world.client.get("/v1/loans", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    world.call("operator", "POST", f"/v1/api-keys/{made.json()['id']}/revocation")
    refused = world.client.get("/v1/loans", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and "items" not in refused.text


def test_fifty_simultaneous_repayments_with_one_key_apply_once(world: World) -> None:
    world.first_due()
    loan = world.ids[1]["loan"]
    headers = {**world.as_("borrower1"), "Idempotency-Key": "same-payment"}

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=world.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/v1/loans/{loan}/repayments", headers=headers, json={"amount": "100.00", "currency": "CNY"}
                    )
                    for _ in range(50)
                )
            )

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {201}, {r.status_code: r.text for r in responses}
    assert len({r.json()["transaction_id"] for r in responses}) == 1
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(servicing_tables.transactions)
                .where(servicing_tables.transactions.c.loan_id == loan)
            ).scalar_one()
            == 1
        )
