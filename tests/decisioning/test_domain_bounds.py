"""The application model's own bounds, which the CLI and library callers get as well as the API."""

from __future__ import annotations

import math
from typing import Any

import pytest

from openice.decisioning.domain import MAX_MINOR, ApplicationInput, parse
from openice.errors import ValidationError
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
