"""Funding's storage: the live book as the pool cut reads it, and the deals issued over it (their tranches, pools and
months), bound to one connection."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from openice.clock import now_iso
from openice.funding.books import COLLECTION_ACCOUNTS, Line
from openice.funding.deal import Deal
from openice.funding.pool import PoolLoan
from openice.servicing import ledger
from openice.servicing.loan import PLATFORM, LoanStatus
from openice.storage import decisioning_tables, funding_tables, servicing_tables
from openice.storage.days import from_day, to_day
from openice.storage.uow import UnitsOfWork

DEAL_KINDS = (ledger.ABS_TRANSFER, ledger.ABS_PERIOD)
PREPAID = "principal_prepaid"  # the allocation of principal paid ahead of its schedule
CHUNK = 5_000  # loans a statement when a pool moves to its deal: well inside every engine's limit of parameters


class Book:
    """The platform's own active loans with what the pool cut reads of each: its grade (from the credit line it was
    drawn on) and its borrower's province, when the loan came through an application."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def loans(self, funder: str = PLATFORM) -> list[PoolLoan]:
        """The active loans of `funder`: the platform's own, less those a deal held before (a loan goes to one deal
        at most, so one bought back at a clean-up call is not sold again), or a deal's."""
        loans, inst = servicing_tables.loans.c, servicing_tables.installments.c
        lines, draws, people = (
            decisioning_tables.credit_lines.c,
            decisioning_tables.drawdowns.c,
            decisioning_tables.borrowers.c,
        )
        remaining = (
            select(inst.loan_id, func.count().label("n"))
            .where(inst.booked.is_(False))
            .group_by(inst.loan_id)
            .subquery()
        )
        grades = (
            select(draws.loan_id, lines.grade)
            .join(decisioning_tables.credit_lines, lines.id == draws.line_id)
            .where(draws.loan_id.is_not(None))
            .subquery()
        )
        query = (
            select(
                loans.id,
                loans.borrower_id,
                loans.product_code,
                grades.c.grade,
                people.province,
                loans.funder,
                loans.business_model,
                loans.status,
                loans.dpd,
                loans.bal_loan_principal,
                loans.rate_ppm,
                func.coalesce(remaining.c.n, 0).label("remaining"),
                loans.disbursed_day,
            )
            .select_from(servicing_tables.loans)
            .outerjoin(remaining, remaining.c.loan_id == loans.id)
            .outerjoin(grades, grades.c.loan_id == loans.id)
            .outerjoin(decisioning_tables.borrowers, people.id == loans.borrower_id)
            .where(loans.funder == funder, loans.status == LoanStatus.ACTIVE.value)
            .order_by(loans.id)
        )
        if funder == PLATFORM:
            query = query.where(loans.id.not_in(select(funding_tables.abs_pool_loans.c.loan_id)))
        return [
            PoolLoan(
                loan_id=r.id,
                borrower_id=r.borrower_id,
                product=r.product_code,
                grade=r.grade,
                province=r.province,
                funder=r.funder,
                business_model=r.business_model,
                status=r.status,
                dpd=r.dpd,
                balance=r.bal_loan_principal,
                rate_ppm=r.rate_ppm,
                remaining_tenor=int(r.remaining),
                disbursed_on=from_day(r.disbursed_day),
            )
            for r in self.conn.execute(query)
        ]

    def business_date(self) -> date:
        calendar = servicing_tables.business_calendar.c
        return from_day(self.conn.execute(select(calendar.business_day).where(calendar.id == 1)).scalar_one())

    def hold_journal(self) -> None:
        """On PostgreSQL, hold writers of the journal off until this transaction ends, so an entry whose number is below
        the last one read here but whose transaction had not committed cannot be missed by the month that reads up to
        it (as end of day's ledger step does). SQLite has one writer at a time anyway."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("LOCK TABLE journal_entries IN SHARE MODE"))

    def last_entry(self) -> int:
        return int(
            self.conn.execute(select(func.coalesce(func.max(servicing_tables.journal_entries.c.id), 0))).scalar_one()
        )


class Deals:
    """The deals issued, their tranches, pools and months, and the deal's entries on its loans' books."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def named(self, name: str) -> Any:
        deals = funding_tables.abs_deals
        return self.conn.execute(select(deals).where(deals.c.name == name)).first()

    def all(self) -> list[Any]:
        deals = funding_tables.abs_deals
        return list(self.conn.execute(select(deals).order_by(deals.c.id)))

    def add(
        self, deal: Deal, funder: str, definition: dict[str, Any], cut_off: date, pool: Sequence[PoolLoan], after: int
    ) -> int:
        """Store the deal, its tranches and its pool; a second deal of the same name fails on its unique key."""
        deal_id = int(
            self.conn.execute(
                insert(funding_tables.abs_deals)
                .values(
                    name=deal.name,
                    funder=funder,
                    currency=deal.currency,
                    definition=json.dumps(definition, default=str, sort_keys=True),
                    derecognise=deal.derecognise,
                    cut_off_day=to_day(cut_off),
                    pool_balance=deal.pool_balance,
                    loans=len(pool),
                    after_entry=after,
                    created_at=now_iso(),
                )
                .returning(funding_tables.abs_deals.c.id)
            ).scalar_one()
        )
        self.conn.execute(
            insert(funding_tables.abs_tranches),
            [
                dict(
                    deal_id=deal_id,
                    seq=seq,
                    name=t.name,
                    balance=t.balance,
                    coupon=None if t.coupon is None else str(t.coupon),
                )
                for seq, t in enumerate(deal.tranches, start=1)
            ],
        )
        self.add_loans(deal_id, pool)
        return deal_id

    def add_loans(self, deal_id: int, pool: Sequence[PoolLoan], joined: date | None = None) -> None:
        """The loans join the deal's pool, each at its balance then: at issue (`joined` None, the cut-off day), or
        bought while it revolves, the deal's from `joined`."""
        if not pool:
            return
        day = None if joined is None else to_day(joined)
        self.conn.execute(
            insert(funding_tables.abs_pool_loans),
            [dict(loan_id=x.loan_id, deal_id=deal_id, balance=x.balance, joined_day=day) for x in pool],
        )

    def return_loans(self, deal_id: int, funder: str, left: date) -> None:
        """At the deal's clean-up call its loans still open are the platform's own again from `left`: those bought
        back, and those written off, so that their later recoveries are the platform's rather than a closed deal's.
        They stay on the deal's list, so the disclosures still tell the months they were its."""
        loans, held = servicing_tables.loans, funding_tables.abs_pool_loans
        still_open = (LoanStatus.ACTIVE.value, LoanStatus.WRITTEN_OFF.value)
        ids = list(
            self.conn.execute(
                select(loans.c.id).where(loans.c.funder == funder, loans.c.status.in_(still_open)).order_by(loans.c.id)
            ).scalars()
        )
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            self.conn.execute(
                update(loans).where(loans.c.id.in_(chunk)).values(funder=PLATFORM, version=loans.c.version + 1)
            )
            self.conn.execute(
                update(held).where(held.c.deal_id == deal_id, held.c.loan_id.in_(chunk)).values(left_day=to_day(left))
            )

    def lock_pool(self, pool: Sequence[PoolLoan], funder: str) -> int:
        """Move the pool's loans to the deal's funder, a chunk of loans a statement, after reading them again (locked
        on PostgreSQL): how many are still the platform's, active and at the balance they were cut at (fewer means the
        book changed since it was read)."""
        loans = servicing_tables.loans
        cut_at = {x.loan_id: x.balance for x in pool}
        ids = list(cut_at)
        unchanged = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            query = select(loans.c.id, loans.c.bal_loan_principal).where(
                loans.c.id.in_(chunk), loans.c.funder == PLATFORM, loans.c.status == LoanStatus.ACTIVE.value
            )
            if self.conn.dialect.name == "postgresql":
                query = query.with_for_update()
            unchanged += sum(cut_at[r.id] == r.bal_loan_principal for r in self.conn.execute(query))
            self.conn.execute(
                update(loans).where(loans.c.id.in_(chunk)).values(funder=funder, version=loans.c.version + 1)
            )
        return unchanged

    def post(self, on: date, kind: str, lines: Sequence[Line]) -> None:
        """One journal entry of the deal's, its lines on the loans' books they name."""
        if not lines:
            return
        entry_id = self.conn.execute(
            insert(servicing_tables.journal_entries)
            .values(loan_id=None, business_day=to_day(on), kind=kind, transaction_id=None, created_at=now_iso())
            .returning(servicing_tables.journal_entries.c.id)
        ).scalar_one()
        self.conn.execute(
            insert(servicing_tables.journal_lines),
            [dict(entry_id=entry_id, loan_id=x.loan_id, account=x.account, amount=x.amount) for x in lines],
        )

    def anchor(self, deal_id: int) -> int:
        """The deal's first loan (the lowest number), whose books carry the deal's own lines."""
        pool = funding_tables.abs_pool_loans.c
        return int(self.conn.execute(select(func.min(pool.loan_id)).where(pool.deal_id == deal_id)).scalar_one())

    def periods(self, deal_id: int) -> list[Any]:
        p = funding_tables.abs_periods.c
        return list(
            self.conn.execute(select(funding_tables.abs_periods).where(p.deal_id == deal_id).order_by(p.period))
        )

    def pool_at_closing(self, deal_id: int, cut_off: date) -> list[tuple[int, int, int]]:
        """The deal's loans as it bought them: principal at the cut-off, annual rate in ppm, and the installments
        falling due after the cut-off (one at least), by loan number."""
        pool, loans, inst = funding_tables.abs_pool_loans.c, servicing_tables.loans.c, servicing_tables.installments.c
        after = (
            select(inst.loan_id, func.count().label("n"))
            .where(inst.due_day > to_day(cut_off))
            .group_by(inst.loan_id)
            .subquery()
        )
        query = (
            select(pool.balance, loans.rate_ppm, func.coalesce(after.c.n, 0))
            .join(servicing_tables.loans, loans.id == pool.loan_id)
            .outerjoin(after, after.c.loan_id == pool.loan_id)
            .where(pool.deal_id == deal_id)
            .order_by(pool.loan_id)
        )
        return [(int(r[0]), int(r[1]), max(1, int(r[2]))) for r in self.conn.execute(query)]

    def buckets(self, deal_id: int, day: date) -> list[tuple[str, int, int]]:
        """The deal's loans by delinquency bucket in the month-end portfolio snapshot of `day`: bucket, loans,
        principal outstanding; a loan repaid in full is left out (a written-off one is in its own bucket)."""
        snap, pool = servicing_tables.portfolio_snapshots.c, funding_tables.abs_pool_loans.c
        query = (
            select(snap.bucket, func.count(), func.coalesce(func.sum(snap.principal_outstanding), 0))
            .join(funding_tables.abs_pool_loans, pool.loan_id == snap.loan_id)
            .where(pool.deal_id == deal_id, snap.as_of_day == to_day(day), snap.status != LoanStatus.CLOSED.value)
            .group_by(snap.bucket)
        )
        return [(r[0], int(r[1]), int(r[2])) for r in self.conn.execute(query)]

    def month_lines(self, deal_id: int, after: int, through: int) -> Iterator[tuple[Line, str]]:
        """The journal lines of the deal's loans in entries after `after` up to `through` that bear on its
        collections, each with its entry's kind; the deal's own entries left out."""
        j, e, pool = (
            servicing_tables.journal_lines.c,
            servicing_tables.journal_entries.c,
            funding_tables.abs_pool_loans.c,
        )
        query = (
            select(j.loan_id, j.account, j.amount, e.kind)
            .join(servicing_tables.journal_entries, e.id == j.entry_id)
            .join(funding_tables.abs_pool_loans, pool.loan_id == j.loan_id)
            .where(
                pool.deal_id == deal_id,
                j.entry_id > after,
                j.entry_id <= through,
                j.account.in_(COLLECTION_ACCOUNTS),
                e.kind.not_in(DEAL_KINDS),
            )
        )
        for r in self.conn.execute(query):
            yield Line(r.loan_id, r.account, int(r.amount)), r.kind

    def prepaid(self, deal_id: int, after: int, through: int) -> int:
        """The principal the deal's loans prepaid (beyond what was due) in the payments whose entries fall after
        `after` up to `through`: their `principal_prepaid` allocations. A payment reversed since has none left."""
        a, e, pool = (
            servicing_tables.allocations.c,
            servicing_tables.journal_entries.c,
            funding_tables.abs_pool_loans.c,
        )
        paid_in = select(e.transaction_id).where(
            e.id > after, e.id <= through, e.transaction_id.is_not(None), e.kind.not_in(DEAL_KINDS)
        )
        query = select(func.coalesce(func.sum(a.amount), 0)).where(
            a.component == PREPAID,
            a.transaction_id.in_(paid_in),
            a.loan_id.in_(select(pool.loan_id).where(pool.deal_id == deal_id)),
        )
        return int(self.conn.execute(query).scalar_one())

    def add_period(
        self, deal_id: int, period: int, first: date, last: date, through: int, raw: Any, waterfall: dict[str, Any]
    ) -> None:
        self.conn.execute(
            insert(funding_tables.abs_periods).values(
                deal_id=deal_id,
                period=period,
                first_day=to_day(first),
                last_day=to_day(last),
                through_entry=through,
                interest=raw.interest,
                principal=raw.principal,
                defaults=raw.defaults,
                recoveries=raw.recoveries,
                waterfall=json.dumps(waterfall, sort_keys=True),
                created_at=now_iso(),
            )
        )


class FundingUnit:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.book = Book(conn)
        self.deals = Deals(conn)


@contextmanager
def funding_unit(units: UnitsOfWork, readonly: bool = False) -> Iterator[FundingUnit]:
    with units.begin(readonly=readonly) as conn:
        yield FundingUnit(conn)
