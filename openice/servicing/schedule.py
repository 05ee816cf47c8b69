"""Repayment schedules in integer minor units, and the APR of the borrower's cash flows.

Rounding: every installment's interest, fee and regular principal is rounded half-up to the
minor unit; the last installment's principal is whatever remains, so principal parts always
sum exactly to the amount lent.

APR: the IRR method that China's rate caps and disclosure rule use. Each installment is one
period, whatever its calendar days (a new loan's first period is whole: its due dates fall on the
start's day of the month); the per-period IRR of the borrower's cash flows (net amount
received, then every installment with its fees) times the periods in a year is the APR, kept
unrounded for the cap check. The effective annual rate compounds the same per-period IRR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TypeVar

from dateutil.relativedelta import relativedelta

from openice.errors import ValidationError
from openice.money import format_money, round_half_up
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
    months_per_period: int  # 1 for monthly installments; a bullet's single period is its tenor
    period_irr: Decimal  # of the borrower's cash flows, each installment one period

    @property
    def net_disbursed(self) -> int:
        return self.principal - self.upfront_fee

    @property
    def apr(self) -> Decimal:
        """The per-period IRR times the periods in a year, unrounded: the figure rate caps apply to."""
        return self.period_irr * 12 / self.months_per_period

    @property
    def effective_annual_rate(self) -> Decimal:
        """The per-period IRR compounded over a year, disclosed beside the APR."""
        with localcontext() as ctx:
            ctx.prec = 40
            return (1 + self.period_irr) ** (Decimal(12) / self.months_per_period) - 1

    @property
    def apr_convention(self) -> str:
        return f"IRR method: per-period IRR x {Fraction(12, self.months_per_period)}"

    def within_cap(self, cap: Decimal) -> bool:
        """Whether the APR, unrounded, is at most `cap`, allowing only for the rounding of installments.

        Rounding each installment's interest half-up to the minor unit moves the IRR of a loan lent at
        exactly the cap's rate by up to half a minor unit per installment, either way; that much, and
        nothing more, is allowed, so a loan at the cap passes whatever its amount.
        """
        if self.apr <= cap:
            return True
        with localcontext() as ctx:
            ctx.prec = 40
            discount = 1 / (1 + cap * self.months_per_period / 12)
            paid = sum(Decimal(i.total) * discount ** (k + 1) for k, i in enumerate(self.installments))
            allowance = sum(Decimal("0.5") * discount ** (k + 1) for k in range(len(self.installments)))
            return paid - self.net_disbursed <= allowance

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)


def monthly_due_dates(start: date, count: int, months_per_period: int = 1) -> list[date]:
    """Same day of month as the start, clamped to the month's end (31 Jan -> 28/29 Feb)."""
    return [start + relativedelta(months=months_per_period * k) for k in range(1, count + 1)]


def period_interest(
    balance: int, rate: Decimal, day_count: DayCount, start: date, end: date, months: int | None = 1
) -> int:
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


def amortise(
    balance: int,
    rate: Decimal,
    day_count: DayCount,
    method: RepaymentMethod,
    period_start: date,
    due_dates: list[date],
    monthly_fee: int,
    first_seq: int = 1,
    payment: int | None = None,
    broken_first_period: bool = False,
) -> list[Installment]:
    """Spread `balance` over `due_dates` (whole months apart) by `method`.

    `payment` fixes the annuity amount (to shorten a loan after a prepayment instead of lowering
    its installment); `broken_first_period` counts the first period's actual days (a prepayment
    made mid-period starts the new schedule on that day)."""
    n = len(due_dates)
    out: list[Installment] = []
    if method is RepaymentMethod.BULLET:
        months = max(1, round((due_dates[-1] - period_start).days / 30.4))
        interest = period_interest(
            balance, rate, day_count, period_start, due_dates[-1], None if broken_first_period else months
        )
        return [Installment(first_seq, period_start, due_dates[-1], balance, interest, monthly_fee * months)]
    level = payment if payment is not None else annuity_payment(balance, rate, n)
    even_principal = round_half_up(Decimal(balance) / n)
    remaining = balance
    start = period_start
    for k, due in enumerate(due_dates):
        period_months = None if broken_first_period and k == 0 else 1
        interest = period_interest(remaining, rate, day_count, start, due, period_months)
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


def build_schedule(
    product: LoanProduct, principal: int, tenor: int, start: date, rate: Decimal | None = None, check_cap: bool = True
) -> Schedule:
    """The contractual schedule of a new loan; refuses one whose APR passes the product's cap."""
    product.check_tenor(tenor)
    if principal <= 0:
        raise ValidationError("must be positive", field="principal")
    if not product.min_principal <= principal <= product.max_principal:
        raise ValidationError(
            f"must be between {format_money(product.min_principal, product.currency)} and "
            f"{format_money(product.max_principal, product.currency)} for product {product.code}",
            field="principal",
        )
    rate = product.nominal_rate if rate is None else rate
    if rate < 0:
        raise ValidationError("must not be negative", field="rate")
    monthly_fee = round_half_up(Decimal(principal) * product.monthly_service_fee_rate)
    upfront_fee = round_half_up(Decimal(principal) * product.facilitation_fee_rate)
    if upfront_fee >= principal:
        raise ValidationError(
            "leaves the borrower nothing of the principal, so no APR exists", field="facilitation_fee_rate"
        )
    if product.method is RepaymentMethod.BULLET:
        dues = monthly_due_dates(start, 1, months_per_period=tenor)
    else:
        dues = monthly_due_dates(start, tenor)
    installments = amortise(principal, rate, product.day_count, product.method, start, dues, monthly_fee)
    schedule = Schedule(
        principal,
        upfront_fee,
        tuple(installments),
        tenor if product.method is RepaymentMethod.BULLET else 1,
        period_irr(principal - upfront_fee, [i.total for i in installments]),
    )
    if check_cap and product.apr_cap is not None and not schedule.within_cap(product.apr_cap):
        raise ValidationError(
            f"APR {schedule.apr:.4%} ({schedule.apr_convention}) of a {tenor}-month loan at {rate:%} nominal "
            f"exceeds the cap {product.apr_cap:.2%} of product {product.code}; lower the rate or fees",
            field="rate",
        )
    return schedule


Real = TypeVar("Real", float, Decimal)


def period_irr(received: int, payments: list[int]) -> Decimal:
    """The rate r per period with received = sum(payment_k / (1+r)^k), k = 1, 2, ...: equal periods.

    Solved for x = 1/(1+r): sum(payment_k x^k) - received rises and is convex for x > 0, so Newton's
    method started above the root walks down to it without overshooting, however high the rate.
    """
    if received <= 0 or not any(payments) or min(payments) < 0:
        raise ValidationError("needs money received first and only payments after it; no IRR exists", field="schedule")
    # Start above the root: each payment alone bounds it (payment_k x^k <= received), and so does
    # received / sum(payments) when that exceeds 1 (a negative rate). Floats come close cheaply;
    # the last steps run in 40-digit decimals.
    above = [max(1.0, received / sum(payments))] + [(received / p) ** (1 / k) for k, p in enumerate(payments, 1) if p]
    x = _newton(received, payments, min(above), 1e-12)
    with localcontext() as ctx:
        ctx.prec = 40
        return 1 / _newton(received, payments, Decimal(repr(x)), Decimal("1e-30")) - 1


def _newton(received: int, payments: list[int], x: Real, tolerance: Real) -> Real:
    """Newton's method on sum(payment_k x^k) = received, in floats or decimals alike. It converges monotonically
    from above; the bound on steps only guards against a schedule no loan has."""
    for _ in range(500):
        value, slope = _npv_in_x(received, payments, x)
        step = value / slope
        x -= step
        if abs(step) <= x * tolerance:
            return x
    raise ValidationError("the schedule's internal rate of return does not converge", field="schedule")


def _npv_in_x(received: int, payments: list[int], x: Real) -> tuple[Real, Real]:
    """sum(payment_k x^k) - received and its slope in x, by Horner's rule."""
    poly = slope = x * 0
    for p in reversed(payments):
        slope = slope * x + poly
        poly = poly * x + p
    return poly * x - received, poly + slope * x


def fee_amortisation(deferred: int, principal: int, installments: list[tuple[int, int]]) -> list[int]:
    """An upfront fee spread over the installments by the effective interest method: the rate r per period
    that discounts the contractual flows (principal + interest of each installment) to the loan's carrying
    amount (principal - fee); each period recognises carrying x r - that period's interest as fee income, and the
    carrying amount moves by what was earned less what fell due. Rounded half-up on the running total, so the parts
    add up to the fee exactly."""
    if deferred <= 0 or not installments:
        return [0] * len(installments)
    flows = [p + i for p, i in installments]
    if principal <= deferred:  # a prepayment left less principal than fee: no yield to spread it over
        return [deferred] + [0] * (len(installments) - 1)
    rate = period_irr(principal - deferred, flows)
    parts, carrying, earned, recognised = [], Decimal(principal - deferred), Decimal(0), 0
    with localcontext() as ctx:
        ctx.prec = 40
        for (_, interest), flow in zip(installments, flows, strict=True):
            effective = carrying * rate
            earned += effective - interest
            carrying += effective - flow
            part = round_half_up(earned) - recognised
            parts.append(part)
            recognised += part
    parts[-1] += deferred - recognised  # what the rounding of the rate left over
    return parts
