"""TrainConfig refuses a bad option when it is built, naming the option."""

from __future__ import annotations

import pytest

from openice.errors import ValidationError
from openice.scoring.model import DEFAULT_GRADES, TrainConfig


def test_the_defaults_are_valid() -> None:
    assert TrainConfig().grades == DEFAULT_GRADES


@pytest.mark.parametrize("pdo", [0.0, -20.0, float("nan"), float("inf")])
def test_points_to_double_the_odds_must_be_positive(pdo: float) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(pdo=pdo)
    assert err.value.field == "pdo"


@pytest.mark.parametrize(
    "grades",
    [
        (),
        (("A", 0.05), ("A", 1.0)),
        (("", 0.05), ("B", 1.0)),
        (("A", 0.10), ("B", 0.05), ("C", 1.0)),
        (("A", 0.05), ("B", 0.05), ("C", 1.0)),
        (("A", 0.0), ("B", 1.0)),
        (("A", 0.5), ("B", 1.5)),
    ],
)
def test_grades_need_distinct_names_and_ascending_bounds(grades: tuple[tuple[str, float], ...]) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(grades=grades)
    assert err.value.field == "grades"


@pytest.mark.parametrize("codes", [[], [float("nan")], [float("inf")], ["0"]])
def test_special_codes_must_be_finite_numbers(codes: list[float]) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(special={"Assets": codes})
    assert err.value.field == "Assets"


def test_a_config_cannot_change_after_its_checks() -> None:
    with pytest.raises(AttributeError):
        TrainConfig().pdo = -1.0  # type: ignore[misc]  # the point: frozen, so mypy refuses the assignment too
