"""A loan booked in one call from the example files the package ships: registered, decided, drawn and booked in one
transaction under one key, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from sqlalchemy import Engine

from openice.decisioning.service import Decisioning
from openice.errors import NotFound, ValidationError
from openice.matching.institutions import TypedInstitution
from openice.matching.service import Matching
from openice.origination import Request, originate
from openice.servicing.products import LoanProduct
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT, StubScorer, anomaly_model


def example(name: str) -> Any:
    return json.loads((resources.files("openice") / "examples" / name).read_text())


@pytest.fixture
def book(engine: Engine) -> Engine:
    """A database with the example product and institution."""
    Servicing(EngineUnits(engine)).create_product(LoanProduct.from_typed(example("product.json")))
    matching = Matching(EngineUnits(engine), VAULT)
    currency = matching.terms_currency()
    typed = [TypedInstitution.model_validate(i) for i in example("institution.json")["institutions"]]
    matching.register_institutions([i.in_minor(currency) for i in typed])
    return engine


def run(engine: Engine, key: str, **changes: Any) -> dict[str, Any]:
    application = {**example("application.json"), **changes.pop("application", {})}
    request = Request(example("borrower.json"), application, **changes)
    return originate(engine, request, key, scorer=StubScorer(), vault=VAULT, anomaly=anomaly_model())


def test_the_examples_book_a_loan_once_per_key(book: Engine) -> None:
    first = run(book, "first")
    assert first["outcome"] == "approved" and first["drawdown"]["status"] == "funded"
    assert first["drawdown"]["institution"] == "FIRST-BANK" and first["currency"] == "CNY"
    loan = Servicing(EngineUnits(book)).loan(first["loan_id"])
    applied = example("application.json")
    assert (applied["requested_amount"], applied["currency"]) == ("30000.00", "CNY")  # typed as people type it
    assert (loan.terms.principal, loan.terms.tenor) == (3_000_000, applied["requested_tenor"])
    assert loan.terms.product_code == "PERSONAL-EI" and loan.funder == "FIRST-BANK"
    assert run(book, "first") == first  # replayed: no second decision, line or loan
    with pytest.raises(NotFound):
        Servicing(EngineUnits(book)).loan(first["loan_id"] + 1)
    second = run(book, "second", amount="1000.00", tenor=6)
    assert second["existing_borrower"] and second["borrower_id"] == first["borrower_id"]
    assert Servicing(EngineUnits(book)).loan(second["loan_id"]).terms.principal == 100_000


def test_a_decline_is_kept_as_a_result_and_no_loan_is_booked(book: Engine) -> None:
    declined = run(book, "poor", application={"income_monthly": "2000.00", "existing_debt_monthly": "1500.00"})
    assert declined["outcome"] == "declined" and declined["loan_id"] is None and declined["drawdown"] is None
    assert any("affordability" in reason for reason in declined["reasons"])
    stored = Decisioning(EngineUnits(book), StubScorer(), VAULT).decision(declined["decision_id"])
    assert stored["outcome"] == "declined"


def test_a_refused_drawdown_stores_nothing(book: Engine) -> None:
    with pytest.raises(ValidationError) as error:
        run(book, "too-much", amount="1000000.00")
    assert error.value.field == "amount" and "30,000.00 CNY" in str(error.value)
    assert run(book, "after")["existing_borrower"] is False  # the refused call's registration rolled back


@pytest.mark.parametrize(
    ("application", "field"),
    [
        ({"requested_amount": 3_000_000}, "requested_amount"),  # minor units, as the file once held
        ({"requested_amount": "30000.001"}, "requested_amount"),
        ({"currency": "USD"}, "currency"),
    ],
)
def test_an_application_not_in_the_products_major_units_stores_nothing(
    book: Engine, application: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        run(book, "typo", application=application)
    assert error.value.field == field
    assert run(book, "typo")["existing_borrower"] is False  # nothing of the refused call was stored, not its key
