"""Repayment schedules in integer minor units, and the APR of the borrower's cash flows.

Rounding: every installment's interest, fee and regular principal is rounded half-up to the
minor unit; the last installment's principal is whatever remains, so principal parts always
sum exactly to the amount lent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from openice.errors import ValidationError
from openice.money import round_half_up
from openice.servicing.daycount import DayCount, accrual_days, year_basis
from openice.servicing.products import LoanProduct, RepaymentMethod


@dataclass(frozen=True)
class Installment:
    seq: int
    period_start: date
    due_date: date
    principal: int
    interest: int
    fee: int

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fee


@dataclass(frozen=True)
class Schedule:
    principal: int
    upfront_fee: int
    installments: tuple[Installment, ...]
    apr: Decimal

    @property
    def net_disbursed(self) -> int:
        return self.principal - self.upfront_fee

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)


def monthly_due_dates(start: date, count: int, months_per_period: int = 1) -> list[date]:
    """Same day of month as the start, clamped to the month's end (31 Jan -> 28/29 Feb)."""
    return [start + relativedelta(months=months_per_period * k) for k in range(1, count + 1)]


def period_interest(balance: int, rate: Decimal, day_count: DayCount, start: date, end: date,
                    months: int | None = 1) -> int:
    """Interest on `balance` for one period of `months` whole months, or a broken period (months=None).

    Under 30/360 a whole month is exactly 30 days, whatever the calendar says."""
    if day_count is DayCount.THIRTY_360 and months is not None:
        days = 30 * months
    else:
        days = accrual_days(day_count, start, end)
    return round_half_up(Decimal(balance) * rate * days / year_basis(day_count))


def annuity_payment(balance: int, rate: Decimal, periods: int) -> int:
    """Level payment of principal + interest at the nominal monthly rate rate/12."""
    if periods <= 0:
        raise ValidationError("must be positive", field="tenor")
    if rate == 0:
        return round_half_up(Decimal(balance) / periods)
    i = rate / 12
    return round_half_up(Decimal(balance) * i / (1 - (1 + i) ** -periods))


def amortise(balance: int, rate: Decimal, day_count: DayCount, method: RepaymentMethod,
             period_start: date, due_dates: list[date], monthly_fee: int, first_seq: int = 1,
             payment: int | None = None, broken_first_period: bool = False) -> list[Installment]:
    """Spread `balance` over `due_dates` (whole months apart) by `method`.

    `payment` fixes the annuity amount (to shorten a loan after a prepayment instead of lowering
    its installment); `broken_first_period` counts the first period's actual days (a prepayment
    made mid-period starts the new schedule on that day)."""
    n = len(due_dates)
    out: list[Installment] = []
    if method is RepaymentMethod.BULLET:
        months = max(1, round((due_dates[-1] - period_start).days / 30.4))
        interest = period_interest(balance, rate, day_count, period_start, due_dates[-1],
                                   None if broken_first_period else months)
        return [Installment(first_seq, period_start, due_dates[-1], balance, interest, monthly_fee * months)]
    level = payment if payment is not None else annuity_payment(balance, rate, n)
    even_principal = round_half_up(Decimal(balance) / n)
    remaining = balance
    start = period_start
    for k, due in enumerate(due_dates):
        months = None if broken_first_period and k == 0 else 1
        interest = period_interest(remaining, rate, day_count, start, due, months)
        last = k == n - 1
        if method is RepaymentMethod.EQUAL_INSTALLMENT:
            principal = remaining if last else min(max(level - interest, 0), remaining)
        elif method is RepaymentMethod.EQUAL_PRINCIPAL:
            principal = remaining if last else min(even_principal, remaining)
        else:  # interest-only, then all principal at maturity
            principal = remaining if last else 0
        out.append(Installment(first_seq + k, start, due, principal, interest, monthly_fee))
        remaining -= principal
        start = due
        if remaining == 0 and method is RepaymentMethod.EQUAL_INSTALLMENT and payment is not None:
            break
    return out


def build_schedule(product: LoanProduct, principal: int, tenor: int, start: date,
                   rate: Decimal | None = None, check_cap: bool = True) -> Schedule:
    """The contractual schedule of a new loan; refuses one whose APR passes the product's cap."""
    product.check_tenor(tenor)
    if principal <= 0:
        raise ValidationError("must be positive", field="principal")
    if not product.min_principal <= principal <= product.max_principal:
        raise ValidationError(
            f"must be between {product.min_principal} and {product.max_principal} minor units "
            f"for product {product.code}", field="principal")
    rate = product.nominal_rate if rate is None else rate
    if rate < 0:
        raise ValidationError("must not be negative", field="rate")
    monthly_fee = round_half_up(Decimal(principal) * product.monthly_service_fee_rate)
    upfront_fee = round_half_up(Decimal(principal) * product.facilitation_fee_rate)
    if product.method is RepaymentMethod.BULLET:
        dues = monthly_due_dates(start, 1, months_per_period=tenor)
    else:
        dues = monthly_due_dates(start, tenor)
    installments = amortise(principal, rate, product.day_count, product.method, start, dues, monthly_fee)
    apr = borrower_apr(start, principal - upfront_fee, installments)
    if check_cap and product.apr_cap is not None and apr > product.apr_cap:
        raise ValidationError(
            f"APR {apr:.2%} of a {tenor}-month loan at {rate:.2%} nominal exceeds the cap "
            f"{product.apr_cap:.2%} of product {product.code}; lower the rate or fees", field="rate")
    return Schedule(principal, upfront_fee, tuple(installments), apr)


def xirr(flows: list[tuple[date, int]]) -> float:
    """Effective annual rate r solving sum(cf / (1+r)^(days/365)) = 0, by bisection then Newton."""
    t0 = flows[0][0]
    times = [((d - t0).days / 365.0, float(cf)) for d, cf in flows]

    def npv(r: float) -> float:
        return sum(cf / (1.0 + r) ** t for t, cf in times)

    lo, hi = -0.99, 10.0
    if npv(lo) * npv(hi) > 0:
        raise ValidationError("cash flows have no internal rate of return", field="schedule")
    for _ in range(200):
        mid = (lo + hi) / 2
        if npv(lo) * npv(mid) <= 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


def borrower_apr(start: date, net_disbursed: int, installments: list[Installment] | tuple[Installment, ...]) -> Decimal:
    """APR as the IRR of what the borrower receives and pays, fees included, to 4 decimals."""
    flows = [(start, net_disbursed)] + [(i.due_date, -i.total) for i in installments]
    return Decimal(str(round(xirr(flows), 6))).quantize(Decimal("0.0001"))
