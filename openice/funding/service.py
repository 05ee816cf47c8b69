"""Funding's use cases over the live book: a deal's pool cut and its stratification, issuing the deal (its loans move
to it in the ledger), and each month-end's collections paid down its waterfall."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from openice.errors import Conflict, NotFound, ValidationError
from openice.funding import books
from openice.funding.deal import Deal
from openice.funding.pool import Cut, PoolLoan, Stratum, cut, stratify
from openice.funding.report import Bucket, InvestorReport, Standing, investor_report, standing
from openice.funding.repository import FundingUnit, funding_unit
from openice.funding.waterfall import Collection, document, run_waterfall
from openice.money import from_minor, to_minor
from openice.servicing import ledger
from openice.servicing.buckets import BUCKETS, WRITTEN_OFF
from openice.servicing.eod import DayContext, closes_month
from openice.servicing.loan import deal_funder
from openice.storage.days import from_day, to_day
from openice.storage.uow import JoinedUnits, UnitsOfWork

if TYPE_CHECKING:  # numpy loads when a grid is projected, not with end of day and every command's --help
    from openice.funding.projection import Pool, Projection, Scenario


@dataclass(frozen=True)
class PoolCut:
    """A deal's pool as the book gives it on the cut-off date, before anything is committed."""

    deal: Deal
    cut_off: date
    cut: Cut
    strata: list[Stratum]


@dataclass(frozen=True)
class DealLine:
    """A deal issued, as the console lists it: its closing (the cut-off), where it stands, and the months whose
    month-end closed (YYYY-MM, the months of its investor reports)."""

    name: str
    currency: str
    cut_off: date
    standing: Standing
    months: list[str]


class Funding:
    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    def pool(self, deal: Deal, as_of: date | None = None) -> PoolCut:
        """The loans the deal's eligibility takes from the book on the cut-off date, and their strata."""
        with funding_unit(self.units, readonly=True) as unit:
            return self._cut(unit, deal, as_of)

    @staticmethod
    def _cut(unit: FundingUnit, deal: Deal, as_of: date | None) -> PoolCut:
        """The book holds each loan as it stands today, so the pool is cut on the business date: a cut-off in the
        deal file or `as_of` on another day is refused."""
        today = unit.book.business_date()
        cut_off = deal.eligibility.cut_off
        if as_of is not None and cut_off is not None and as_of != cut_off:
            raise ValidationError(f"{as_of} is not the deal file's cut_off {cut_off}", field="as_of")
        cut_off = as_of or cut_off or today
        if cut_off != today:
            raise ValidationError(
                f"{cut_off} is not the business date {today}: the book holds the loans as they stand on it",
                field="as_of",
            )
        taken = cut(unit.book.loans(), deal.eligibility, deal.pool_balance)
        return PoolCut(deal, cut_off, taken, stratify(taken.loans, deal.currency, cut_off))

    def issue(self, deal: Deal, definition: dict[str, Any], as_of: date) -> dict[str, Any]:
        """Issue the deal over its pool cut, once: store it, its tranches (the residual tranche sized to the pool
        beyond the notes) and its loans, move the loans to the deal's funder and post the transfer on each loan's
        books, and the reserve's initial balance. A deal of the same name issued before is refused."""
        with funding_unit(self.units) as unit:
            issued = unit.deals.named(deal.name)
            if issued is not None:
                raise Conflict(
                    f"deal {deal.name!r} was issued with a cut-off of {from_day(issued.cut_off_day)}; "
                    "a deal is issued once",
                    field="name",
                )
            pool = self._cut(unit, deal, as_of)
            if not pool.cut.loans:
                raise ValidationError("no loan of the book meets the deal's criteria", field="eligibility")
            sized = deal.sized_to(pool.cut.balance)
            funder = deal_funder(deal.name)
            after = unit.book.last_entry()
            if unit.deals.lock_pool(pool.cut.loans, funder) != len(pool.cut.loans):
                raise Conflict("the book changed while the pool was cut; cut it again", field="eligibility")
            deal_id = unit.deals.add(sized, funder, definition, pool.cut_off, pool.cut.loans, after)
            anchor = pool.cut.loans[0].loan_id
            lines = [line for x in pool.cut.loans for line in books.transfer(x.loan_id, x.balance, deal.derecognise)]
            unit.deals.post(
                pool.cut_off, ledger.ABS_TRANSFER, lines + books.reserve_funding(anchor, deal.reserve_account.initial)
            )
            return {
                "deal_id": deal_id,
                "name": deal.name,
                "funder": funder,
                "cut_off": pool.cut_off.isoformat(),
                "derecognise": deal.derecognise,
                "loans": len(pool.cut.loans),
                "pool_balance": sized.pool_balance,
                "tranches": {t.name: t.balance for t in sized.tranches},
            }

    def close_month(self, last_day: date) -> int:
        """Month-end for every deal issued by `last_day`: the month's collections of its pool from the ledger, the
        waterfall's period over them (after the months before), its payments posted and the period stored. A deal
        whose month is stored already is left as it is. Returns how many deals were paid."""
        paid = 0
        with funding_unit(self.units) as unit:
            deals = unit.deals.all()
            if deals:
                unit.book.hold_journal()
            for row in deals:
                periods = unit.deals.periods(row.id)
                if periods and (periods[-1].last_day >= to_day(last_day) or called(periods[-1])):
                    continue
                first = from_day(periods[-1].last_day) + timedelta(days=1) if periods else from_day(row.cut_off_day)
                if first > last_day:
                    continue
                self._pay_month(unit, row, periods, first, last_day)
                paid += 1
        return paid

    @staticmethod
    def _pay_month(unit: FundingUnit, row: Any, periods: list[Any], first: date, last: date) -> None:
        """The month's waterfall, paid. While the deal revolves, the cash it sets aside buys the platform's eligible
        loans (oldest first, within the concentration limits against the pool it holds) and the waterfall is run
        again over what was bought, so what could not be spent pays the notes; at the clean-up call the platform
        buys the pool's loans back at their principal outstanding, takes its written-off loans back for nothing, and
        what the price could not pay of the notes is written down as their loss."""
        deal = _sized(row)
        after = periods[-1].through_entry if periods else row.after_entry
        through = unit.book.last_entry()
        month = books.month(unit.deals.month_lines(row.id, after, through))
        stored = stored_collections(periods, deal.currency)
        collection = month.collection
        run = run_waterfall(deal, books.fed([*stored, collection]))
        bought: tuple[PoolLoan, ...] = ()
        if run[-1].reinvested:
            held = unit.book.loans(row.funder)
            bought = cut(unit.book.loans(), deal.eligibility, deal.pool_balance, held, run[-1].reinvested).loans
            if unit.deals.lock_pool(bought, row.funder) != len(bought):
                raise Conflict(f"the book changed while deal {deal.name!r} bought loans", field="revolving")
            collection = replace(collection, purchased=sum(x.balance for x in bought))
            run = run_waterfall(deal, books.fed([*stored, collection]))
            unit.deals.add_loans(row.id, bought, last + timedelta(days=1))
        returned: list[PoolLoan] = []
        if run[-1].clean_up_call:
            returned = unit.book.loans(row.funder)
            opening = run[-2].pool_balance if len(run) > 1 else deal.pool_balance
            fed = books.fed([*stored, collection])[-1]
            if sum(x.balance for x in returned) != opening - fed.principal - fed.defaults:
                # A reversal still carried leaves the loans above the pool's balance: the call waits for a month-end
                # where they agree, so the price the waterfall pays is what the loans are bought back at.
                returned = []
                collection = replace(collection, callable=False)
                run = run_waterfall(deal, books.fed([*stored, collection]))
        now = run[-1]
        before = run[-2].reserve_balance if len(run) > 1 else deal.reserve_account.initial
        anchor = unit.deals.anchor(row.id)
        lines = books.payments(anchor, month.cash, now, before, deal.derecognise)
        lines += [line for x in bought for line in books.purchase(x.loan_id, x.balance, deal.derecognise)]
        if now.clean_up_call:
            lines += [line for x in returned for line in books.buy_back(x.loan_id, x.balance, deal.derecognise)]
            unit.deals.return_loans(row.id, row.funder, last + timedelta(days=1))
        unit.deals.post(last, ledger.ABS_PERIOD, lines if deal.derecognise else lines + books.kept(month))
        (paid,) = document(run[-1:], deal.currency)["periods"]
        # Prepaid principal is the investor report's, not the waterfall's: kept beside the month's waterfall.
        paid["prepaid"] = str(from_minor(unit.deals.prepaid(row.id, after, through), deal.currency))
        unit.deals.add_period(row.id, len(run), first, last, through, collection, paid)

    def deal_periods(self, name: str) -> tuple[Any, list[Any]]:
        """A deal issued and its months as stored; an unknown name is refused."""
        with funding_unit(self.units, readonly=True) as unit:
            row = unit.deals.named(name)
            if row is None:
                raise ValidationError(f"no deal {name!r} has been issued", field="name")
            return row, unit.deals.periods(row.id)

    def deal_lines(self) -> list[DealLine]:
        """Every deal issued, in the order issued, with where it stands after the months month-end paid."""
        with funding_unit(self.units, readonly=True) as unit:
            rows = [(row, unit.deals.periods(row.id)) for row in unit.deals.all()]
        return [
            DealLine(
                name=row.name,
                currency=row.currency,
                cut_off=from_day(row.cut_off_day),
                standing=standing(_sized(row), stored_collections(periods, row.currency)),
                months=[from_day(p.last_day).strftime("%Y-%m") for p in periods],
            )
            for row, periods in rows
        ]

    def stress_grid(self, name: str, base: Scenario) -> tuple[Deal, list[Projection]]:
        """The deal's stress grid from its closing: its pool as the deal bought it under 1x to 5x the base defaults,
        each under 0 to 30% CPR."""
        from openice.funding.projection import project, stress_grid

        deal, pool = self.closing_pool(name)
        return deal, project(deal, pool, stress_grid(base))

    def closing_pool(self, name: str) -> tuple[Deal, Pool]:
        """The deal and its pool as it bought it (each loan's principal at the cut-off, rate and months left): all a
        projection reads, so a caller can end its transaction before projecting."""
        import numpy as np

        from openice.funding.projection import Pool

        with funding_unit(self.units, readonly=True) as unit:
            row = unit.deals.named(name)
            if row is None:
                raise NotFound(f"no deal {name!r} has been issued", field="name")
            loans = unit.deals.pool_at_closing(row.id, from_day(row.cut_off_day))
        balances, rates, terms = zip(*loans, strict=True)
        pool = Pool(
            np.array(balances, dtype=np.int64),
            np.array(rates, dtype=np.float64) / 1_000_000,
            np.array(terms, dtype=np.int64),
        )
        return _sized(row), pool

    def investor_report(self, name: str, month: str) -> InvestorReport:
        """The investor report of the deal's month `month` (YYYY-MM): the month-end that closed in it. A month not
        yet closed (or before the deal) is not found, naming the month."""
        try:
            year, number = (int(part) for part in month.split("-"))
            wanted = date(year, number, 1)
        except ValueError:
            raise ValidationError(f"{month!r} is not a month as YYYY-MM", field="month") from None
        with funding_unit(self.units, readonly=True) as unit:
            row = unit.deals.named(name)
            if row is None:
                raise NotFound(f"no deal {name!r} has been issued", field="name")
            periods = unit.deals.periods(row.id)
            closed = [p for p in periods if from_day(p.last_day).replace(day=1) == wanted]
            if not closed:
                raise NotFound(f"deal {name!r} has no month-end closed in {month}", field="month")
            (period,) = closed
            last = from_day(period.last_day)
            found = {bucket: (loans, balance) for bucket, loans, balance in unit.deals.buckets(row.id, last)}
        deal = _sized(row)
        stored = stored_collections(periods, deal.currency)
        ladder = [Bucket(b, *found.get(b, (0, 0))) for b in (*BUCKETS, WRITTEN_OFF)] if found else []
        prepaid = [to_minor(json.loads(p.waterfall).get("prepaid", "0"), deal.currency, "prepaid") for p in periods]
        return investor_report(deal, stored, prepaid, period.period, from_day(period.first_day), last, ladder)


def _sized(row: Any) -> Deal:
    """A stored deal's file, its residual tranche sized to the pool it was issued over."""
    return Deal.from_dict(json.loads(row.definition)).sized_to(row.pool_balance)


def stored_collections(periods: list[Any], currency: str) -> list[Collection]:
    """The months as month-end stored them, each with the loans a revolving deal bought in it (its waterfall's
    `reinvested`) and whether the deal was called in it, so the waterfall runs again as it was paid."""
    return [
        Collection(
            p.period,
            p.interest,
            p.principal,
            p.defaults,
            p.recoveries,
            to_minor(json.loads(p.waterfall).get("reinvested", "0"), currency, "reinvested"),
            callable=called(p),
        )
        for p in periods
    ]


def called(period: Any) -> bool:
    """Whether the deal was called at this month's end: it ended, and later month-ends leave it."""
    return bool(json.loads(period.waterfall).get("clean_up_call", False))


def step_abs(ctx: DayContext) -> int:
    """End of day's month-end step: each deal's month paid down its waterfall, in end of day's transaction."""
    if not closes_month(ctx.day):
        return 0
    return Funding(JoinedUnits(ctx.conn)).close_month(from_day(ctx.day))
