"""Requests that must not work: each is a 4xx problem document naming the field, and changes nothing."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from openice.access.keys import ApiKeys
from openice.storage import api_tables, collections_tables, decisioning_tables, idempotency_tables
from openice.storage.uow import EngineUnits
from openice.tenancy import Scope
from tests.api.conftest import World, bearer
from tests.api.test_collections import PROMISE, cases_by_loan
from tests.decisioning.helpers import application_body


def counts(world: World) -> dict[str, int]:
    """Rows of every table a refused request could have written to."""
    tables = {
        "audit": api_tables.audit_log,
        "claims": idempotency_tables.idempotency_keys,
        "decisions": decisioning_tables.decisions,
        "lines": decisioning_tables.credit_lines,
        "actions": collections_tables.collection_actions,
        "applications": decisioning_tables.applications,
    }
    with world.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(t)).scalar_one() for name, t in tables.items()}


def refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field, response.json()


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_nul_byte_anywhere_is_422_and_changes_nothing(world: World) -> None:
    bid = world.ids[1]["borrower"]
    before = counts(world)
    refused(world.call("operator", "GET", "/v1/borrowers/B%00x"), 422, "borrower_id")
    refused(world.call("operator", "GET", "/v1/loans", params={"borrower_id": "B\x00"}), 422, "borrower_id")
    refused(world.call("operator", "GET", "/v1/loans", params={"cursor": "\x00"}), 422, "cursor")
    refused(world.call("operator", "GET", "/v1/borrowers", params={"cursor": cursor("B\x00")}), 422, "cursor")
    refused(world.call("operator", "GET", "/v1/loans", params={"cursor": cursor(str(2**63))}), 422, "cursor")
    refused(world.call("operator", "GET", "/v1/loans", params={"cursor": cursor("-1" + "0" * 30)}), 422, "cursor")
    refused(
        world.call(
            "borrower1",
            "POST",
            f"/v1/borrowers/{bid}/applications",
            key="nul-1",
            json=application_body(purpose="cash\x00"),
        ),
        422,
        "purpose",
    )
    refused(
        world.call(
            "borrower1",
            "POST",
            f"/v1/borrowers/{bid}/applications",
            key="nul-2",
            json=application_body(bureau={"inq\x00": 1}),
        ),
        422,
        "bureau",
    )
    refused(
        world.call(
            "operator",
            "POST",
            "/v1/api-keys",
            key="nul-3",
            json={"role": "collections", "tenant": "platform", "label": "desk\x00"},
        ),
        422,
        "label",
    )
    nested = "[" * 100_000 + "]" * 100_000  # deeper than the parser goes: refused, not a 500
    refused(world.client.request("GET", "/v1/loans", content=nested, headers=world.as_("operator")), 422, "body")
    assert counts(world) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"income_monthly": 10**30}, "income_monthly"),  # beyond a BIGINT, refused before the model reads it
        ({"income_monthly": "1" + "0" * 30}, "income_monthly"),
        ({"requested_amount": "1000000000000000.00"}, "requested_amount"),  # no consumer loan is a quadrillion
        ({"requested_amount": "10000000000.01"}, "requested_amount"),  # a fen above the largest principal
        ({"existing_debt_balance": "100000000000000"}, "existing_debt_balance"),
        ({"requested_amount": "0.00"}, "requested_amount"),
        ({"existing_debt_monthly": "-1.00"}, "existing_debt_monthly"),
        ({"income_monthly": "15,000.00"}, "income_monthly"),  # no grouping: a comma is a decimal point somewhere
        ({"income_monthly": "1.5e4"}, "income_monthly"),
        ({"requested_amount": ""}, "requested_amount"),
        ({"requested_amount": 3_000_000.0}, "requested_amount"),  # a number, not a decimal string
        ({"income_monthly": True}, "income_monthly"),
        ({"currency": "cny"}, "currency"),
        ({"bureau": {"inquiries_6m": 10**30}}, "bureau.inquiries_6m"),
        ({"bureau": {f"k{i}": 1 for i in range(200)}}, "bureau"),
    ],
)
def test_an_absurd_application_is_refused_not_approved(world: World, changes: dict[str, Any], field: str) -> None:
    bid = world.ids[1]["borrower"]
    before = counts(world)
    refused(
        world.call(
            "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="absurd", json=application_body(**changes)
        ),
        422,
        field,
    )
    assert counts(world) == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_is_refused(world: World, constant: str) -> None:
    """JSON has no NaN or Infinity (1e400 parses as infinity); a lenient parser reads them, and the stored decision
    would not be JSON."""
    bid = world.ids[1]["borrower"]
    before = counts(world)
    text = (
        '{"product_code": "CASH-EI", "income_monthly": "15000.00", "employment": "salaried", '
        '"requested_amount": "30000.00", "currency": "CNY", "requested_tenor": 12, "purpose": "consumption", '
        f'"bureau": {{"revolving_utilisation": {constant}}}}}'
    )
    response = world.client.post(
        f"/v1/borrowers/{bid}/applications",
        content=text,
        headers={**world.as_("borrower1"), "Idempotency-Key": "nan", "Content-Type": "application/json"},
    )
    refused(response, 422, "bureau.revolving_utilisation")
    assert counts(world) == before


def test_a_promise_to_pay_is_capped_at_what_is_overdue(world: World) -> None:
    world.first_due()
    case = cases_by_loan(world)[world.ids[1]["loan"]]
    overdue = Decimal(case["overdue"]["amount"])
    url = f"/v1/collections/cases/{case['id']}/contacts"
    before = counts(world)
    over = {**PROMISE, "promise": {**PROMISE["promise"], "amount": str(overdue + Decimal("0.01"))}}
    response = world.call("collections", "POST", url, key="too-much", json=over)
    refused(response, 422, "promise.amount")
    assert f"{overdue:,} CNY" in response.json()["detail"]
    assert counts(world) == before
    exact = {**PROMISE, "promise": {**PROMISE["promise"], "amount": str(overdue)}}
    made = world.call("collections", "POST", url, key="all-of-it", json=exact)
    assert made.status_code == 201 and made.json()["promise"]["amount"]["amount"] == str(overdue), made.text


def test_an_institution_key_reads_cases_but_does_not_work_them(world: World) -> None:
    """The docs give an institution's key read-only access: a contact or an assignment is 403 and changes
    nothing, even on its own loan's case."""
    world.first_due()
    mine = cases_by_loan(world)[world.ids[1]["loan"]]["id"]
    before = counts(world)
    refused_contact = world.call(
        "INST-A",
        "POST",
        f"/v1/collections/cases/{mine}/contacts",
        key="inst-c",
        json={"channel": "call", "outcome": "reached"},
    )
    assert refused_contact.status_code == 403, refused_contact.text
    refused_assignment = world.call(
        "INST-A", "POST", "/v1/collections/assignments", key="inst-a", json={"agents": ["ann"]}
    )
    assert refused_assignment.status_code == 403, refused_assignment.text
    assert refused_assignment.headers["content-type"] == "application/problem+json"
    assert counts(world) == before
    assert world.call("INST-A", "GET", f"/v1/collections/cases/{mine}").status_code == 200


def test_an_institutions_collections_desk_assigns_only_its_own_cases(world: World) -> None:
    world.first_due()
    mine, theirs = (cases_by_loan(world)[world.ids[k]["loan"]]["id"] for k in (1, 2))
    desk = bearer(ApiKeys(EngineUnits(world.engine)).create("collections", "INST-A")["secret"])
    assigned = world.client.post(
        "/v1/collections/assignments", json={"agents": ["ann", "bob"]}, headers={**desk, "Idempotency-Key": "desk-a"}
    )
    assert assigned.status_code == 201 and sum(assigned.json()["assigned"].values()) == 1, assigned.text
    detail = {k: world.call("operator", "GET", f"/v1/collections/cases/{k}").json() for k in (mine, theirs)}
    assert detail[mine]["assignee"] in {"ann", "bob"} and detail[theirs]["assignee"] is None


def audit_actions(world: World) -> list[str]:
    with world.engine.connect() as conn:
        return sorted(r.action for r in conn.execute(select(api_tables.audit_log.c.action)))


def test_a_replayed_request_writes_no_second_audit_row(world: World) -> None:
    """Same Idempotency-Key and body: the first response again, and the one action keeps its one audit row."""
    world.first_due()
    loan, line = world.ids[1]["loan"], world.ids[1]["line"]
    before = audit_actions(world)
    requests = [
        ("borrower1", f"/v1/loans/{loan}/repayments", {"amount": "10.00", "currency": "CNY"}),
        ("borrower1", f"/v1/credit-lines/{line}/drawdowns", {"amount": "1000.00", "currency": "CNY", "tenor": 12}),
    ]
    for n, (who, url, body) in enumerate(requests):  # one store: each action its own key
        first = world.call(who, "POST", url, key=f"once-{n}", json=body)
        assert first.status_code == 201, first.text
        again = world.call(who, "POST", url, key=f"once-{n}", json=body)
        assert again.status_code == 201 and again.json() == first.json()
    paid = world.call("borrower1", "GET", f"/v1/loans/{loan}/transactions").json()["items"][-1]
    reversal = f"/v1/transactions/{paid['id']}/reversal"
    for _ in range(2):
        assert world.call("operator", "POST", reversal, key="undo").status_code == 201
    assert audit_actions(world) == sorted([*before, "loan.repayment", "drawdown", "transaction.reversed"])


def test_an_unexpected_database_error_logs_no_parameters(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement that fails in a way nobody foresaw is a 500 with the request id; the log keeps the statement
    for the engineer but not its parameters, which may be a caller's data."""

    private = "-".join(("B", "PRIVATE"))  # not a literal: the logged traceback shows this file's source lines

    def failing(*_args: Any) -> Any:
        raise DBAPIError("SELECT * FROM borrowers WHERE id = %(ident)s", {"ident": private}, Exception("boom"))

    monkeypatch.setattr(Scope, "get", failing)
    client = TestClient(world.client.app, raise_server_exceptions=False)
    response = client.get(f"/v1/borrowers/{world.ids[1]['borrower']}", headers=world.as_("operator"))
    assert response.status_code == 500 and "request id" in response.json()["detail"]
    assert "SELECT * FROM borrowers" in caplog.text and private not in caplog.text
