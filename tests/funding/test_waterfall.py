"""Hand-worked waterfalls, every figure worked in the comments (amounts in yuan, a coupon of 12% a year is 1% a
month), then the invariants over random deals and collections: cash is conserved each period, no balance goes
negative, and the notes' balances track the pool."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.waterfall import (
    Collection,
    Period,
    collections_from_csv,
    document,
    monthly,
    pay_pro_rata,
    run_waterfall,
)


def deal(*tranches: tuple[str, str, str | None], **more: Any) -> Deal:
    """A CNY deal over the tranches' total; `more` adds or replaces keys of the deal file."""
    return Deal.from_dict(
        {
            "name": "TEST",
            "currency": "CNY",
            "pool_balance": str(sum(Decimal(b) for _, b, _ in tranches)),
            "tranches": [{"name": n, "balance": b} | ({} if c is None else {"coupon": c}) for n, b, c in tranches],
        }
        | more
    )


def months(*rows: tuple[str, str, str, str]) -> list[Collection]:
    """(interest, principal, defaults, recoveries) in yuan for periods 1, 2, ..."""
    text = "period,interest,principal,defaults,recoveries\n" + "".join(
        f"{i},{','.join(r)}\n" for i, r in enumerate(rows, start=1)
    )
    return collections_from_csv(text, "CNY", "collections.csv")


def paid(p: Period) -> dict[str, tuple[int, int, int, int, int]]:
    """Each tranche's (interest due, paid, shortfall, principal paid, balance) in fen."""
    return {
        n: (t.interest_due, t.interest_paid, t.interest_shortfall, t.principal_paid, t.balance)
        for n, t in p.tranches.items()
    }


def test_a_month_of_a_rate_is_rounded_half_up_once() -> None:
    # 6% a year is 0.5% a month: on 1.00 that is half a fen, up to 1 fen; on 0.99 it is 0.495 fen, down to 0.
    assert monthly(Decimal("0.06"), 100) == 1
    assert monthly(Decimal("0.06"), 99) == 0
    # 5% on 1,234.56: 123,456 x 0.05 / 12 = 514.4 fen -> 5.14.
    assert monthly(Decimal("0.05"), 123_456) == 514


def test_sequential_pays_the_most_senior_first_and_carries_unpaid_principal() -> None:
    """A 800.00 at 12%, B 150.00 at 24%, residual R 50.00; a servicing fee of 1.2% a year (0.1% a month)."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("B", "150.00", "0.24"),
        ("R", "50.00", None),
        fees=[{"name": "servicing", "annual_rate": "0.012"}],
    )
    p1, p2, p3, p4 = run_waterfall(
        d,
        months(
            ("25.00", "100.00", "10.00", "0"),
            ("22.00", "600.00", "0", "5.00"),
            ("10.00", "280.00", "10.00", "0"),
            ("0", "0", "0", "6.00"),
        ),
    )
    # Period 1: available 25 + 100 = 125.00; fee 0.1% x 1,000 = 1.00 -> 124.00; A 1% x 800 = 8.00 -> 116.00;
    # B 2% x 150 = 3.00 -> 113.00; principal 100 + 10 defaults = 110.00, all to A (690.00) -> 3.00 residual income.
    assert (p1.available, p1.fees, p1.residual_income, p1.pool_balance) == (12_500, 100, 300, 89_000)
    assert paid(p1) == {
        "A": (800, 800, 0, 11_000, 69_000),
        "B": (300, 300, 0, 0, 15_000),
        "R": (0, 0, 0, 0, 5_000),
    }
    # Period 2: available 22 + 600 + 5 recovered = 627.00; fee 0.1% x 890 = 0.89 -> 626.11; A 1% x 690 = 6.90
    # -> 619.21; B 3.00 -> 616.21; principal 600.00 to A (90.00) -> 16.21 residual income.
    assert (p2.available, p2.fees, p2.residual_income, p2.pool_balance) == (62_700, 89, 1_621, 29_000)
    assert paid(p2)["A"] == (690, 690, 0, 60_000, 9_000)
    # Period 3: available 290.00; fee 0.29 -> 289.71; A 0.90 -> 288.81; B 3.00 -> 285.81; principal due 280 + 10 =
    # 290.00 but only 285.81 left: A 90.00, B 150.00, R 45.81 of its 50.00; 4.19 still owed, the pool is empty.
    assert (p3.fees, p3.residual_income, p3.principal_shortfall, p3.pool_balance) == (29, 0, 419, 0)
    assert paid(p3) == {
        "A": (90, 90, 0, 9_000, 0),
        "B": (300, 300, 0, 15_000, 0),
        "R": (0, 0, 0, 4_581, 419),
    }
    # Period 4: 6.00 recovered; no fee or interest on empty balances; the 4.19 owed goes to R first, 1.81 residual.
    assert (p4.available, p4.fees, p4.residual_income, p4.principal_shortfall) == (600, 0, 181, 0)
    assert paid(p4)["R"] == (0, 0, 0, 419, 0)


def test_pro_rata_splits_principal_by_opening_balances_to_the_fen() -> None:
    """A 600.00 at 6% (0.5% a month), B 300.00 at 12%, R 100.00, principal pro rata."""
    d = deal(("A", "600.00", "0.06"), ("B", "300.00", "0.12"), ("R", "100.00", None), principal_payment="pro-rata")
    p1, p2 = run_waterfall(d, months(("15.00", "100.00", "0.01", "0"), ("13.00", "200.00", "0", "0")))
    # Period 1: available 115.00; A 0.5% x 600 = 3.00, B 1% x 300 = 3.00 -> 109.00; principal 100.01 split
    # 600:300:100. Cumulative shares rounded half-up: through A 100.01 x 0.6 = 60.006 -> 60.01; through B
    # 100.01 x 0.9 = 90.009 -> 90.01, so B 30.00; through R 100.01, so R 10.00. 109.00 - 100.01 = 8.99 residual.
    assert paid(p1) == {
        "A": (300, 300, 0, 6_001, 53_999),
        "B": (300, 300, 0, 3_000, 27_000),
        "R": (0, 0, 0, 1_000, 9_000),
    }
    assert p1.residual_income == 899
    # Period 2: available 213.00; A 0.5% x 539.99 = 2.69995 -> 2.70, B 1% x 270 = 2.70 -> 207.60; principal 200.00
    # split 539.99:270.00:90.00 (899.99): through A 200 x 539.99 / 899.99 = 119.9991 -> 120.00; through B
    # 200 x 809.99 / 899.99 = 179.9998 -> 180.00, so B 60.00 and R 20.00; 7.60 residual income.
    assert paid(p2) == {
        "A": (270, 270, 0, 12_000, 41_999),
        "B": (270, 270, 0, 6_000, 21_000),
        "R": (0, 0, 0, 2_000, 7_000),
    }
    assert p2.residual_income == 760


def test_an_interest_shortfall_is_carried_without_interest_and_cured() -> None:
    """A 850.00 at 12% (8.50 a month), B 100.00 at 12% (1.00 a month), R 50.00; no principal collected."""
    d = deal(("A", "850.00", "0.12"), ("B", "100.00", "0.12"), ("R", "50.00", None))
    p1, p2, p3 = run_waterfall(d, months(("9.00", "0", "0", "0"), ("3.00", "0", "0", "0"), ("20.00", "0", "0", "0")))
    # Period 1: 9.00 in; A 8.50 paid; B 1.00 due, 0.50 paid, 0.50 short.
    assert (paid(p1)["A"][:3], paid(p1)["B"][:3], p1.residual_income) == ((850, 850, 0), (100, 50, 50), 0)
    # Period 2: 3.00 in; A 8.50 due, 3.00 paid, 5.50 short; B 1.00 + 0.50 = 1.50 due, nothing left, 1.50 short.
    assert (paid(p2)["A"][:3], paid(p2)["B"][:3], p2.residual_income) == ((850, 300, 550), (150, 0, 150), 0)
    # Period 3: 20.00 in; A 8.50 + 5.50 = 14.00 (no interest on the 5.50), B 1.00 + 1.50 = 2.50; cured, 3.50 left.
    assert (paid(p3)["A"][:3], paid(p3)["B"][:3], p3.residual_income) == ((1_400, 1_400, 0), (250, 250, 0), 350)


def test_a_breached_trigger_turns_principal_sequential_for_good() -> None:
    """A 800.00, B 100.00 at 12%, R 100.00, pro rata until cumulative defaults exceed 5% of the 1,000.00 pool."""
    trigger = {"metric": "cumulative_default_rate", "above": "0.05", "then": "sequential"}
    d = deal(
        ("A", "800.00", "0.12"),
        ("B", "100.00", "0.12"),
        ("R", "100.00", None),
        principal_payment="pro-rata",
        triggers=[trigger],
    )
    p1, p2, p3 = run_waterfall(
        d,
        months(("40.00", "100.00", "30.00", "0"), ("40.00", "100.00", "30.00", "0"), ("20.00", "100.00", "0", "0")),
    )
    # Period 1: defaults 30.00 = 3% of 1,000, not above 5%: pro rata. Available 140.00; A 8.00, B 1.00 -> 131.00;
    # principal 130.00 split 8:1:1 -> A 104.00, B 13.00, R 13.00; 1.00 residual income.
    assert not p1.trigger_breached
    assert [t[3:] for t in paid(p1).values()] == [(10_400, 69_600), (1_300, 8_700), (1_300, 8_700)]
    assert p1.residual_income == 100
    # Period 2: defaults to date 60.00 = 6% > 5%: sequential from now. Available 140.00; A 1% x 696 = 6.96,
    # B 1% x 87 = 0.87 -> 132.17; principal 130.00 all to A (566.00); 2.17 residual income.
    assert p2.trigger_breached
    assert [t[3:] for t in paid(p2).values()] == [(13_000, 56_600), (0, 8_700), (0, 8_700)]
    assert p2.residual_income == 217
    # Period 3: no new defaults, still sequential. Available 120.00; A 5.66, B 0.87 -> 113.47; 100.00 to A (466.00);
    # 13.47 residual income.
    assert p3.trigger_breached
    assert [t[3:] for t in paid(p3).values()] == [(10_000, 46_600), (0, 8_700), (0, 8_700)]
    assert p3.residual_income == 1_347


def test_the_reserve_is_drawn_then_refilled_to_its_target() -> None:
    """A 900.00 at 12%, R 100.00, sequential, a reserve account of 20.00 (its target)."""
    d = deal(("A", "900.00", "0.12"), ("R", "100.00", None), reserve_account={"target": "20.00", "initial": "20.00"})
    p1, p2 = run_waterfall(d, months(("5.00", "50.00", "0", "0"), ("15.00", "50.00", "0", "0")))
    # Period 1: available 5 + 50 + 20 in reserve = 75.00; A 9.00 -> 66.00; 50.00 to A -> 16.00, all of it back in
    # the reserve (4.00 short of its target); nothing residual.
    assert (p1.available, p1.reserve_balance, p1.residual_income) == (7_500, 1_600, 0)
    # Period 2: available 15 + 50 + 16 = 81.00; A 1% x 850 = 8.50 -> 72.50; 50.00 to A -> 22.50; the reserve back to
    # 20.00, 2.50 residual income.
    assert (p2.available, p2.reserve_balance, p2.residual_income) == (8_100, 2_000, 250)
    assert paid(p2)["A"] == (850, 850, 0, 5_000, 80_000)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"pool_balance": "-1000.00"}, "pool_balance"),
        ({"pool_balance": "999.999"}, "pool_balance"),
        ({"currency": "XYZ"}, "currency"),
        ({"principal_payment": "turbo"}, "principal_payment"),
        ({"fees": [{"name": "servicing", "annual_rate": "-0.01"}]}, "fees[0].annual_rate"),
        ({"fees": [{"name": "servicing", "rate": "0.01"}]}, "fees[0].rate"),
        ({"reserve_account": {"target": "10.00"}}, "reserve_account.initial"),
        (
            {"triggers": [{"metric": "cumulative_default_rate", "above": "0.05", "then": "pro-rata"}]},
            "triggers[0].then",
        ),
        ({"triggers": [{"metric": "delinquency", "above": "0.05", "then": "sequential"}]}, "triggers[0].metric"),
        ({"revolving": {"until_period": 0}}, "revolving.until_period"),
        ({"revolving": {"until_period": 3, "until": "2026-12-31"}}, "revolving.until"),
        ({"revolving": {"until_period": 3, "ends_on_trigger": "yes"}}, "revolving.ends_on_trigger"),
        ({"revolving": 3}, "revolving"),
        ({"clean_up_call": {"below": "1.5"}}, "clean_up_call.below"),
        ({"clean_up_call": {"below": "0"}}, "clean_up_call.below"),
        ({"clean_up_call": {}}, "clean_up_call.below"),
    ],
)
def test_an_invalid_deal_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    data = {
        "name": "TEST",
        "currency": "CNY",
        "pool_balance": "1000.00",
        "tranches": [{"name": "A", "balance": "900.00", "coupon": "0.05"}, {"name": "R", "balance": "100.00"}],
    }
    with pytest.raises(ValidationError) as refused:
        Deal.from_dict(data | change)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("tranches", "field"),
    [
        (
            [{"name": "A", "balance": "1100.00", "coupon": "0.05"}, {"name": "R", "balance": "-100.00"}],
            "tranches[1].balance",
        ),
        ([{"name": "A", "balance": "900.00", "coupon": "0.05"}, {"name": "R", "balance": "90.00"}], "tranches"),
        (
            [{"name": "R", "balance": "100.00"}, {"name": "A", "balance": "900.00", "coupon": "0.05"}],
            "tranches[0].coupon",
        ),
        (
            [{"name": "A", "balance": "900.00", "coupon": "0.05"}, {"name": "A", "balance": "100.00"}],
            "tranches[1].name",
        ),
        ([{"name": "A", "balance": "1000.00", "coupon": "0.05"}], "tranches[0]"),
        (
            [{"name": "A", "balance": "900.00", "coupon": "5%x"}, {"name": "R", "balance": "100.00"}],
            "tranches[0].coupon",
        ),
    ],
)
def test_tranches_must_be_sound_and_add_up_to_the_pool(tranches: list[dict[str, str]], field: str) -> None:
    data = {"name": "TEST", "currency": "CNY", "pool_balance": "1000.00", "tranches": tranches}
    with pytest.raises(ValidationError) as refused:
        Deal.from_dict(data)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("1,1.00,2.00,0,0\n3,1.00,2.00,0,0\n", "c.csv line 3, period", "period 2 is missing"),
        ("1,1.00,abc,0,0\n", "c.csv line 2, principal", "'abc' is not a number"),
        ("1,1.00,2.00,-3.00,0\n", "c.csv line 2, defaults", "-3.00 is negative"),
        ("1,1.00,2.00,0,0.001\n", "c.csv line 2, recoveries", "more decimals"),
        ("1,1.00,2.00,0\n", "c.csv line 2, recoveries", "is empty"),
        ("x,1.00,2.00,0,0\n", "c.csv line 2, period", "not a period number"),
    ],
)
def test_a_bad_collections_cell_is_refused_naming_line_and_column(text: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        collections_from_csv("period,interest,principal,defaults,recoveries\n" + text, "CNY", "c.csv")
    assert refused.value.field == field and words in refused.value.message


def test_a_month_cannot_take_more_than_the_pool_holds() -> None:
    d = deal(("A", "90.00", "0.12"), ("R", "10.00", None))
    with pytest.raises(ValidationError) as refused:
        run_waterfall(d, months(("1.00", "60.00", "0", "0"), ("1.00", "30.00", "10.01", "0")))
    # 100.00 - 60.00 = 40.00 left; 30.00 + 10.01 = 40.01 is 0.01 too much.
    assert refused.value.field == "period 2" and "40.01 CNY" in refused.value.message


@given(
    amount_share=st.fractions(min_value=0, max_value=1),
    balances=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=6),
)
def test_a_pro_rata_split_adds_up_and_each_part_is_its_share_rounded(amount_share: Any, balances: list[int]) -> None:
    amount = int(amount_share * sum(balances))
    parts = pay_pro_rata(amount, balances)
    assert sum(parts) == amount
    for part, balance in zip(parts, balances, strict=True):
        assert 0 <= part <= balance
        if sum(balances):
            assert abs(part - Fraction(amount * balance, sum(balances))) < 1  # its exact share rounded up or down


@st.composite
def deals_and_collections(draw: st.DrawFn) -> tuple[Deal, list[Collection]]:
    """A deal of one to three coupon tranches over a residual one, fees, a reserve and a trigger drawn at random,
    and up to 24 months that never take more out of the pool than it holds."""
    notes = draw(st.lists(st.integers(min_value=0, max_value=10**8), min_size=2, max_size=4))
    rate = st.decimals(min_value=0, max_value=Decimal("0.3"), places=4)
    tranches = [
        {"name": f"T{i}", "balance": f"{b / 100:.2f}"} | ({} if i == len(notes) - 1 else {"coupon": str(draw(rate))})
        for i, b in enumerate(notes)
    ]
    pool = sum(notes)
    if pool == 0:
        tranches[0]["balance"], pool = "0.01", pool + 1
    target = draw(st.integers(min_value=0, max_value=pool // 10))
    d = Deal.from_dict(
        {
            "name": "RANDOM",
            "currency": "CNY",
            "pool_balance": f"{pool / 100:.2f}",
            "tranches": tranches,
            "fees": [{"name": "servicing", "annual_rate": str(draw(rate))}],
            "principal_payment": draw(st.sampled_from(["sequential", "pro-rata"])),
            "reserve_account": {
                "target": f"{target / 100:.2f}",
                "initial": f"{draw(st.integers(0, target)) / 100:.2f}",
            },
            "triggers": [{"metric": "cumulative_default_rate", "above": str(draw(rate)), "then": "sequential"}],
        }
        | draw(
            st.sampled_from(
                [
                    {},
                    {"revolving": {"until_period": 3, "ends_on_trigger": False}},
                    {"revolving": {"until_period": 2}, "clean_up_call": {"below": "0.3"}},
                    {"clean_up_call": {"below": "0.1"}},
                ]
            )
        )
    )
    left, rows = pool, []
    for period in range(1, draw(st.integers(min_value=1, max_value=24)) + 1):
        principal = draw(st.integers(min_value=0, max_value=left))
        defaults = draw(st.integers(min_value=0, max_value=left - principal))
        left -= principal + defaults
        money = st.integers(min_value=0, max_value=pool // 20 + 1)
        purchased = draw(st.none() | st.integers(min_value=0, max_value=pool))
        rows.append(Collection(period, draw(money), principal, defaults, draw(money), purchased))
    return d, rows


@settings(max_examples=300, deadline=None)
@given(deals_and_collections())
def test_cash_is_conserved_and_the_notes_track_the_pool(case: tuple[Deal, list[Collection]]) -> None:
    d, collections = case
    reserve, pool = d.reserve_account.initial, d.pool_balance
    periods = run_waterfall(d, collections)
    assert len(periods) == len(collections) or periods[-1].clean_up_call  # only a call ends the run early
    for p, c in zip(periods, collections, strict=False):
        price = pool - c.principal - c.defaults if p.clean_up_call else 0  # the servicer pays what the pool holds
        assert p.available == c.interest + c.principal + c.recoveries + reserve + price
        reserve, pool = p.reserve_balance, p.pool_balance
        tranches = p.tranches.values()
        interest = sum(t.interest_paid for t in tranches)
        principal = sum(t.principal_paid for t in tranches)
        assert p.available == p.fees + interest + principal + p.reinvested + p.reserve_balance + p.residual_income
        assert p.reinvested == 0 or (p.revolving and (c.purchased is None or p.reinvested <= c.purchased))
        assert not p.clean_up_call or (p.pool_balance == 0 and p.reserve_balance == 0)
        assert all(t.loss == 0 or p.clean_up_call for t in tranches)
        assert all(t.balance >= 0 and t.interest_shortfall == t.interest_due - t.interest_paid for t in tranches)
        assert sum(t.balance for t in tranches) == p.pool_balance + p.principal_shortfall
        assert 0 <= p.reserve_balance <= d.reserve_account.target and p.residual_income >= 0
        assert d.residual.name in p.tranches and p.tranches[d.residual.name].interest_due == 0
        if p.residual_income > 0:  # residual income only once everything above it is paid
            assert p.principal_shortfall == 0 and p.fees_shortfall == 0
            assert p.reserve_balance == (0 if p.clean_up_call else d.reserve_account.target)
            assert all(t.interest_shortfall == 0 for t in tranches)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("", "c.csv", "is empty; its first line is the header period,interest,principal,defaults,recoveries"),
        ("period,interest,principal,defaults\n1,1,1,0\n", "c.csv, recoveries", "column is missing"),
        ("period,interest,principal,defaults,recoveries,fees\n", "c.csv, fees", "unknown column"),
        ("period,interest,principal,defaults,recoveries\n1,1,1,0,0,9\n", "c.csv line 2", "more cells than the header"),
        ("period,interest,principal,defaults,recoveries\n", "c.csv", "holds no period"),
    ],
)
def test_a_collections_file_without_its_header_or_rows_is_refused(text: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        collections_from_csv(text, "CNY", "c.csv")
    assert refused.value.field == field and words in refused.value.message


def test_a_reserve_above_its_target_is_released_to_the_residual_tranche() -> None:
    """A 90.00 at 0%, R 10.00, a reserve of 30.00 whose target is 10.00."""
    d = deal(("A", "90.00", "0"), ("R", "10.00", None), reserve_account={"target": "10.00", "initial": "30.00"})
    (p1,) = run_waterfall(d, months(("1.00", "5.00", "0", "0")))
    # Available 1 + 5 + 30 = 36.00; 5.00 of principal to A; the reserve kept at 10.00; 21.00 residual income.
    assert (p1.available, p1.reserve_balance, p1.residual_income) == (3_600, 1_000, 2_100)


def test_a_revolving_deal_buys_loans_with_its_principal_until_a_trigger_ends_it() -> None:
    """A 800.00 at 12% (1% a month), R 200.00; revolving through period 2, ended early by cumulative defaults above
    5% of the 1,000.00 pool (50.00)."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("R", "200.00", None),
        revolving={"until_period": 2, "ends_on_trigger": True},
        triggers=[{"metric": "cumulative_default_rate", "above": "0.05", "then": "sequential"}],
    )
    p1, p2, p3 = run_waterfall(
        d,
        months(("10.00", "100.00", "0", "0"), ("10.00", "50.00", "60.00", "0"), ("9.00", "100.00", "0", "0")),
    )
    # 1: available 10 + 100 = 110.00; A's interest 8.00; the 100.00 of principal buys loans instead of paying A, so
    # the pool is 1,000 - 100 + 100 = 1,000.00 again; 110 - 8 - 100 = 2.00 residual income.
    assert (p1.revolving, p1.reinvested, p1.pool_balance, p1.residual_income) == (True, 10_000, 100_000, 200)
    assert paid(p1)["A"] == (800, 800, 0, 0, 80_000)
    # 2: defaults 60.00 > 50.00 breach the trigger: the revolving period ends (early amortisation). Available
    # 10 + 50 = 60.00; A's interest 8.00; 52.00 left of the 110.00 due goes to A (748.00), 58.00 carried; the pool is
    # 1,000 - 110 = 890.00, and A + R = 948.00 = 890.00 + 58.00.
    assert (p2.revolving, p2.reinvested, p2.trigger_breached, p2.pool_balance) == (False, 0, True, 89_000)
    assert paid(p2)["A"] == (800, 800, 0, 5_200, 74_800) and p2.principal_shortfall == 5_800
    # 3: no longer revolving for good. Available 109.00; A's interest 1% of 748.00 = 7.48; 101.52 of the 158.00 due
    # to A (646.48), 56.48 carried; the pool 790.00.
    assert (p3.revolving, p3.reinvested, p3.pool_balance, p3.principal_shortfall) == (False, 0, 79_000, 5_648)
    assert paid(p3)["A"] == (748, 748, 0, 10_152, 64_648)


def test_a_revolving_period_ends_after_its_last_period_and_pays_the_notes_what_it_could_not_spend() -> None:
    """A 800.00 at 12%, R 200.00; revolving through period 1, a trigger (1%) that does not end it; the book had only
    60.00 of eligible loans in period 1."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("R", "200.00", None),
        revolving={"until_period": 1, "ends_on_trigger": False},
        triggers=[{"metric": "cumulative_default_rate", "above": "0.01", "then": "sequential"}],
    )
    p1, p2 = run_waterfall(
        d,
        [Collection(1, 1_000, 10_000, 2_000, 0, purchased=6_000), Collection(2, 1_000, 5_000, 0, 0)],
    )
    # 1: available 10 + 100 = 110.00; A's interest 8.00; 102.00 of the 120.00 due; the trigger (20.00 > 10.00) is
    # breached but does not end this revolving period: 60.00 buys loans, the other 42.00 goes to A (758.00); 18.00
    # carried; the pool 1,000 - 120 + 60 = 940.00 and A + R = 958.00 = 940.00 + 18.00.
    assert (p1.revolving, p1.trigger_breached, p1.reinvested, p1.pool_balance) == (True, True, 6_000, 94_000)
    assert paid(p1)["A"] == (800, 800, 0, 4_200, 75_800) and p1.principal_shortfall == 1_800
    # 2: after the revolving period. Available 60.00; A's interest 7.58; 52.42 of the 50 + 18 = 68.00 due to A
    # (705.58), 15.58 carried; the pool 890.00.
    assert (p2.revolving, p2.reinvested, p2.pool_balance, p2.principal_shortfall) == (False, 0, 89_000, 1_558)
    assert paid(p2)["A"] == (758, 758, 0, 5_242, 70_558)


def test_a_clean_up_call_pays_the_notes_off_and_ends_the_deal() -> None:
    """A 800.00 at 12%, R 200.00, a reserve of 10.00 (its target too), a call below 10% of the 1,000.00 pool."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("R", "200.00", None),
        reserve_account={"target": "10.00", "initial": "10.00"},
        clean_up_call={"below": "0.10"},
    )
    periods = run_waterfall(
        d, months(("10.00", "500.00", "0", "0"), ("5.00", "420.00", "0", "0"), ("1.00", "10.00", "0", "0"))
    )
    p1, p2 = periods  # period 3 does not run: the deal ended with the call
    # 1: the pool 500.00 is not below 100.00. Available 10 + 500 + 10 = 520.00; A's interest 8.00; 500.00 to A
    # (300.00); the reserve back to 10.00; 2.00 residual income.
    assert (p1.clean_up_call, p1.pool_balance, p1.reserve_balance, p1.residual_income) == (False, 50_000, 1_000, 200)
    # 2: the pool would be 500 - 420 = 80.00, below 100.00: the servicer pays 80.00 for it. Available 5 + 420 + 10
    # + 80 = 515.00; A's interest 3.00; principal due 420 + 80 = 500.00 pays A 300.00 and R 200.00 off; the reserve is
    # released (target zero); 515 - 3 - 500 = 12.00 residual income; the pool is empty.
    assert (p2.clean_up_call, p2.available, p2.pool_balance, p2.reserve_balance) == (True, 51_500, 0, 0)
    assert paid(p2) == {"A": (300, 300, 0, 30_000, 0), "R": (0, 0, 0, 20_000, 0)}
    assert p2.residual_income == 1_200
    assert document(periods, "CNY")["periods"][1]["clean_up_call"] is True


def test_a_call_the_book_cannot_make_yet_waits_for_the_next_month() -> None:
    """The clean-up call deal above; in period 2 the book's loans do not stand at the pool's 80.00 (`callable`
    False), so the call waits."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("R", "200.00", None),
        reserve_account={"target": "10.00", "initial": "10.00"},
        clean_up_call={"below": "0.10"},
    )
    _, p2, p3 = run_waterfall(
        d,
        [
            Collection(1, 1_000, 50_000, 0, 0),
            Collection(2, 500, 42_000, 0, 0, callable=False),
            Collection(3, 100, 1_000, 0, 0),
        ],
    )
    # 2: no call. Available 5 + 420 + 10 = 435.00; A's interest 3.00; 420.00 of principal pays A's 300.00 off and
    # 120.00 of R (80.00 left); the reserve back to 10.00; 2.00 residual income; the pool 80.00.
    assert (p2.clean_up_call, p2.pool_balance, p2.reserve_balance, p2.residual_income) == (False, 8_000, 1_000, 200)
    assert paid(p2)["R"] == (0, 0, 0, 12_000, 8_000)
    # 3: the pool would end at 70.00, still below 100.00: called for 70.00. Available 1 + 10 + 10 + 70 = 91.00; A has
    # nothing left to earn; principal 10 + 70 = 80.00 pays R off; the reserve released; 11.00 residual income.
    assert (p3.clean_up_call, p3.available, p3.pool_balance, p3.residual_income) == (True, 9_100, 0, 1_100)
    assert paid(p3)["R"] == (0, 0, 0, 8_000, 0)


def test_a_call_that_cannot_pay_the_notes_off_writes_their_balance_down_as_loss() -> None:
    """The clean-up call deal above, sequential, whose pool loses 950.00 to defaults in its first month."""
    d = deal(
        ("A", "800.00", "0.12"),
        ("R", "200.00", None),
        principal_payment="sequential",
        reserve_account={"target": "10.00", "initial": "10.00"},
        clean_up_call={"below": "0.10"},
    )
    (p1,) = run_waterfall(d, months(("10.00", "0", "950.00", "0")))
    # The pool would be 1,000 - 950 = 50.00, below 100.00: called for 50.00. Available 10 + 10 + 50 = 70.00; A's
    # interest 8.00; 62.00 of the 950 + 50 = 1,000.00 due pays A (738.00 left); nothing for R. The deal ends, so A's
    # 738.00 and R's 200.00 are written down as their loss: every balance is zero, nothing is carried.
    assert (p1.clean_up_call, p1.available, p1.pool_balance, p1.principal_shortfall) == (True, 7_000, 0, 0)
    assert paid(p1) == {"A": (800, 800, 0, 6_200, 0), "R": (0, 0, 0, 0, 0)}
    assert {n: t.loss for n, t in p1.tranches.items()} == {"A": 73_800, "R": 20_000}
    assert (p1.reserve_balance, p1.residual_income) == (0, 0)
    tranches = document([p1], "CNY")["periods"][0]["tranches"]
    assert {n: t["loss"] for n, t in tranches.items()} == {"A": "738.00", "R": "200.00"}  # type: ignore[attr-defined]
