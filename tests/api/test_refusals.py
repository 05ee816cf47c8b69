"""Requests that must not work: each is a 4xx problem document naming the field, and changes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from openice.storage import api_tables as a
from openice.storage import collections_tables as c
from openice.storage import decisioning_tables as d
from tests.api.conftest import World
from tests.decisioning.helpers import good_application


def counts(world: World) -> dict[str, int]:
    """Rows of every table a refused request could have written to."""
    tables = {"audit": a.audit_log, "claims": a.api_requests, "decisions": d.decisions, "lines": d.credit_lines,
              "actions": c.collection_actions, "applications": d.applications}
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
    refused(world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="nul-1",
                       json=good_application(purpose="cash\x00")), 422, "purpose")
    refused(world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="nul-2",
                       json=good_application(bureau={"inq\x00": 1})), 422, "bureau")
    refused(world.call("operator", "POST", "/v1/api-keys", key="nul-3",
                       json={"role": "collections", "tenant": "platform", "label": "desk\x00"}), 422, "label")
    assert counts(world) == before


@pytest.mark.parametrize(("changes", "field"), [
    ({"income_monthly": 10**30}, "income_monthly"),
    ({"requested_amount": 10**30}, "requested_amount"),
    ({"requested_amount": 10**17}, "requested_amount"),  # fits a BIGINT, but no consumer loan is a trillion
    ({"existing_debt_balance": 10**16}, "existing_debt_balance"),
    ({"income_monthly": "1500000"}, "income_monthly"),  # a string where a number belongs
    ({"requested_amount": 3_000_000.0}, "requested_amount"),  # minor units are whole numbers
    ({"income_monthly": True}, "income_monthly"),
    ({"bureau": {"inquiries_6m": 10**30}}, "bureau.inquiries_6m"),
    ({"bureau": {f"k{i}": 1 for i in range(200)}}, "bureau"),
])
def test_an_absurd_application_is_refused_not_approved(world: World, changes: dict[str, Any], field: str) -> None:
    bid = world.ids[1]["borrower"]
    before = counts(world)
    refused(world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="absurd",
                       json=good_application(**changes)), 422, field)
    assert counts(world) == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_is_refused(world: World, constant: str) -> None:
    """JSON has no NaN or Infinity (1e400 parses as infinity); a lenient parser reads them, and the stored decision
    would not be JSON."""
    bid = world.ids[1]["borrower"]
    before = counts(world)
    text = ('{"product_code": "CASH-EI", "income_monthly": 1500000, "employment": "salaried", '
            '"requested_amount": 3000000, "requested_tenor": 12, "purpose": "consumption", '
            f'"bureau": {{"revolving_utilisation": {constant}}}}}')
    response = world.client.post(f"/v1/borrowers/{bid}/applications", content=text, headers={
        **world.as_("borrower1"), "Idempotency-Key": "nan", "Content-Type": "application/json"})
    refused(response, 422, "bureau.revolving_utilisation")
    assert counts(world) == before
