from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openice.decisioning.domain import parse
from openice.errors import ValidationError
from openice.matching.boxes import CRITERIA, BoxChange, Boxes, Drawdowns
from openice.matching.economics import margins
from openice.matching.institutions import CreditBox, Institution, TypedInstitution, load_institutions, terms_currency

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


CURRENCIES = {"CASH-EI": "CNY", "SME-IO": "CNY"}  # each product's


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


def body(inst: Institution, currency: str = "CNY") -> dict[str, object]:
    """The institution as a client types it for the API or a file: money as decimal strings of major units."""
    return TypedInstitution.of(inst, currency).model_dump(mode="json")


def test_the_box_accepts_a_drawdown_inside_every_bound() -> None:
    boxes = Boxes([institution()], CURRENCIES)
    assert boxes.accept(Drawdowns.one(**BASE))[0, 0]
    assert boxes.refusals(Drawdowns.one(**BASE)) == {"BANK-A": []}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_each_criterion_rejects_on_its_own(criterion: str) -> None:
    column, value = OUTSIDE[criterion]
    drawdown = Drawdowns.one(**{**BASE, column: value})
    boxes = Boxes([institution(), institution("OPEN", credit_box=CreditBox(), rate="0.05")], CURRENCIES)
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
    boxes = Boxes([institution(), institution("B2", credit_box=BOX.model_copy(update={"provinces": None}))], CURRENCIES)
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
        "    guarantee_payout_dpd: 90\n    funding_cost: '0.05'\n    rate: '0.08'\n    currency: CNY\n"
        "    daily_quota: '10000.00'\n    monthly_quota: '200000'\n"
        "    credit_box: {max_pd: 0.08, min_amount: '1000.50', max_amount: '50000.00'}\n"
    )
    [typed] = load_institutions(path)
    trust = typed.in_minor("CNY")
    # 10,000.00 CNY = 1,000,000 fen; 200,000 CNY = 20,000,000 fen; 1,000.50 = 100,050; 50,000.00 = 5,000,000
    assert (trust.daily_quota, trust.monthly_quota) == (1_000_000, 20_000_000)
    assert (trust.credit_box.min_amount, trust.credit_box.max_amount, trust.credit_box.min_income) == (
        100_050,
        5_000_000,
        0,
    )
    assert trust.credit_box.max_pd == 0.08 and trust.funding_cost_ppm == 50_000
    path.write_text("- code: X\n  name: bad\n  business_model: nope\n")
    with pytest.raises(ValidationError) as err:
        load_institutions(path)
    assert err.value.field.startswith("business_model")


TYPED = dict(
    code="BANK-T",
    name="Typed Bank",
    business_model="capital-light",
    funding_cost="0.04",
    rate="0.10",
    currency="CNY",
    daily_quota="10000.00",
    monthly_quota="200000.00",
)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"daily_quota": 1000000}, "daily_quota", "decimal string in major units"),  # a number may be minor units
        ({"daily_quota": "10000.001"}, "daily_quota", "more decimals than CNY allows (2)"),
        ({"daily_quota": "1,000.00"}, "daily_quota", "decimal string"),
        ({"daily_quota": "0"}, "daily_quota", "is not from 0.01 CNY to 10,000,000,000,000.00 CNY"),
        ({"monthly_quota": "10000000000000.01"}, "monthly_quota", "is not from 0.01 CNY"),
        ({"daily_quota": "300000.00"}, "monthly_quota", "daily_quota is above monthly_quota"),
        ({"credit_box": {"max_amount": "0.00"}}, "credit_box.max_amount", "is not from 0.01 CNY"),
        ({"credit_box": {"min_income": "-1.00"}}, "credit_box.min_income", "is not from 0.00 CNY"),
        ({"credit_box": {"min_amount": "5.00", "max_amount": "2.00"}}, "credit_box.max_amount", "min_amount is above"),
        ({"currency": "cny"}, "currency", "pattern"),
    ],
)
def test_a_typed_institution_is_refused_naming_the_field(change: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(TypedInstitution, {**TYPED, **change}).in_minor("CNY")
    assert err.value.field == field and says in err.value.message


def test_a_typed_institution_reads_back_as_typed_in_the_currency_s_own_decimals() -> None:
    stored = institution(daily_quota=123_456, monthly_quota=10**9)
    typed = TypedInstitution.of(stored, "CNY")
    # 123,456 fen = 1234.56 CNY; 1,000,000 fen of the box's min_amount (BOX) = 1000.00
    assert (typed.daily_quota, typed.monthly_quota, typed.credit_box.min_amount) == (
        "1234.56",
        "10000000.00",
        "1000.00",
    )
    assert typed.in_minor("CNY") == stored.model_copy(update={"currency": "CNY"})  # stored from now on with it
    yen = TypedInstitution.model_validate({**TYPED, "currency": "JPY", "daily_quota": "5000", "monthly_quota": "9000"})
    assert (yen.in_minor("JPY").daily_quota, TypedInstitution.of(yen.in_minor("JPY"), "JPY").daily_quota) == (
        5000,
        "5000",
    )  # JPY has no minor unit: 5,000 yen is 5,000
    with pytest.raises(ValidationError, match="more decimals than JPY allows"):
        TypedInstitution.model_validate({**TYPED, "currency": "JPY", "daily_quota": "5000.5"}).in_minor("JPY")


def test_the_terms_currency_is_the_book_s() -> None:
    assert terms_currency(["CNY", "CNY"]) == "CNY"
    assert terms_currency(["USD", "CNY"]) == "CNY"  # several: the first in order, as quotas are one figure
    assert terms_currency([]) is None  # no product yet


def test_an_institution_s_own_currency_comes_before_the_book_s() -> None:
    """Its own currency is kept whatever the book's (or with no product at all); left out, the book's is stored; with
    neither, the refusal says what to give."""
    usd = parse(TypedInstitution, {**TYPED, "currency": "USD"})
    # 10,000.00 USD a day is 1,000,000 cents, read back in USD whatever the book's currency
    assert (usd.in_minor("CNY").currency, usd.in_minor(None).daily_quota) == ("USD", 1_000_000)
    back = TypedInstitution.of(usd.in_minor(None), "CNY")
    assert (back.daily_quota, back.currency) == ("10000.00", "USD")
    unnamed = parse(TypedInstitution, {k: v for k, v in TYPED.items() if k != "currency"})
    assert unnamed.in_minor("CNY").currency == "CNY"
    with pytest.raises(ValidationError) as err:
        unnamed.in_minor(None)
    assert err.value.field == "currency" and 'give the institution\'s "currency"' in err.value.message


def test_an_institution_is_never_offered_a_product_in_another_currency() -> None:
    """A USD institution with an open box and a CNY one: a CASH-EI drawdown (CNY) is refused by the USD one on
    `product`, whatever its box lets through; a USD product goes the other way."""
    open_box = CreditBox()
    cny, usd = (
        institution("CNY-BANK", credit_box=open_box),
        institution("USD-BANK", credit_box=open_box, currency="USD"),
    )
    boxes = Boxes([cny, usd], {"CASH-EI": "CNY", "DOLLAR": "USD"})
    assert boxes.refusals(Drawdowns.one(**BASE)) == {"CNY-BANK": [], "USD-BANK": ["product"]}
    assert boxes.refusals(Drawdowns.one(**{**BASE, "product": "DOLLAR"})) == {"CNY-BANK": ["product"], "USD-BANK": []}
    # a definition stored without a currency is the book's: the first of the products' in order, CNY
    legacy = institution("OLD", credit_box=open_box)
    assert Boxes([legacy], {"CASH-EI": "CNY", "DOLLAR": "USD"}).accept(Drawdowns.one(**BASE))[0, 0]


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
