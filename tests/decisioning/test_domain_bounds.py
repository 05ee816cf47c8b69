"""The application model's own bounds, which the CLI and library callers get as well as the API, and the one
conversion from the application as typed (major units with the currency) to it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openice.decisioning.domain import MONEY_FIELDS, ApplicationInput, TypedApplication, parse
from openice.errors import ValidationError
from openice.money import MAX_MINOR, MINOR_UNITS
from tests.decisioning.helpers import good_application


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"income_monthly": MAX_MINOR + 1}, "income_monthly"),
        ({"requested_amount": "3000000"}, "requested_amount"),
        ({"requested_tenor": 12.0}, "requested_tenor"),
        ({"bureau": {"revolving_utilisation": math.nan}}, "bureau"),
        ({"bureau": {"revolving_utilisation": math.inf}}, "bureau"),
        ({"bureau": {"inquiries_6m": 10**30}}, "bureau"),
        ({"bureau": {"note": "x" * 201}}, "bureau"),
    ],
)
def test_an_application_out_of_bounds_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse(ApplicationInput, good_application(**changes))
    assert refused.value.field == field


def test_the_largest_application_still_parses() -> None:
    app = parse(ApplicationInput, good_application(income_monthly=MAX_MINOR, requested_amount=MAX_MINOR))
    assert app.requested_amount == MAX_MINOR


amounts = st.integers(0, MAX_MINOR)


@settings(max_examples=300, deadline=None)
@given(
    income=amounts,
    debt_monthly=amounts,
    debt_balance=amounts,
    requested=st.integers(1, MAX_MINOR),
    currency=st.sampled_from(sorted(MINOR_UNITS)),
)
def test_an_application_typed_in_major_units_converts_back_exactly(
    income: int, debt_monthly: int, debt_balance: int, requested: int, currency: str
) -> None:
    """What a client types from an application is that application again, to the minor unit, in any currency."""
    app = parse(
        ApplicationInput,
        good_application(
            income_monthly=income,
            existing_debt_monthly=debt_monthly,
            existing_debt_balance=debt_balance,
            requested_amount=requested,
        ),
    )
    typed = TypedApplication.of(app, currency)
    assert all("." in getattr(typed, name) for name in MONEY_FIELDS) == (MINOR_UNITS[currency] > 0)
    assert typed.in_minor(currency) == app


@pytest.mark.parametrize(
    ("changes", "currency", "field", "says"),
    [
        ({"requested_amount": "30000.001"}, "CNY", "requested_amount", "more decimals than CNY allows (2)"),
        ({"requested_amount": "30000.5"}, "JPY", "requested_amount", "more decimals than JPY allows (0)"),
        ({"requested_amount": "0.00"}, "CNY", "requested_amount", "is not from 0.01 CNY to 10,000,000,000.00 CNY"),
        ({"income_monthly": "10000000000.01"}, "CNY", "income_monthly", "to 10,000,000,000.00 CNY"),
        ({"currency": "USD"}, "CNY", "currency", "lends in CNY, not USD"),
        ({"requested_amount": 3_000_000}, "CNY", "requested_amount", 'e.g. "30000.00" for 30,000.00 CNY, not 3000000'),
        ({"requested_amount": 30000.0}, "CNY", "requested_amount", "not 30000.0"),
        ({"income_monthly": "15 000"}, "CNY", "income_monthly", 'not "15 000"'),
    ],
)
def test_an_application_not_in_its_products_major_units_names_the_field(
    changes: dict[str, Any], currency: str, field: str, says: str
) -> None:
    typed = {**TypedApplication.of(parse(ApplicationInput, good_application()), currency).model_dump(), **changes}
    with pytest.raises(ValidationError) as refused:
        parse(TypedApplication, typed).in_minor(currency)
    assert refused.value.field == field and says in refused.value.message, refused.value
