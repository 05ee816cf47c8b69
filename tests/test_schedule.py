"""Hand-worked schedules for each repayment method and day count, leap years included."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from openice.errors import ValidationError
from openice.servicing.daycount import DayCount, days_30_360
from openice.servicing.products import LoanProduct, RepaymentMethod
from openice.servicing.schedule import build_schedule


def product(method: RepaymentMethod, rate: str, day_count: DayCount = DayCount.THIRTY_360, tenors=(12,), **kw):
    return LoanProduct(
        code="T", currency="CNY", tenors=tenors, method=method, nominal_rate=Decimal(rate), day_count=day_count, **kw
    )


def rows(schedule):
    return [(i.due_date, i.principal, i.interest, i.fee) for i in schedule.installments]


def test_equal_installment_10000_at_12_percent_pays_888_49() -> None:
    s = build_schedule(product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12"), 1_000_000, 12, date(2026, 1, 15))
    totals = [i.total for i in s.installments]
    assert totals[:11] == [88_849] * 11
    assert s.installments[0].interest == 10_000 and s.installments[0].principal == 78_849
    # month 2: 1% of 9,211.51 = 92.1151 -> 92.12 (half-up)
    assert s.installments[1].interest == 9_212
    assert sum(i.principal for i in s.installments) == 1_000_000
    assert totals[11] == 88_847  # the last installment absorbs the rounding residual


def test_equal_principal_pays_933_33_first() -> None:
    s = build_schedule(product(RepaymentMethod.EQUAL_PRINCIPAL, "0.12"), 1_000_000, 12, date(2026, 1, 15))
    assert s.installments[0].total == 93_333
    assert [i.principal for i in s.installments[:11]] == [83_333] * 11
    assert s.installments[-1].principal == 83_337  # 10,000 - 11 x 833.33
    assert s.installments[-1].interest == 833  # 1% of 833.37


def test_act_365_across_a_leap_february() -> None:
    s = build_schedule(
        product(RepaymentMethod.EQUAL_PRINCIPAL, "0.10", DayCount.ACT_365, tenors=(3,)), 1_200_000, 3, date(2028, 1, 31)
    )
    assert rows(s) == [
        (date(2028, 2, 29), 400_000, 9_534, 0),  # 12,000 x 10% x 29/365 = 95.342
        (date(2028, 3, 31), 400_000, 6_795, 0),  # 8,000 x 10% x 31/365 = 67.945
        (date(2028, 4, 30), 400_000, 3_288, 0),  # 4,000 x 10% x 30/365 = 32.877
    ]


def test_act_360_interest_only() -> None:
    s = build_schedule(
        product(RepaymentMethod.INTEREST_ONLY, "0.12", DayCount.ACT_360, tenors=(2,)), 1_000_000, 2, date(2026, 1, 15)
    )
    assert rows(s) == [
        (date(2026, 2, 15), 0, 10_333, 0),  # 31 days: 103.333
        (date(2026, 3, 15), 1_000_000, 9_333, 0),
    ]  # 28 days: 93.333


def test_bullet_act_365() -> None:
    s = build_schedule(
        product(RepaymentMethod.BULLET, "0.10", DayCount.ACT_365, tenors=(3,)), 1_000_000, 3, date(2026, 1, 15)
    )
    assert rows(s) == [(date(2026, 4, 15), 1_000_000, 24_658, 0)]  # 90 days: 246.575


def test_30_360_month_end_start_is_a_full_month() -> None:
    s = build_schedule(product(RepaymentMethod.INTEREST_ONLY, "0.12", tenors=(2,)), 1_000_000, 2, date(2026, 1, 31))
    assert [i.due_date for i in s.installments] == [date(2026, 2, 28), date(2026, 3, 31)]
    assert [i.interest for i in s.installments] == [10_000, 10_000]
    assert days_30_360(date(2026, 1, 31), date(2026, 3, 31)) == 60
    assert days_30_360(date(2028, 2, 29), date(2028, 3, 31)) == 32


def test_fees_raise_the_apr_and_a_cap_refuses() -> None:
    plain = build_schedule(product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12"), 1_000_000, 12, date(2026, 1, 15))
    assert abs(plain.apr - Decimal("0.12")) < Decimal("1e-5")  # no fees: the nominal rate, but for cent rounding
    with_fees = product(
        RepaymentMethod.EQUAL_INSTALLMENT,
        "0.12",
        facilitation_fee_rate=Decimal("0.02"),
        monthly_service_fee_rate=Decimal("0.003"),
    )
    s = build_schedule(with_fees, 1_000_000, 12, date(2026, 1, 15))
    assert s.upfront_fee == 20_000 and s.installments[0].fee == 3_000
    assert s.apr > plain.apr + Decimal("0.05")
    capped = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.30", apr_cap=Decimal("0.24"))
    with pytest.raises(ValidationError) as err:
        build_schedule(capped, 1_000_000, 12, date(2026, 1, 15))
    assert err.value.field == "rate" and "cap" in err.value.message


def test_apr_is_the_per_period_irr_times_12_and_a_24_percent_loan_passes_a_24_percent_cap() -> None:
    # 10,000.00 interest-only at 24% (30/360): 200.00 a month, exactly 2% of what was received, so the
    # per-period IRR is 2%: APR 2% x 12 = 24%; effective annual rate 1.02^12 - 1 = 26.824%.
    capped = product(RepaymentMethod.INTEREST_ONLY, "0.24", apr_cap=Decimal("0.24"))
    s = build_schedule(capped, 1_000_000, 12, date(2026, 1, 15))
    assert abs(s.apr - Decimal("0.24")) < Decimal("1e-9")
    assert abs(s.effective_annual_rate - Decimal("0.268241794562545318301696")) < Decimal("1e-9")
    assert s.apr_convention == "IRR method: per-period IRR x 12"


def test_an_equal_installment_loan_at_the_cap_passes_whatever_its_amount() -> None:
    # 10,000.00 at 24%, 12 equal installments of 945.60: the interest of each month rounds half-up to the
    # fen (185.09 for 185.0848 in month 2 ...), which leaves the IRR at 24.00006% (EAR 26.82%). 500.00 at
    # 24% rounds further from the rate (9.25 for 9.2542 ...): 24.0039%. Both are loans at the cap.
    capped = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.24", apr_cap=Decimal("0.24"))
    s = build_schedule(capped, 1_000_000, 12, date(2026, 1, 15))
    assert s.installments[0].total == 94_560 and s.installments[1].interest == 18_509
    assert Decimal("0.2400006") < s.apr < Decimal("0.2400007")
    assert f"{s.effective_annual_rate:.2%}" == "26.82%"
    small = build_schedule(capped, 50_000, 12, date(2026, 1, 15))
    assert Decimal("0.240039") < small.apr < Decimal("0.240040")
    # The allowance is half a fen per installment, about 5.3 fen at 2% a month; at 24.01% the 10,000.00 loan
    # costs about 51 fen more than at the cap (present value), so it is refused.
    over = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.2401", apr_cap=Decimal("0.24"))
    with pytest.raises(ValidationError, match="exceeds the cap"):
        build_schedule(over, 1_000_000, 12, date(2026, 1, 15))


def test_a_bullet_is_one_period_of_its_tenor() -> None:
    # 10,000.00 for 3 months at 12% (30/360): repay 10,300.00, a 3% IRR over one 3-month period;
    # four such periods a year: APR 3% x 4 = 12%, effective annual rate 1.03^4 - 1 = 12.550881%.
    s = build_schedule(product(RepaymentMethod.BULLET, "0.12", tenors=(3,)), 1_000_000, 3, date(2026, 1, 15))
    assert abs(s.apr - Decimal("0.12")) < Decimal("1e-9")
    assert abs(s.effective_annual_rate - Decimal("0.12550881")) < Decimal("1e-9")
    assert s.apr_convention == "IRR method: per-period IRR x 4"


def test_an_apr_a_hair_above_the_cap_is_refused() -> None:
    # 10,000.00 for 12 months in one payment at 30.005% (30/360) with a 0.5% monthly service fee:
    # repay 10,000 + 3,000.50 interest + 600.00 fees = 13,600.50; one yearly period: APR 36.005%.
    # Rounded to 36.00% it would pass a 36% cap; unrounded it does not.
    with_fees = product(RepaymentMethod.BULLET, "0.30005", monthly_service_fee_rate=Decimal("0.005"))
    s = build_schedule(with_fees, 1_000_000, 12, date(2026, 1, 15))
    assert s.installments[0].total == 1_360_050
    assert abs(s.apr - Decimal("0.36005")) < Decimal("1e-12")
    capped = product(
        RepaymentMethod.BULLET, "0.30005", monthly_service_fee_rate=Decimal("0.005"), apr_cap=Decimal("0.36")
    )
    with pytest.raises(ValidationError, match=r"APR 36\.0050% .* exceeds the cap 36\.00%") as err:
        build_schedule(capped, 1_000_000, 12, date(2026, 1, 15))
    assert err.value.field == "rate"


def test_an_apr_above_1000_percent_is_a_number() -> None:
    # 10,000.00 for one month at 12% with a 50% upfront fee: 5,000.00 received, 10,100.00 repaid;
    # per-period IRR 102%: APR 1,224%, effective annual rate 2.02^12 - 1 = 461,448%.
    fee = product(RepaymentMethod.BULLET, "0.12", tenors=(1,), facilitation_fee_rate=Decimal("0.5"))
    s = build_schedule(fee, 1_000_000, 1, date(2026, 1, 15))
    assert abs(s.apr - Decimal("12.24")) < Decimal("1e-9")
    assert abs(s.effective_annual_rate - (Decimal("2.02") ** 12 - 1)) < Decimal("1e-9")


def test_a_fee_that_takes_the_whole_principal_is_refused_naming_it() -> None:
    everything = product(RepaymentMethod.BULLET, "0.12", tenors=(1,), facilitation_fee_rate=Decimal("1"))
    with pytest.raises(ValidationError) as err:
        build_schedule(everything, 1_000_000, 1, date(2026, 1, 15))
    assert err.value.field == "facilitation_fee_rate"


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(tenors=()), "tenors"),
        (dict(nominal_rate=Decimal("-0.1")), "nominal_rate"),
        (dict(currency="XXX"), "currency"),
        (dict(late_fee_daily_rate=Decimal("0.00000001")), "late_fee_daily_rate"),
        (dict(component_order=("fee", "interest")), "component_order"),
    ],
)
def test_bad_products_name_the_field(bad, field) -> None:
    kwargs = dict(code="T", currency="CNY", tenors=(12,), method=RepaymentMethod.BULLET, nominal_rate=Decimal("0.1"))
    kwargs.update(bad)
    with pytest.raises(ValidationError) as err:
        LoanProduct(**kwargs)
    assert err.value.field == field


def test_tenor_not_offered_and_bad_principal() -> None:
    p = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12")
    with pytest.raises(ValidationError, match="offers tenors") as err:
        build_schedule(p, 1_000_000, 7, date(2026, 1, 15))
    assert err.value.field == "tenor"
    with pytest.raises(ValidationError) as err:
        build_schedule(p, 0, 12, date(2026, 1, 15))
    assert err.value.field == "principal"


def test_schedule_command_names_the_convention_and_prints_both_rates() -> None:
    from typer.testing import CliRunner

    from openice.cli import app

    args = [
        "schedule",
        "--principal",
        "10000",
        "--rate",
        "24%",
        "--tenor",
        "12",
        "--method",
        "interest-only",
        "--apr-cap",
        "24%",
    ]
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["apr"], data["effective_annual_rate"]) == ("0.240000", "0.268242")
    assert data["apr_convention"] == "IRR method: per-period IRR x 12"
    table = " ".join(CliRunner().invoke(app, args).output.split())  # as the console wrapped it
    assert "APR (IRR method: per-period IRR x 12; the borrower's cash flows, fees included): 24.00%" in table
    assert "effective annual rate 26.82%" in table


def test_a_principal_outside_the_product_s_range_is_refused_in_major_units() -> None:
    bounded = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12", min_principal=1_000, max_principal=5_000_000)
    for principal in (999, 5_000_001):  # 9.99 and 50,000.01 CNY: a fen outside 10.00 to 50,000.00
        with pytest.raises(ValidationError) as err:
            build_schedule(bounded, principal, 12, date(2026, 1, 15))
        assert err.value.field == "principal"
        assert err.value.message == "must be between 10.00 CNY and 50,000.00 CNY for product T"
    assert build_schedule(bounded, 5_000_000, 12, date(2026, 1, 15)).principal == 5_000_000


def test_a_product_file_types_its_money_in_major_units_of_its_currency() -> None:
    typed = {"code": "T", "currency": "CNY", "tenors": [12], "method": "bullet", "nominal_rate": "12%"}
    cny = LoanProduct.from_typed(typed | {"min_principal": "10.00", "max_principal": "50000", "referral_fee_flat": "3"})
    assert (cny.min_principal, cny.max_principal, cny.referral_fee_flat) == (1_000, 5_000_000, 300)  # fen
    assert cny.typed_dict()["max_principal"] == "50000.00" and LoanProduct.from_typed(cny.typed_dict()) == cny
    yen = LoanProduct.from_typed(typed | {"currency": "JPY", "max_principal": "500000"})
    assert yen.max_principal == 500_000  # JPY has no minor unit
    for changes, field in (
        ({"min_principal": 1000}, "min_principal"),  # a number: it may be minor units
        ({"min_principal": "0.00"}, "min_principal"),
        ({"referral_fee_flat": "0.005"}, "referral_fee_flat"),
        ({"currency": "JPY", "max_principal": "500000.5"}, "max_principal"),
    ):
        with pytest.raises(ValidationError) as err:
            LoanProduct.from_typed(typed | changes)
        assert err.value.field == field
