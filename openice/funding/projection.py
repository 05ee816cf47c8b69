"""A deal's future under scenarios (pure, no I/O): the pool's cash flows loan by loan under a default rate, a
prepayment rate, a recovery rate and lag, then the waterfall over each scenario and what each tranche gets out of it.

Each month, for each loan still running (its balance b, annual rate r, months left n):
defaults = b x MDR; the performing rest pays interest r / 12 on itself and the scheduled principal of a level payment
over its n months; of what it still owes after that, SMM prepays; recoveries of `recovery_rate` of the defaults arrive
`recovery_lag` months later. MDR and SMM are the monthly rates of the annual CDR and CPR: 1 - (1 - annual) ** (1/12).
`loan_cash_flows` states the rule for one loan in plain Python; `pool_cash_flows` is the same rule over every loan and
scenario at once in numpy, and must agree with it (a test holds them together).

The cash flows are estimates in floating point until they reach the waterfall: each month's pool totals are taken to
minor units by rounding the cumulative totals half-up and differencing them, so the months add up to the rounded
whole; no month takes more than the pool holds, and the last month of principal takes whatever is left of it (a minor
unit or two of rounding), so the pool is paid down exactly. From there on the waterfall is exact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.waterfall import Collection, Period, csv_rows, run_waterfall
from openice.money import format_money, parse_rate, to_minor

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

POOL_COLUMNS = ("balance", "rate", "remaining_term")
# scenarios x loans worked on at once: 8 MB a float array, the size that ran fastest in bench/abs.py
ELEMENTS_PER_CHUNK = 1_000_000


@dataclass(frozen=True)
class Pool:
    """The loans under a deal: balance in minor units, annual rate, whole months left."""

    balance: Ints
    rate: Floats
    term: Ints

    @property
    def total(self) -> int:
        return int(self.balance.sum())


@dataclass(frozen=True)
class Scenario:
    """Annual default and prepayment rates, the share of a default recovered and the months it takes."""

    cdr: float
    cpr: float
    recovery_rate: float
    recovery_lag: int

    @property
    def mdr(self) -> float:
        return monthly_rate(self.cdr)

    @property
    def smm(self) -> float:
        return monthly_rate(self.cpr)


@dataclass(frozen=True)
class CashFlows:
    """Each scenario's pool collections by month (scenarios x months), in minor units."""

    interest: Ints
    principal: Ints
    defaults: Ints
    recoveries: Ints

    def collections(self, scenario: int) -> list[Collection]:
        return [
            Collection(
                period=t + 1,
                interest=int(self.interest[scenario, t]),
                principal=int(self.principal[scenario, t]),
                defaults=int(self.defaults[scenario, t]),
                recoveries=int(self.recoveries[scenario, t]),
            )
            for t in range(self.interest.shape[1])
        ]


@dataclass(frozen=True)
class TrancheOutcome:
    """What a tranche gets in a scenario. `wal_years`: principal-weighted average month of repayment over 12.
    `yield_rate`: the monthly internal rate of return of its cash (price = opening balance) times 12, the convention
    of the coupons. `loss`: principal never repaid. `first_loss_period`: when the tranche ends with a loss, the first
    month from which the pool (after the tranches senior to it) no longer covered its balance."""

    name: str
    wal_years: float | None
    yield_rate: float | None
    loss: int
    loss_rate: float
    first_loss_period: int | None


@dataclass(frozen=True)
class Projection:
    scenario: Scenario
    periods: list[Period]
    tranches: list[TrancheOutcome]


def monthly_rate(annual: float) -> float:
    return float(1.0 - (1.0 - annual) ** (1.0 / 12.0))


def horizon(pool: Pool, scenarios: Sequence[Scenario]) -> int:
    """Months until the last loan's term has run and its last recovery has come in."""
    return int(pool.term.max()) + max(s.recovery_lag for s in scenarios)


def loan_cash_flows(
    balance: float, rate: float, term: int, scenario: Scenario, months: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """One loan's (interest, principal, defaults, recoveries) by month: the rule `pool_cash_flows` vectorises."""
    interest, principal, defaults, recoveries = ([0.0] * months for _ in range(4))
    i = rate / 12
    for t in range(min(term, months)):
        left = term - t
        defaulted = balance * scenario.mdr
        performing = balance - defaulted
        due = performing * _principal_share(i, left)
        prepaid = (performing - due) * scenario.smm
        interest[t] = performing * i
        principal[t] = due + prepaid
        defaults[t] = defaulted
        if t + scenario.recovery_lag < months:
            recoveries[t + scenario.recovery_lag] = defaulted * scenario.recovery_rate
        balance = performing - due - prepaid
    return interest, principal, defaults, recoveries


def _principal_share(i: float, left: int) -> float:
    """The scheduled principal of a level payment over `left` months as a share of the balance: the payment's share
    i / (1 - (1 + i) ** -left), less the interest i; all of it in the last month."""
    if left <= 1:
        return 1.0
    if i == 0:
        return 1.0 / left
    return float(i / (1.0 - (1.0 + i) ** -left) - i)


def pool_cash_flows(pool: Pool, scenarios: Sequence[Scenario]) -> CashFlows:
    """Every scenario's pool collections by month, loan by loan in numpy (scenarios in chunks that fit in memory),
    then in minor units as the module's docstring says. Each month's sums come from the opening balances: of a loan's
    b, b x MDR defaults, the performing b (1 - MDR) pays its interest and its scheduled principal, and SMM of the rest
    prepays, so the month takes three sums over the loans and one update of every balance."""
    months = horizon(pool, scenarios)
    n = len(scenarios)
    raw = np.zeros((4, n, months))  # interest, principal, defaults, recoveries
    i = pool.rate / 12
    running = int(pool.term.max())  # months with a loan still running
    shares = np.empty((running, len(i)))
    for t in range(running):
        left = pool.term - t
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(i > 0, i / (1.0 - (1.0 + i) ** -left.clip(min=1)) - i, 1.0 / left.clip(min=1))
        shares[t] = np.where(left <= 1, 1.0, level)
    chunk = max(1, ELEMENTS_PER_CHUNK // max(1, len(i)))
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        mdr = np.array([s.mdr for s in scenarios[rows]])
        smm = np.array([s.smm for s in scenarios[rows]])
        balance = np.broadcast_to(pool.balance.astype(np.float64), (len(mdr), len(i))).copy()
        for t in range(running):
            # one pass for the sums each month needs: the balance, its interest and its scheduled principal
            total, interest, due = (balance @ np.column_stack((np.ones_like(i), i, shares[t]))).T
            raw[0, rows, t] = (1 - mdr) * interest
            raw[1, rows, t] = (1 - mdr) * (due + smm * (total - due))
            raw[2, rows, t] = mdr * total
            balance *= 1 - shares[t]  # what is left of each loan: not defaulted, not due, not prepaid
            balance *= ((1 - mdr) * (1 - smm))[:, None]
    for k, s in enumerate(scenarios):
        lag = s.recovery_lag
        raw[3, k, lag:] = raw[2, k, : months - lag] * s.recovery_rate
    interest, principal, defaults, recoveries = (_to_minor(raw[j]) for j in range(4))
    _fit_to_pool(principal, defaults, pool.total, last=running - 1)
    return CashFlows(interest=interest, principal=principal, defaults=defaults, recoveries=recoveries)


def _fit_to_pool(principal: Ints, defaults: Ints, total: int, last: int) -> None:
    """Make each scenario's rounded months take the pool down to exactly zero in month `last`, never below: a month
    that would take a minor unit more than is left takes what is left, and month `last`'s principal is whatever
    remains after its defaults."""
    left = np.full(principal.shape[0], total, dtype=np.int64)
    for t in range(last + 1):
        np.minimum(defaults[:, t], left, out=defaults[:, t])
        left -= defaults[:, t]
        if t == last:
            principal[:, t] = left
        else:
            np.minimum(principal[:, t], left, out=principal[:, t])
        left -= principal[:, t]


def _to_minor(amounts: Floats) -> Ints:
    """Months of float amounts in minor units: the cumulative totals rounded half-up, differenced."""
    cumulative = np.floor(np.cumsum(amounts, axis=1) + 0.5).astype(np.int64)
    return np.diff(cumulative, axis=1, prepend=0)


def project(deal: Deal, pool: Pool, scenarios: Sequence[Scenario]) -> list[Projection]:
    """The waterfall over each scenario's pool collections, and each tranche's outcome. A revolving deal is refused:
    the pool file holds the loans of today, not those its principal would buy."""
    if deal.revolving is not None:
        raise ValidationError(
            "a revolving deal cannot be projected: the loans it would buy are not in the pool file; "
            "project the deal file without `revolving`",
            field="revolving",
        )
    if pool.total != deal.pool_balance:
        raise ValidationError(
            f"the loans add up to {format_money(pool.total, deal.currency)}, not the deal's pool_balance "
            f"{format_money(deal.pool_balance, deal.currency)}",
            field="pool",
        )
    flows = pool_cash_flows(pool, scenarios)
    projections = []
    for k, scenario in enumerate(scenarios):
        periods = run_waterfall(deal, flows.collections(k))
        projections.append(Projection(scenario, periods, outcomes(deal, periods)))
    return projections


def outcomes(deal: Deal, periods: Sequence[Period]) -> list[TrancheOutcome]:
    """Each tranche's WAL, yield, loss and first loss period over the periods of a waterfall."""
    result = []
    senior = [0] * len(periods)  # the balances of the tranches above, by period
    for tranche in deal.tranches:
        principal = np.array([p.tranches[tranche.name].principal_paid for p in periods], dtype=np.float64)
        cash = principal + [p.tranches[tranche.name].interest_paid for p in periods]
        if tranche.residual:
            cash += [p.residual_income for p in periods]
        balances = [p.tranches[tranche.name].balance for p in periods]
        loss = balances[-1] if periods else tranche.balance
        uncovered = [b > max(0, p.pool_balance - s) for p, b, s in zip(periods, balances, senior, strict=True)]
        first_loss = None
        if loss > 0:
            first_loss = len(periods) + 1 - next((k for k, u in enumerate(reversed(uncovered)) if not u), len(periods))
        paid = principal.sum()
        result.append(
            TrancheOutcome(
                name=tranche.name,
                wal_years=float(principal @ np.arange(1, len(periods) + 1) / paid / 12) if paid else None,
                yield_rate=_yield(tranche.balance, cash),
                loss=loss,
                loss_rate=loss / tranche.balance if tranche.balance else 0.0,
                first_loss_period=first_loss,
            )
        )
        senior = [s + b for s, b in zip(senior, balances, strict=True)]
    return result


def _yield(price: int, cash: Floats) -> float | None:
    """12 x the monthly rate at which `cash` (months 1, 2, ...) is worth `price`, found by bisection; None for a
    tranche bought for nothing or paid nothing."""
    if price <= 0 or not cash.any():
        return None
    months = np.arange(1, len(cash) + 1)

    def value(rate: float) -> float:
        return float(cash @ (1.0 + rate) ** -months) - price

    low, high = -0.99, 1.0
    if value(low) < 0:  # even at -99% a month it is worth less than paid: all but lost
        return low * 12
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if value(middle) > 0 else (low, middle)
    return (low + high) / 2 * 12


def stress_grid(
    base: Scenario, multiples: Sequence[int] = (1, 2, 3, 4, 5), cprs: Sequence[float] = (0.0, 0.1, 0.2, 0.3)
) -> list[Scenario]:
    """The base scenario's defaults times each multiple, under each prepayment rate (a CDR above 100% is capped)."""
    return [
        Scenario(min(1.0, base.cdr * m), cpr, base.recovery_rate, base.recovery_lag) for m in multiples for cpr in cprs
    ]


def pool_from_csv(text: str, currency: str, source: str) -> Pool:
    """The pool's loans from a CSV with a header `balance` (major units), `rate` (annual, 0.18 or 18%),
    `remaining_term` (whole months); a bad cell is refused naming its line and column."""
    balances, rates, terms = [], [], []
    for where, row in csv_rows(text, POOL_COLUMNS, source):
        balance = to_minor(row["balance"], currency, f"{where}, balance")
        if balance <= 0:
            raise ValidationError(f"{row['balance']} is not a positive balance", field=f"{where}, balance")
        rate = parse_rate(row["rate"], f"{where}, rate")
        if rate > 1:
            raise ValidationError(f"{rate} is above 1: write 0.18 or 18% for 18% a year", field=f"{where}, rate")
        term = row["remaining_term"]
        if not (term.isascii() and term.isdigit() and int(term) > 0):
            raise ValidationError(f"{term!r} is not a whole number of months", field=f"{where}, remaining_term")
        balances.append(balance)
        rates.append(float(rate))
        terms.append(int(term))
    if not balances:
        raise ValidationError("holds no loan", field=source)
    return Pool(np.array(balances, dtype=np.int64), np.array(rates), np.array(terms, dtype=np.int64))


def scenario(cdr: Decimal, cpr: Decimal, recovery_rate: Decimal, recovery_lag: int) -> Scenario:
    """A scenario from rates as people give them, each a fraction at most 1."""
    for name, value in (("cdr", cdr), ("cpr", cpr), ("recovery", recovery_rate)):
        if not 0 <= value <= 1:
            raise ValidationError(f"{value} is not a fraction between 0 and 1", field=name)
    if recovery_lag < 0:
        raise ValidationError(f"{recovery_lag} is negative", field="lag")
    return Scenario(float(cdr), float(cpr), float(recovery_rate), recovery_lag)
