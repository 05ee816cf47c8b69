"""An application's money crosses the API as people write it, decimal strings of major units with the product's
currency, and is stored as the decision's minor units; anything else is a 422 naming the field, storing nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from openice.storage import decisioning_tables
from tests.api.conftest import World
from tests.api.test_refusals import counts, refused
from tests.decisioning.helpers import application_body


def stored_application(world: World, decision_id: str) -> dict[str, Any]:
    """The application as the stored decision holds it (hashed, for `reproduce`)."""
    table = decisioning_tables.decisions
    with world.engine.connect() as conn:
        inputs = conn.execute(select(table.c.inputs).where(table.c.id == decision_id)).scalar_one()
    application: dict[str, Any] = json.loads(inputs)["application"]
    return application


def test_major_units_are_stored_as_minor_units(world: World) -> None:
    bid = world.ids[1]["borrower"]
    url = f"/v1/borrowers/{bid}/applications"
    body = application_body(requested_amount="30000.00", income_monthly="15000", existing_debt_balance="1234.56")
    made = world.call("borrower1", "POST", url, key="units", json=body)
    assert made.status_code == 201, made.text
    stored = stored_application(world, made.json()["id"])
    assert "currency" not in stored
    assert (stored["requested_amount"], stored["income_monthly"], stored["existing_debt_balance"]) == (
        3_000_000,
        1_500_000,
        123_456,
    )
    # the key holds what the amounts mean: the same application written with other decimals is the same request
    again = world.call("borrower1", "POST", url, key="units", json={**body, "requested_amount": "30000"})
    assert again.status_code == 201 and again.json() == made.json()
    other = world.call("borrower1", "POST", url, key="units", json={**body, "requested_amount": "30000.01"})
    assert other.status_code == 409, other.text


@pytest.mark.parametrize(
    ("changes", "field", "detail"),
    [
        (
            {"requested_amount": "30000.001"},
            "requested_amount",
            "30000.001 has more decimals than CNY allows (2)",
        ),
        ({"currency": "USD"}, "currency", "product CASH-EI lends in CNY, not USD"),
        (
            {"requested_amount": 3_000_000},
            "requested_amount",
            'requested_amount: must be a decimal string in major units, e.g. "30000.00" for 30,000.00 CNY, not 3000000',
        ),
    ],
)
def test_an_amount_not_in_the_products_major_units_is_refused(
    world: World, changes: dict[str, Any], field: str, detail: str
) -> None:
    bid = world.ids[1]["borrower"]
    before = counts(world)
    body = application_body(**changes)
    response = world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="wrong-units", json=body)
    refused(response, 422, field)
    assert response.json()["detail"] == detail
    assert counts(world) == before
