from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openice.errors import ValidationError
from openice.matching.boxes import CRITERIA, BoxChange, Boxes, Drawdowns
from openice.matching.economics import margins
from openice.matching.institutions import CreditBox, Institution, load_institutions

BASE = dict(
    amount=500_000,
    tenor=12,
    score=650.0,
    pd=0.03,
    age=35,
    province="Beijing",
    income=1_000_000,
    dti=0.3,
    product="CASH-EI",
    rate=0.15,
)
BOX = CreditBox(
    min_score=600,
    max_score=800,
    min_pd=0.0,
    max_pd=0.05,
    min_amount=100_000,
    max_amount=1_000_000,
    min_tenor=3,
    max_tenor=24,
    provinces=("Beijing", "Shanghai"),
    min_age=22,
    max_age=55,
    min_income=500_000,
    max_dti=0.5,
    products=("CASH-EI",),
)
# criterion -> a drawdown value just outside the box
OUTSIDE = {
    "score": ("score", 599.0),
    "pd": ("pd", 0.06),
    "amount": ("amount", 1_000_100),
    "tenor": ("tenor", 36),
    "province": ("province", "Sichuan"),
    "age": ("age", 21),
    "income": ("income", 499_900),
    "dti": ("dti", 0.51),
    "product": ("product", "SME-IO"),
    "rate": ("rate", 0.09),
}


def institution(code: str = "BANK-A", **changes: object) -> Institution:
    data: dict[str, object] = dict(
        code=code,
        name=f"{code} Ltd",
        business_model="capital-light",
        funding_cost="0.04",
        rate="0.10",
        credit_box=BOX,
        daily_quota=10**9,
        monthly_quota=10**10,
    )
    data.update(changes)
    return Institution.model_validate(data)


def test_the_box_accepts_a_drawdown_inside_every_bound() -> None:
    boxes = Boxes([institution()])
    assert boxes.accept(Drawdowns.one(**BASE))[0, 0]
    assert boxes.refusals(Drawdowns.one(**BASE)) == {"BANK-A": []}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_each_criterion_rejects_on_its_own(criterion: str) -> None:
    column, value = OUTSIDE[criterion]
    drawdown = Drawdowns.one(**{**BASE, column: value})
    boxes = Boxes([institution(), institution("OPEN", credit_box=CreditBox(), rate="0.05")])
    accepted = boxes.accept(drawdown)
    assert not accepted[0, 0] and accepted[0, 1]  # an open box takes anything
    assert boxes.refusals(drawdown)["BANK-A"] == [criterion]


def test_batch_masks_match_one_by_one() -> None:
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "amount": rng.integers(50_000, 1_200_000, n),
            "tenor": rng.choice([3, 12, 36], n),
            "score": rng.uniform(550, 850, n),
            "pd": rng.uniform(0, 0.1, n),
            "age": rng.integers(18, 70, n),
            "province": rng.choice(["Beijing", "Sichuan", "Shanghai"], n),
            "income": rng.integers(300_000, 2_000_000, n),
            "dti": rng.uniform(0, 0.8, n),
            "product": rng.choice(["CASH-EI", "SME-IO"], n),
            "rate": rng.uniform(0.05, 0.3, n),
        }
    )
    boxes = Boxes([institution(), institution("B2", credit_box=BOX.model_copy(update={"provinces": None}))])
    batch = boxes.accept(Drawdowns.from_frame(frame))
    for i in range(0, n, 37):
        row = frame.iloc[i].to_dict()
        assert (boxes.accept(Drawdowns.one(**row))[0] == batch[i]).all()
    assert 0 < batch.sum() < batch.size


def test_a_box_change_says_which_drawdowns_it_turns_and_on_what() -> None:
    """Three drawdowns on two days: the base one, one outside the amount bound and one outside the province list.
    Widening the amount and dropping Beijing turns two answers; the daily quota is outgrown on one day after."""
    frame = pd.DataFrame([BASE, {**BASE, "amount": 1_200_000}, {**BASE, "province": "Sichuan"}])
    current = institution(daily_quota=1_000_000, monthly_quota=10**9)
    changed = institution(
        credit_box=BOX.model_copy(update={"max_amount": 2_000_000, "provinces": ("Shanghai", "Sichuan")}),
        daily_quota=1_000_000,
        monthly_quota=10**9,
    )
    change = BoxChange.of(
        Drawdowns.from_frame(frame), np.array(["CNY"] * 3, dtype=object), np.array([1, 1, 2]), current, changed
    )
    assert change.before.tolist() == [True, False, False] and change.after.tolist() == [False, False, True]
    assert change.criteria() == [
        {"criterion": "province", "newly_refused": 1, "newly_accepted": 1},
    ]  # the 1,200,000 drawdown is still refused (Beijing), so the amount turned nothing
    (totals,) = change.totals()
    assert totals["drawdowns"] == {"count": 3, "amount": 2_200_000}
    assert totals["newly_accepted"] == {"count": 1, "amount": 500_000}
    assert totals["newly_refused"] == {"count": 1, "amount": 500_000}
    widened = BoxChange.of(
        Drawdowns.from_frame(frame.iloc[:2]),
        np.array(["CNY"] * 2, dtype=object),
        np.array([1, 1]),
        current,
        institution(credit_box=BOX.model_copy(update={"max_amount": 2_000_000}), daily_quota=1_000_000),
    )
    assert widened.criteria() == [{"criterion": "amount", "newly_refused": 0, "newly_accepted": 1}]
    assert widened.days_over_quota() == (0, 1)  # 1,700,000 on day 1 against 1,000,000 a day


def test_definitions_are_validated() -> None:
    with pytest.raises(ValueError, match="guarantee_payout_dpd"):
        institution(business_model="capital-heavy")
    with pytest.raises(ValueError, match="min_pd is above max_pd"):
        CreditBox(min_pd=0.2, max_pd=0.1)
    with pytest.raises(ValueError, match="daily_quota"):
        institution(daily_quota=10, monthly_quota=5)


def test_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "institutions.yaml"
    path.write_text(
        "institutions:\n  - code: TRUST-1\n    name: A trust\n    business_model: capital-heavy\n"
        "    guarantee_payout_dpd: 90\n    funding_cost: '0.05'\n    rate: '0.08'\n"
        "    daily_quota: 1000000\n    monthly_quota: 20000000\n    credit_box: {max_pd: 0.08}\n"
    )
    [trust] = load_institutions(path)
    assert trust.credit_box.max_pd == 0.08 and trust.funding_cost_ppm == 50_000
    path.write_text("- code: X\n  name: bad\n  business_model: nope\n")
    with pytest.raises(ValidationError) as err:
        load_institutions(path)
    assert err.value.field.startswith("business_model")


def test_margin_charges_losses_only_to_models_that_bear_them() -> None:
    light = institution("L")
    heavy = institution("H", business_model="capital-heavy", guarantee_payout_dpd=90)
    own = institution("O", business_model="on-balance-sheet", funding_cost="0.05")
    value = margins(Drawdowns.one(**BASE), [light, heavy, own], {"CASH-EI": (0.01, 0.002)})[0]
    fees = 500_000 * (0.01 + 0.002 * 12)
    spread = 500_000 * 13 / 24 * (0.15 - 0.10)
    loss = (1 - 0.97**1.0) * 0.8 * 500_000
    assert value[0] == pytest.approx(fees + spread)
    assert value[1] == pytest.approx(fees + spread - loss)
    assert value[2] == pytest.approx(fees + 500_000 * 13 / 24 * (0.15 - 0.05) - loss)
