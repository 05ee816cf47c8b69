"""What-if: a change is applied field by field, and the same applicants replayed under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from openice.cli.simulation import compare
from openice.errors import ValidationError
from openice.simulation.scenario import Scenario, apply_change


def test_change_merges_policy_pricing_boxes_and_behaviour() -> None:
    base = Scenario(borrowers=100, months=3)
    changed = apply_change(
        base,
        {
            "policy": {"max_pd": 0.05, "pricing": {"C": "0.17"}, "min_line": "2000.00"},
            "institutions": {"BANK-PRIME": {"credit_box": {"max_pd": 0.03}, "daily_quota": "90000.00"}},
            "behaviour": {"macro_stress": 1.5},
        },
    )
    assert changed.policy.max_pd == 0.05 and str(changed.policy.pricing["C"]) == "0.17"
    assert changed.policy.pricing["A"] == base.policy.pricing["A"]
    assert (changed.policy.min_line, changed.policy.max_line) == (200_000, base.policy.max_line)  # 2,000.00 CNY
    prime = {i.code: i for i in changed.funders()}["BANK-PRIME"]
    assert prime.credit_box.max_pd == 0.03 and prime.credit_box.min_income == 500_000
    assert prime.daily_quota == 9_000_000  # 90,000.00 CNY typed, in fen
    untouched = {i.code: i for i in base.funders()}
    assert {i.code: i for i in changed.funders()}["CFC-WEST"] == untouched["CFC-WEST"]  # read back exactly
    assert changed.behaviour.macro_stress == 1.5
    for bad in ({"polcy": {}}, {"institutions": {"NOPE": {}}}, {"policy": {"max_pd": 7}}):
        with pytest.raises(ValidationError):
            apply_change(base, bad)
    for quota in (9_000_000, "90000.001"):  # minor units as a number; more decimals than CNY has
        with pytest.raises(ValidationError) as err:
            apply_change(base, {"institutions": {"BANK-PRIME": {"daily_quota": quota}}})
        assert err.value.field == "daily_quota"
    with pytest.raises(ValidationError) as err:  # a policy amount as a number: it may be minor units
        apply_change(base, {"policy": {"min_line": 200_000}})
    assert err.value.field == "min_line"


def test_tighter_cutoff_replays_the_same_applicants(model: Path) -> None:
    base = Scenario(borrowers=80, months=2, seed=3)
    tight = apply_change(base, {"policy": {"max_pd": 0.04}})
    before, after = compare(base, tight, model)
    assert before["applications"] == after["applications"] == 80
    assert after["approval_rate"] < before["approval_rate"]
    assert after["volume"] < before["volume"]
    assert after["expected_loss"] < before["expected_loss"]
