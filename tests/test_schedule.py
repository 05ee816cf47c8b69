"""Hand-worked schedules for each repayment method and day count, leap years included."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from openice.errors import ValidationError
from openice.servicing.daycount import DayCount, days_30_360
from openice.servicing.products import LoanProduct, RepaymentMethod
from openice.servicing.schedule import build_schedule


def product(method: RepaymentMethod, rate: str, day_count: DayCount = DayCount.THIRTY_360, tenors=(12,), **kw):
    return LoanProduct(code="T", currency="CNY", tenors=tenors, method=method, nominal_rate=Decimal(rate),
                       day_count=day_count, **kw)


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
    s = build_schedule(product(RepaymentMethod.EQUAL_PRINCIPAL, "0.10", DayCount.ACT_365, tenors=(3,)),
                       1_200_000, 3, date(2028, 1, 31))
    assert rows(s) == [
        (date(2028, 2, 29), 400_000, 9_534, 0),  # 12,000 x 10% x 29/365 = 95.342
        (date(2028, 3, 31), 400_000, 6_795, 0),  # 8,000 x 10% x 31/365 = 67.945
        (date(2028, 4, 30), 400_000, 3_288, 0),  # 4,000 x 10% x 30/365 = 32.877
    ]


def test_act_360_interest_only() -> None:
    s = build_schedule(product(RepaymentMethod.INTEREST_ONLY, "0.12", DayCount.ACT_360, tenors=(2,)),
                       1_000_000, 2, date(2026, 1, 15))
    assert rows(s) == [(date(2026, 2, 15), 0, 10_333, 0),  # 31 days: 103.333
                       (date(2026, 3, 15), 1_000_000, 9_333, 0)]  # 28 days: 93.333


def test_bullet_act_365() -> None:
    s = build_schedule(product(RepaymentMethod.BULLET, "0.10", DayCount.ACT_365, tenors=(3,)),
                       1_000_000, 3, date(2026, 1, 15))
    assert rows(s) == [(date(2026, 4, 15), 1_000_000, 24_658, 0)]  # 90 days: 246.575


def test_30_360_month_end_start_is_a_full_month() -> None:
    s = build_schedule(product(RepaymentMethod.INTEREST_ONLY, "0.12", tenors=(2,)), 1_000_000, 2, date(2026, 1, 31))
    assert [i.due_date for i in s.installments] == [date(2026, 2, 28), date(2026, 3, 31)]
    assert [i.interest for i in s.installments] == [10_000, 10_000]
    assert days_30_360(date(2026, 1, 31), date(2026, 3, 31)) == 60
    assert days_30_360(date(2028, 2, 29), date(2028, 3, 31)) == 32


def test_fees_raise_the_apr_and_a_cap_refuses() -> None:
    plain = build_schedule(product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12"), 1_000_000, 12, date(2026, 1, 15))
    assert Decimal("0.1265") <= plain.apr <= Decimal("0.1280")
    with_fees = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.12", facilitation_fee_rate=Decimal("0.02"),
                        monthly_service_fee_rate=Decimal("0.003"))
    s = build_schedule(with_fees, 1_000_000, 12, date(2026, 1, 15))
    assert s.upfront_fee == 20_000 and s.installments[0].fee == 3_000
    assert s.apr > plain.apr + Decimal("0.05")
    capped = product(RepaymentMethod.EQUAL_INSTALLMENT, "0.30", apr_cap=Decimal("0.24"))
    with pytest.raises(ValidationError) as err:
        build_schedule(capped, 1_000_000, 12, date(2026, 1, 15))
    assert err.value.field == "rate" and "cap" in err.value.message


@pytest.mark.parametrize("bad, field", [
    (dict(tenors=()), "tenors"), (dict(nominal_rate=Decimal("-0.1")), "nominal_rate"),
    (dict(currency="XXX"), "currency"), (dict(late_fee_daily_rate=Decimal("0.00000001")), "late_fee_daily_rate"),
    (dict(component_order=("fee", "interest")), "component_order"),
])
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
