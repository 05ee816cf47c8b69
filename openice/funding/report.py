"""A deal's investor report for one month (pure, no I/O): the pool, each tranche, the triggers and the reserve, shaped
from the months month-end stored and the pool's delinquency at the month's end.

The month's waterfall is run again from the stored collections (as month-end ran it, through `books.fed`), so every
figure is integer minor units and agrees with what was paid. The annualised rates, each a fraction rounded half-up to
six decimals, are over the pool's opening balance of the month (zero when it is zero):
- CDR = 1 - (1 - MDR)^12, where MDR = the month's defaults / the opening balance;
- CPR = 1 - (1 - SMM)^12, where SMM = the month's prepaid principal / the opening balance: principal paid ahead of its
  schedule (the payments' `principal_prepaid` allocations), at most the month's principal collected; the rest of the
  principal collected is scheduled principal.
A trigger's value is the cumulative defaults to date over the pool's balance at closing, as the waterfall tests it;
a tranche's factor is its balance over its balance at closing, rounded half-up to six decimals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from openice.funding.books import fed
from openice.funding.deal import Deal
from openice.funding.waterfall import Collection, breached, run_waterfall
from openice.money import from_minor

PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class Bucket:
    """The pool's loans in one delinquency bucket at the month's end."""

    bucket: str
    loans: int
    balance: int


@dataclass(frozen=True)
class TrancheLine:
    name: str
    coupon: Decimal | None  # None: the residual tranche
    original: int  # at closing
    opening: int
    interest_due: int
    interest_paid: int
    interest_shortfall: int
    principal_paid: int
    balance: int
    loss: int  # written down at the clean-up call

    @property
    def factor(self) -> Decimal:
        return _ratio(self.balance, self.original)


@dataclass(frozen=True)
class TriggerLine:
    metric: str
    level: Decimal
    value: Decimal
    breached: bool  # this month's value is above the level


@dataclass(frozen=True)
class InvestorReport:
    deal: str
    currency: str
    period: int
    first_day: date
    last_day: date
    pool_opening: int
    pool_closing: int
    interest: int
    principal: int
    scheduled_principal: int
    prepaid_principal: int
    defaults: int
    recoveries: int
    cumulative_defaults: int
    cdr: Decimal
    cpr: Decimal
    buckets: list[Bucket]
    available: int
    fees: int
    residual_income: int
    principal_shortfall: int
    sequential: bool  # a trigger has turned principal sequential, for good
    revolving: bool  # the month's principal bought loans instead of paying the notes
    reinvested: int  # the loans bought
    clean_up_call: bool  # the platform bought the pool back this month and the deal ended
    tranches: list[TrancheLine]
    triggers: list[TriggerLine]
    reserve_opening: int
    reserve_closing: int
    reserve_target: int
    history: list[tuple[int, int, dict[str, int]]]  # each month to this one: its period, pool and tranche balances


def _ratio(numerator: int, denominator: int) -> Decimal:
    exact = Decimal(0) if denominator == 0 else Decimal(numerator) / Decimal(denominator)
    return exact.quantize(PLACES, ROUND_HALF_UP)


def annualised(amount: int, opening: int) -> Decimal:
    """1 - (1 - amount / opening)^12, rounded half-up to six decimals; zero over an empty pool."""
    if opening == 0:
        return Decimal(0).quantize(PLACES)
    monthly = Decimal(amount) / Decimal(opening)
    return (1 - (1 - monthly) ** 12).quantize(PLACES, ROUND_HALF_UP)


def investor_report(
    deal: Deal,
    stored: Sequence[Collection],
    prepaid: Sequence[int],
    period: int,
    first: date,
    last: date,
    buckets: Sequence[Bucket],
) -> InvestorReport:
    """The report of month `period` (1 the first) of `deal` (sized to its pool), from the collections of the months
    stored up to and including it and each month's prepaid principal, and its pool's delinquency at `last`."""
    months = fed(stored[:period])
    run = run_waterfall(deal, months)
    now, collected = run[-1], months[-1]
    before = run[-2] if period > 1 else None
    pool_opening = deal.pool_balance if before is None else before.pool_balance
    cumulative = sum(m.defaults for m in months)
    ahead = min(prepaid[period - 1], collected.principal)  # a reversal carried can take the month's principal below it
    return InvestorReport(
        deal=deal.name,
        currency=deal.currency,
        period=period,
        first_day=first,
        last_day=last,
        pool_opening=pool_opening,
        pool_closing=now.pool_balance,
        interest=collected.interest,
        principal=collected.principal,
        scheduled_principal=collected.principal - ahead,
        prepaid_principal=ahead,
        defaults=collected.defaults,
        recoveries=collected.recoveries,
        cumulative_defaults=cumulative,
        cdr=annualised(collected.defaults, pool_opening),
        cpr=annualised(ahead, pool_opening),
        buckets=list(buckets),
        available=now.available,
        fees=now.fees,
        residual_income=now.residual_income,
        principal_shortfall=now.principal_shortfall,
        sequential=now.trigger_breached,
        revolving=now.revolving,
        reinvested=now.reinvested,
        clean_up_call=now.clean_up_call,
        tranches=[
            TrancheLine(
                name=t.name,
                coupon=t.coupon,
                original=t.balance,
                opening=t.balance if before is None else before.tranches[t.name].balance,
                interest_due=now.tranches[t.name].interest_due,
                interest_paid=now.tranches[t.name].interest_paid,
                interest_shortfall=now.tranches[t.name].interest_shortfall,
                principal_paid=now.tranches[t.name].principal_paid,
                balance=now.tranches[t.name].balance,
                loss=now.tranches[t.name].loss,
            )
            for t in deal.tranches
        ],
        triggers=[
            TriggerLine(
                metric=t.metric.value,
                level=t.above,
                value=_ratio(cumulative, deal.pool_balance),
                breached=breached([t], cumulative, deal.pool_balance),
            )
            for t in deal.triggers
        ],
        reserve_opening=deal.reserve_account.initial if before is None else before.reserve_balance,
        reserve_closing=now.reserve_balance,
        reserve_target=deal.reserve_account.target,
        history=[(p.period, p.pool_balance, {n: t.balance for n, t in p.tranches.items()}) for p in run],
    )


@dataclass(frozen=True)
class Standing:
    """Where a deal stands after the months month-end paid: the pool's balance, the notes' (the coupon tranches')
    balance still outstanding, and its status: `awaiting` its first month-end, `paying`, `called` (the platform
    bought the pool back and the deal ended) or `paid` (pool and notes at zero)."""

    pool_balance: int
    notes_outstanding: int
    status: str


def standing(deal: Deal, stored: Sequence[Collection]) -> Standing:
    """The deal (sized to its pool) after the stored months, the waterfall run over them as month-end ran it."""
    run = run_waterfall(deal, fed(stored)) if stored else []
    notes = [t.name for t in deal.tranches if not t.residual]
    if not run:
        return Standing(deal.pool_balance, sum(t.balance for t in deal.tranches if not t.residual), "awaiting")
    last = run[-1]
    outstanding = sum(last.tranches[name].balance for name in notes)
    if last.clean_up_call:
        return Standing(last.pool_balance, outstanding, "called")
    return Standing(last.pool_balance, outstanding, "paid" if last.pool_balance == outstanding == 0 else "paying")


def report_document(r: InvestorReport) -> dict[str, Any]:
    """The report as JSON gives it: money as decimal strings in major units beside its currency, rates and factors
    as decimal strings."""

    def major(minor: int) -> str:
        return str(from_minor(minor, r.currency))

    return {
        "deal": r.deal,
        "currency": r.currency,
        "month": r.last_day.strftime("%Y-%m"),
        "period": r.period,
        "first_day": r.first_day.isoformat(),
        "last_day": r.last_day.isoformat(),
        "pool": {
            "opening_balance": major(r.pool_opening),
            "closing_balance": major(r.pool_closing),
            "interest": major(r.interest),
            "principal": major(r.principal),
            "scheduled_principal": major(r.scheduled_principal),
            "prepaid_principal": major(r.prepaid_principal),
            "defaults": major(r.defaults),
            "recoveries": major(r.recoveries),
            "cumulative_defaults": major(r.cumulative_defaults),
            "cdr": str(r.cdr),
            "cpr": str(r.cpr),
            "buckets": [{"bucket": b.bucket, "loans": b.loans, "balance": major(b.balance)} for b in r.buckets],
        },
        "waterfall": {
            "available": major(r.available),
            "fees": major(r.fees),
            "residual_income": major(r.residual_income),
            "principal_shortfall": major(r.principal_shortfall),
            "sequential": r.sequential,
            "revolving": r.revolving,
            "reinvested": major(r.reinvested),
            "clean_up_call": r.clean_up_call,
        },
        "tranches": [
            {
                "name": t.name,
                "coupon": None if t.coupon is None else str(t.coupon),
                "original_balance": major(t.original),
                "opening_balance": major(t.opening),
                "interest_due": major(t.interest_due),
                "interest_paid": major(t.interest_paid),
                "interest_shortfall": major(t.interest_shortfall),
                "principal_paid": major(t.principal_paid),
                "balance": major(t.balance),
                "loss": major(t.loss),
                "factor": str(t.factor),
            }
            for t in r.tranches
        ],
        "triggers": [
            {"metric": t.metric, "level": str(t.level), "value": str(t.value), "breached": t.breached}
            for t in r.triggers
        ],
        "reserve_account": {
            "opening_balance": major(r.reserve_opening),
            "closing_balance": major(r.reserve_closing),
            "target": major(r.reserve_target),
        },
    }
