"""Tenant isolation, generated from the app's own route table: every operation, called with each tenant role's key
and another tenant's identifiers, gives 403 or 404 and no data, and changes nothing of the other tenant's. A new
operation is covered without anyone listing its URL; one whose parameters or body this suite cannot fill fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openice.access.keys import ApiKeys
from openice.matching.deliveries import DeliveryRepository
from openice.storage import servicing_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World
from tests.api.test_collections import cases_by_loan
from tests.decisioning.helpers import application_body, person
from tests.matching.test_boxes import body, institution

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "field", "request_id", "errors"}
KEYLESS = {"/health", "/ready", "/metrics", "/.well-known/openice-signing-key"}  # no key, no tenant data
# How to fill each path parameter: the name of the other tenant's identifier it takes.
PATH_VALUES = {
    "loan_id": "loan",
    "transaction_id": "transaction",
    "offer_id": "offer",
    "code": "institution",
    "borrower_id": "borrower",
    "decision_id": "decision",
    "line_id": "line",
    "drawdown_id": "drawdown",
    "case_id": "case",
    "key_id": "key",
    "statement_id": "statement",
    "dead_letter_id": "dead_letter",
    "deal": "deal",
    "month": "month",
}
OTHER_DEAL = "OTHER 2026-1"  # the other investor's deal (issued where a test issues it, missing elsewhere)
# Optional query parameters that filter by another tenant's identifier: a list filtered by one shows nothing.
FILTERS = {
    "borrower_id": "borrower",
    "line_id": "line",
    "loan_id": "loan",
    "drawdown_id": "drawdown",
    "funder": "institution",
    "tenant": "institution",
}
REQUIRED_QUERY = {"quarter": "2026Q1", "from": "2026-01-01", "to": "2026-03-31"}
PAY = {"amount": "1.00", "currency": "CNY"}
# A body valid for each operation that takes one, so the call reaches the tenant check rather than a 422.
BODIES: dict[str, Any] = {
    "POST /v1/borrowers": {**person(3), "date_of_birth": person(3)["date_of_birth"].isoformat()},
    "POST /v1/borrowers/{borrower_id}/applications": application_body(),
    "POST /v1/credit-lines/{line_id}/drawdowns": {"amount": "100.00", "currency": "CNY", "tenor": 12},
    "PUT /v1/institutions/{code}": body(institution("INST-B")),
    "POST /v1/institutions/{code}/referral-settlements": PAY,
    "POST /v1/offers/{offer_id}/acceptance": {},
    "POST /v1/offers/{offer_id}/decline": {"reason": "no"},
    "POST /v1/loans/{loan_id}/repayments": PAY,
    "POST /v1/loans/{loan_id}/prepayments": PAY,
    "POST /v1/loans/{loan_id}/recoveries": PAY,
    "POST /v1/loans/{loan_id}/write-off": {"reason": "probe"},
    "POST /v1/collections/cases/{case_id}/contacts": {"channel": "call", "outcome": "reached"},
    "POST /v1/collections/assignments": {"agents": ["probe"]},
    "POST /v1/api-keys": {"role": "institution", "tenant": "INST-B"},
    "POST /v1/tenants": {"institution": body(institution("INST-P")), "admin_email": "a@inst-p.cn"},
    "POST /v1/hybrid/decisions": {
        "decisions": [
            {"reference": "probe", "decided_on": "2026-01-15", "outcome": "approved", "score": 600.0, "pd": 0.05}
            | {"model_hash": "0" * 64}
        ]
    },
    "POST /v1/hybrid/outcomes": {"outcomes": [{"reference": "probe", "months_on_book": 3, "bad": False}]},
    "POST /v1/institutions/{code}/keys": {"label": "probe"},
}
# Fields of a response that hold an identifier of the tenant they belong to.
OWNER_FIELDS = {
    "loan_id": "loan",
    "drawdown_id": "drawdown",
    "borrower_id": "borrower",
    "line_id": "line",
    "decision_id": "decision",
    "institution_code": "institution",
    "institution": "institution",
    "code": "institution",
    "tenant": "institution",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query: dict[str, str]  # required query parameters, filled
    filters: tuple[str, ...]  # optional query parameters that filter by an identifier
    keyed: bool  # takes an Idempotency-Key
    body: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations(world: World) -> list[Operation]:
    """Every operation of the app, from its route table (its OpenAPI document), with what it takes; fails for one
    this suite does not know how to fill."""
    found = []
    for path, methods in world.client.app.openapi()["paths"].items():
        if path in KEYLESS:
            continue
        assert path.startswith("/v1/"), f"{path}: a new keyless endpoint? add it to KEYLESS if it holds no tenant data"
        for method, spec in methods.items():
            params = spec.get("parameters", [])
            query = [p for p in params if p["in"] == "query"]
            op = Operation(
                method.upper(),
                path,
                tuple(p["name"] for p in params if p["in"] == "path"),
                {p["name"]: REQUIRED_QUERY.get(p["name"], "") for p in query if p.get("required")},
                tuple(p["name"] for p in query if not p.get("required") and p["name"] in FILTERS),
                any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params),
                "requestBody" in spec,
            )
            unknown = (set(op.path_params) - set(PATH_VALUES)) | (set(op.query) - set(REQUIRED_QUERY))
            assert not unknown, f"{op.name}: no way to fill {unknown}: add them to PATH_VALUES or REQUIRED_QUERY"
            assert not op.body or op.name in BODIES, f"{op.name}: add a valid body to BODIES"
            found.append(op)
    assert {op.name for op in found if op.body} == set(BODIES), "BODIES names operations the app no longer has"
    return found


@pytest.fixture
def foreign(world: World) -> dict[str, Any]:
    """Tenant 2's identifiers (borrower 2, INST-B): the world's, with a collection case, a transaction and a key."""
    world.first_due()
    mine = world.ids[2]
    paid = world.call("borrower2", "POST", f"/v1/loans/{mine['loan']}/repayments", key="tenant-2-pays", json=PAY)
    assert paid.status_code == 201, paid.text
    keys = world.call("operator", "GET", "/v1/api-keys", params={"tenant": "INST-B"}).json()["items"]
    return {
        **mine,
        "case": cases_by_loan(world)[mine["loan"]]["id"],
        "transaction": paid.json()["transaction_id"],
        "key": keys[0]["id"],
        "statement": "CNY-2026-01",
        "dead_letter": dead_letter(world, "INST-B"),
        "deal": OTHER_DEAL,
        "month": "2026-01",
    }


def dead_letter(world: World, institution: str) -> int:
    """A delivery to `institution` that ran out of attempts."""
    with world.engine.begin() as conn:
        deliveries = DeliveryRepository(conn)
        delivery = deliveries.enqueue(institution, "loan.funded", "loan/1", f"probe-{institution}", {}, 0.0)
        return deliveries.dead(delivery, 8, "HTTP 503")


def url(op: Operation, ids: dict[str, Any]) -> str:
    return op.path.format(**{name: ids[PATH_VALUES[name]] for name in op.path_params})


def owners(document: Any) -> Iterator[tuple[str, Any]]:
    """Every (field, value) of a response whose field names the tenant the value belongs to."""
    if isinstance(document, dict):
        for field, value in document.items():
            if field in OWNER_FIELDS and not isinstance(value, dict | list):
                yield field, value
            yield from owners(value)
    elif isinstance(document, list):
        for item in document:
            yield from owners(item)


def assert_nothing_of(ids: dict[str, Any], what: str, response: httpx.Response) -> None:
    """A response that succeeded holds none of the other tenant's identifiers."""
    text = response.text
    for name in ("borrower", "decision", "line"):  # unique strings: found wherever they appear
        assert str(ids[name]) not in text, (what, name, text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        for field, value in owners(response.json()):
            assert value != ids[OWNER_FIELDS[field]], (what, field, value)


def snapshot(world: World, ops: list[Operation], ids: dict[str, Any]) -> dict[str, str]:
    """The other tenant's things as the operator reads them: every read that takes an identifier (the status of one
    missing here, such as a deal no test of this module issues: its error document names its own request)."""

    def read(op: Operation) -> str:
        response = world.call("operator", "GET", url(op, ids), params=op.query)
        return response.text if response.status_code < 400 else str(response.status_code)

    return {op.name: read(op) for op in ops if op.method == "GET" and op.path_params}


def probe(world: World, who: str, ids: dict[str, Any]) -> dict[str, int]:
    """Every operation with `who`'s key against the other tenant: those naming one of its identifiers give 403 (the
    role may not) or 404 and an error document; the others show none of its identifiers, and nothing of it changes.
    Returns the status per operation."""
    ops = operations(world)
    before = snapshot(world, ops, ids)
    seen = {}
    for n, op in enumerate(ops):
        key = f"probe-{who}-{n}" if op.keyed else None
        target = url(op, ids)
        response = world.call(who, op.method, target, key=key, params=op.query, json=BODIES.get(op.name))
        seen[op.name] = response.status_code
        if op.path_params:
            assert response.status_code in (403, 404), (who, op.name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert set(response.json()) <= PROBLEM_FIELDS  # an error document, no data
        else:
            assert response.status_code < 500, (who, op.name, response.text)
            if response.status_code < 300:
                assert_nothing_of(ids, f"{who} {op.name}", response)
        for name in op.filters:
            filtered = world.call(who, op.method, target, params={**op.query, name: ids[FILTERS[name]]})
            assert filtered.status_code == 403 or filtered.json()["items"] == [], (who, op.name, name, filtered.text)
    assert snapshot(world, ops, ids) == before, f"{who} changed another tenant's data"
    return seen


def test_every_operation_is_covered(world: World) -> None:
    ops = operations(world)
    assert any(op.path_params for op in ops) and any(op.filters for op in ops)
    assert {op.name for op in ops if op.path_params} >= {
        "GET /v1/loans/{loan_id}",
        "POST /v1/collections/cases/{case_id}/contacts",
        "POST /v1/transactions/{transaction_id}/reversal",
        "GET /v1/api-keys/{key_id}",
    }


def test_an_institution_sees_nothing_of_another(world: World, foreign: dict[str, Any]) -> None:
    seen = probe(world, "INST-A", foreign)
    reads = [k for k in seen if k.startswith("GET") and ("/loans/" in k or "/offers/" in k or "/institutions/" in k)]
    assert reads and all(seen[k] == 404 for k in reads)
    assert seen["GET /v1/collections/cases/{case_id}"] == 404
    lists = {
        path: world.call("INST-A", "GET", path).json()["items"]
        for path in ("/v1/loans", "/v1/offers", "/v1/institutions")
    }
    assert [x["id"] for x in lists["/v1/loans"]] == [world.ids[1]["loan"]]
    assert {x["institution_code"] for x in lists["/v1/offers"]} == {"INST-A"}
    assert [x["code"] for x in lists["/v1/institutions"]] == ["INST-A"]
    filtered = world.call("INST-A", "GET", "/v1/loans", params={"funder": "INST-B"}).json()["items"]
    assert filtered == []


def test_a_borrower_cannot_read_or_move_another_borrowers_things(world: World, foreign: dict[str, Any]) -> None:
    with world.engine.connect() as conn:
        count = select(func.count()).select_from(servicing_tables.transactions)
        booked = conn.execute(count).scalar_one()
    seen = probe(world, "borrower1", foreign)
    own = {
        "GET /v1/loans/{loan_id}",
        "GET /v1/loans/{loan_id}/transactions",
        "POST /v1/loans/{loan_id}/repayments",
        "POST /v1/loans/{loan_id}/prepayments",
        "GET /v1/borrowers/{borrower_id}",
        "POST /v1/borrowers/{borrower_id}/applications",
        "GET /v1/decisions/{decision_id}",
        "GET /v1/credit-lines/{line_id}",
        "POST /v1/credit-lines/{line_id}/drawdowns",
        "GET /v1/drawdowns/{drawdown_id}",
        "GET /v1/api-keys/{key_id}",
    }
    assert {k: seen[k] for k in own} == dict.fromkeys(own, 404)
    for path in ("/v1/loans", "/v1/credit-lines", "/v1/drawdowns", "/v1/decisions", "/v1/borrowers"):
        items = world.call("borrower1", "GET", path).json()["items"]
        assert items and all(world.ids[2]["borrower"] not in str(item) for item in items), path
    with world.engine.connect() as conn:
        assert conn.execute(count).scalar_one() == booked


def test_a_collections_agent_of_one_institution_sees_only_its_loans(world: World, foreign: dict[str, Any]) -> None:
    world.keys["desk-A"] = ApiKeys(EngineUnits(world.engine)).create("collections", "INST-A")["secret"]
    assert [x["id"] for x in world.call("desk-A", "GET", "/v1/loans").json()["items"]] == [world.ids[1]["loan"]]
    assert world.call("desk-A", "GET", f"/v1/borrowers/{world.ids[2]['borrower']}").status_code == 404
    seen = probe(world, "desk-A", foreign)
    assert seen["GET /v1/collections/cases/{case_id}"] == 404
    assert seen["POST /v1/collections/cases/{case_id}/contacts"] == 404
    assert seen["POST /v1/loans/{loan_id}/recoveries"] == 404


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
