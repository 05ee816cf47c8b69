"""A deal's monthly waterfall over given collections (pure, no I/O): who is paid what, in which order, to the cent.

Each period, in this order (the deal file's order of tranches is their seniority):

1. available funds: interest + principal + recoveries collected, plus all of the reserve account's balance;
2. fees: annual rate / 12 x the pool's opening balance, plus any fee left unpaid earlier;
3. interest of each coupon tranche, most senior first: coupon / 12 x its opening balance plus its interest left
   unpaid earlier (no interest on unpaid interest); what cannot be paid carries over;
4. principal: the pool's principal reduction in the period (principal + defaults), plus any principal left unpaid
   earlier, paid from what is left, sequentially (each tranche, the residual last, until its balance is zero) or pro
   rata to the opening balances; once a trigger is breached payment is sequential from that period on, for good;
5. the reserve account is refilled up to its target (an excess over the target is released);
6. whatever remains is the residual tranche's residual income.

A revolving deal (`revolving`) does not pay the notes principal while it revolves (through `until_period`, unless a
trigger has ended it): the cash step 4 sets aside buys new eligible loans (`reinvested`) and the pool's balance grows
by it. A month's `purchased` caps what is bought (the book had fewer eligible loans): the rest of that cash is paid to
the notes as principal that month, as after the revolving period. A clean-up call (`clean_up_call`) happens in the
first `callable` period whose closing pool balance (after its principal and defaults) is below the share of the
balance at closing: the servicer pays that balance for the loans, the price is added to the available funds and to
the principal distribution amount, the reserve's target is zero (so the reserve is released), the pool is empty and
the deal ends: no period runs after it. What the price and the month's cash could not pay of a tranche's balance
(defaults ate into the pool) is written down as that tranche's `loss` in the call's period, so no note stays
outstanding over an empty pool.

Rounding: every amount is integer minor units. A fee or a coupon for the month is rounded half-up to the minor unit
once (`monthly`). A pro rata split rounds the cumulative amount through each tranche half-up and gives each tranche the
difference, so the parts add up to the whole exactly and no part exceeds its tranche's balance.

Carrying unpaid principal keeps the notes tied to the pool: after every period the tranches' balances add up to the
pool's balance plus the principal still owed to them (`principal_shortfall`), and none of it leaks out as residual
income while the notes are short of collateral."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from openice.errors import ValidationError
from openice.funding.deal import Deal, PrincipalPayment, Trigger
from openice.money import format_money, from_minor, mul_div_half_up, to_minor

COLUMNS = ("period", "interest", "principal", "defaults", "recoveries")


@dataclass(frozen=True)
class Collection:
    """What the pool collected in one month, and what defaulted, in minor units."""

    period: int
    interest: int
    principal: int
    defaults: int
    recoveries: int
    purchased: int | None = None  # loans a revolving deal bought; None: as much as the waterfall sets aside
    callable: bool = True  # False: a clean-up call due this month waits (the book's loans do not stand at the pool)


@dataclass(frozen=True)
class TranchePayment:
    interest_due: int  # this month's coupon plus the interest left unpaid earlier
    interest_paid: int
    interest_shortfall: int  # carried to the next month
    principal_paid: int
    balance: int  # after this month's principal and any loss
    loss: int = 0  # written down at the clean-up call: the balance its price could not pay


@dataclass(frozen=True)
class Period:
    period: int
    available: int
    fees: int  # paid
    fees_shortfall: int  # carried to the next month
    principal_shortfall: int  # carried to the next month's principal distribution amount
    reserve_balance: int  # after the refill
    trigger_breached: bool  # principal is sequential from this period on
    residual_income: int
    pool_balance: int  # after this month's principal and defaults, the loans bought and the call
    tranches: dict[str, TranchePayment]
    revolving: bool = False  # the principal distribution amount bought loans this period
    reinvested: int = 0  # the loans bought
    clean_up_call: bool = False  # the servicer bought the pool back (its price is in `available`); the deal ends

    @property
    def loss(self) -> int:
        """The tranches' balances written down at the clean-up call."""
        return sum(t.loss for t in self.tranches.values())


def monthly(annual_rate: Decimal, base: int) -> int:
    """A month of an annual rate on `base` minor units, rounded half-up once: exact whatever the rate's decimals."""
    numerator, denominator = annual_rate.as_integer_ratio()
    return mul_div_half_up(base, numerator, 12 * denominator)


def pay_sequentially(amount: int, balances: Sequence[int]) -> list[int]:
    """`amount` to each balance in order until it is zero."""
    parts = []
    for balance in balances:
        part = min(amount, balance)
        parts.append(part)
        amount -= part
    return parts


def pay_pro_rata(amount: int, balances: Sequence[int]) -> list[int]:
    """`amount` (at most the balances' total) split in proportion to the balances: each part is the half-up rounding of
    the cumulative share through its balance less that through the balance before, so the parts add up to `amount`
    and each is its exact share rounded up or down, never above its balance."""
    total = sum(balances)
    if total == 0:
        return [0] * len(balances)
    parts, through, before = [], 0, 0
    for balance in balances:
        through += balance
        cumulative = mul_div_half_up(amount, through, total)
        parts.append(cumulative - before)
        before = cumulative
    return parts


def breached(triggers: Iterable[Trigger], cumulative_defaults: int, closing_pool: int) -> bool:
    """Any trigger whose cumulative default rate (this period's defaults included) is above its level, compared
    exactly: defaults > level x pool."""
    return any(Decimal(cumulative_defaults) > t.above * closing_pool for t in triggers)


def run_waterfall(deal: Deal, collections: Sequence[Collection]) -> list[Period]:
    """The deal's periods over `collections` (periods 1, 2, ... in order), up to its clean-up call if it has one.
    Refuses a period missing or a month that takes more out of the pool than it holds, naming the period."""
    names = [t.name for t in deal.tranches]
    balances = [t.balance for t in deal.tranches]
    unpaid_interest = [0] * len(balances)
    unpaid_fees = [0] * len(deal.fees)
    principal_owed = 0
    pool = deal.pool_balance
    reserve = deal.reserve_account.initial
    cumulative_defaults = 0
    sequential = deal.principal_payment is PrincipalPayment.SEQUENTIAL
    switched = False
    periods = []
    for expected, c in enumerate(collections, start=1):
        if c.period != expected:
            raise ValidationError(f"period {expected} is missing (found {c.period} in its place)", field="period")
        reduction = c.principal + c.defaults
        if reduction > pool:
            raise ValidationError(
                f"principal + defaults of {format_money(reduction, deal.currency)} exceed the pool's balance of "
                f"{format_money(pool, deal.currency)}",
                field=f"period {c.period}",
            )
        left = pool - reduction  # the pool's balance at the month's end, before any loan is bought or called
        called = c.callable and deal.clean_up_call is not None and deal.clean_up_call.due(left, deal.pool_balance)
        price = left if called else 0
        available = c.interest + c.principal + c.recoveries + reserve + price
        remaining = available

        fees_paid = 0
        for i, fee in enumerate(deal.fees):
            due = monthly(fee.annual_rate, pool) + unpaid_fees[i]
            paid = min(due, remaining)
            unpaid_fees[i] = due - paid
            fees_paid += paid
            remaining -= paid

        due_interest = [0] * len(balances)
        paid_interest = [0] * len(balances)
        for i, tranche in enumerate(deal.tranches):
            if tranche.coupon is None:
                continue
            due_interest[i] = monthly(tranche.coupon, balances[i]) + unpaid_interest[i]
            paid_interest[i] = min(due_interest[i], remaining)
            unpaid_interest[i] = due_interest[i] - paid_interest[i]
            remaining -= paid_interest[i]

        cumulative_defaults += c.defaults
        switched = switched or breached(deal.triggers, cumulative_defaults, deal.pool_balance)
        distribution = reduction + principal_owed + price
        to_principal = min(distribution, remaining)
        revolving = deal.revolving is not None and not called and deal.revolving.on(c.period, switched)
        reinvested = 0
        if revolving:
            reinvested = to_principal if c.purchased is None else min(to_principal, c.purchased)
        split = pay_sequentially if sequential or switched else pay_pro_rata
        principal = split(to_principal - reinvested, balances)
        principal_owed = distribution - to_principal
        remaining -= to_principal
        balances = [b - p for b, p in zip(balances, principal, strict=True)]
        losses = balances if called else [0] * len(balances)
        if called:
            balances, principal_owed = [0] * len(balances), 0
        pool = left + reinvested - price

        reserve = min(0 if called else deal.reserve_account.target, remaining)
        remaining -= reserve
        periods.append(
            Period(
                period=c.period,
                available=available,
                fees=fees_paid,
                fees_shortfall=sum(unpaid_fees),
                principal_shortfall=principal_owed,
                reserve_balance=reserve,
                trigger_breached=switched,
                residual_income=remaining,
                pool_balance=pool,
                tranches={
                    name: TranchePayment(
                        interest_due=due_interest[i],
                        interest_paid=paid_interest[i],
                        interest_shortfall=unpaid_interest[i],
                        principal_paid=principal[i],
                        balance=balances[i],
                        loss=losses[i],
                    )
                    for i, name in enumerate(names)
                },
                revolving=revolving,
                reinvested=reinvested,
                clean_up_call=called,
            )
        )
        if called:
            break
    return periods


def csv_rows(text: str, columns: Sequence[str], source: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The rows of a CSV whose header names `columns` (in any order, no other), each with where it stands
    (`FILE line N`) and its cells stripped; an empty file, a missing or unknown column, or a row longer than the
    header is refused naming it."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not header:
        raise ValidationError(f"is empty; its first line is the header {','.join(columns)}", field=source)
    for name in header:
        if name not in columns:
            raise ValidationError(f"unknown column; the columns are {', '.join(columns)}", field=f"{source}, {name}")
    for column in columns:
        if column not in header:
            raise ValidationError("column is missing from the header", field=f"{source}, {column}")
    for row in reader:
        where = f"{source} line {reader.line_num}"
        if None in row:
            raise ValidationError(f"has more cells than the header's {len(header)}", field=where)
        yield where, {k: (v or "").strip() for k, v in row.items()}


def collections_from_csv(text: str, currency: str, source: str) -> list[Collection]:
    """Collections from a CSV's text: a header naming `period`, `interest`, `principal`, `defaults`, `recoveries`,
    then one row a month in major units. A bad cell is refused naming its line and column, a missing period naming
    the line where another stands in its place."""
    collections: list[Collection] = []
    for where, row in csv_rows(text, COLUMNS, source):
        cells: dict[str, int] = {}
        for column in COLUMNS:
            cell = row[column]
            if not cell:
                raise ValidationError("is empty", field=f"{where}, {column}")
            if column == "period":
                if not (cell.isascii() and cell.isdigit()):
                    raise ValidationError(f"{cell!r} is not a period number (1, 2, ...)", field=f"{where}, period")
                cells[column] = int(cell)
                continue
            cells[column] = to_minor(cell, currency, f"{where}, {column}")
            if cells[column] < 0:
                raise ValidationError(f"{cell} is negative", field=f"{where}, {column}")
        expected = len(collections) + 1
        if cells["period"] != expected:
            raise ValidationError(
                f"period {expected} is missing: periods run 1, 2, ... one a row in order", field=f"{where}, period"
            )
        collections.append(
            Collection(cells["period"], cells["interest"], cells["principal"], cells["defaults"], cells["recoveries"])
        )
    if not collections:
        raise ValidationError("holds no period", field=source)
    return collections


def document(periods: Sequence[Period], currency: str) -> dict[str, list[dict[str, object]]]:
    """The periods as `--json` prints them: money as decimal strings in major units."""

    def major(minor: int) -> str:
        return str(from_minor(minor, currency))

    return {
        "periods": [
            {
                "period": p.period,
                "available": major(p.available),
                "fees": major(p.fees),
                "reserve_balance": major(p.reserve_balance),
                "trigger_breached": p.trigger_breached,
                "residual_income": major(p.residual_income),
                "revolving": p.revolving,
                "reinvested": major(p.reinvested),
                "clean_up_call": p.clean_up_call,
                "pool_balance": major(p.pool_balance),
                "tranches": {
                    name: {
                        "interest_due": major(t.interest_due),
                        "interest_paid": major(t.interest_paid),
                        "interest_shortfall": major(t.interest_shortfall),
                        "principal_paid": major(t.principal_paid),
                        "balance": major(t.balance),
                        "loss": major(t.loss),
                    }
                    for name, t in p.tranches.items()
                },
            }
            for p in periods
        ]
    }
