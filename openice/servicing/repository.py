"""Servicing's repositories and its unit of work: the only place servicing touches SQL row by row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from openice.clock import now_iso
from openice.errors import Conflict, NotFound
from openice.idempotency import Idempotency
from openice.servicing import ledger, settlement
from openice.servicing.loan import (
    BusinessModel,
    InstallmentState,
    LoanAccount,
    LoanStatus,
    LoanTerms,
    Transaction,
)
from openice.servicing.products import PPM, AllocationStrategy, LoanProduct, PrepaymentMode, RepaymentMethod
from openice.storage import direct, servicing_tables
from openice.storage.days import from_day, opt_date, opt_day, to_day
from openice.storage.uow import UnitsOfWork

# The statements of the per-request paths (a repayment, an origination), built once with bound parameters instead
# of on every call: building a statement and its cache key costs more CPU than PostgreSQL spends running it.
_PRODUCT = select(servicing_tables.products.c.definition).where(servicing_tables.products.c.code == bindparam("code"))
_LOAN = select(servicing_tables.loans).where(servicing_tables.loans.c.id == bindparam("loan_id"))
_LOAN_FOR_UPDATE = _LOAN.with_for_update()
_INSTALLMENTS = (
    select(servicing_tables.installments)
    .where(servicing_tables.installments.c.loan_id == bindparam("loan_id"))
    .order_by(servicing_tables.installments.c.seq)
)
_DELETE_INSTALLMENTS = servicing_tables.installments.delete().where(
    servicing_tables.installments.c.loan_id == bindparam("loan_id")
)
_INSERT_INSTALLMENTS = insert(servicing_tables.installments)
_ONE_INSTALLMENT = (
    servicing_tables.installments.c.loan_id == bindparam("b_loan"),
    servicing_tables.installments.c.seq == bindparam("b_seq"),
)
_DELETE_INSTALLMENT = servicing_tables.installments.delete().where(*_ONE_INSTALLMENT)
_UPDATE_INSTALLMENT = update(servicing_tables.installments).where(*_ONE_INSTALLMENT)
_INSERT_LOAN = insert(servicing_tables.loans)
_SAVE_LOAN = (
    update(servicing_tables.loans)
    .where(servicing_tables.loans.c.id == bindparam("loan_key"))
    .values(version=servicing_tables.loans.c.version + 1)
)
_INSERT_ENTRY = insert(servicing_tables.journal_entries).returning(servicing_tables.journal_entries.c.id)
_INSERT_LINES = insert(servicing_tables.journal_lines)
_INSERT_ALLOCATIONS = insert(servicing_tables.allocations)
_INSERT_TRANSACTION = insert(servicing_tables.transactions).returning(servicing_tables.transactions.c.id)
_CALENDAR = select(servicing_tables.business_calendar).where(servicing_tables.business_calendar.c.id == 1)
_INSERT_OUTBOX = insert(servicing_tables.outbox)


@lru_cache(maxsize=1024)
def parse_product(definition: str) -> LoanProduct:
    """A product from its stored definition, parsed once per worker: the same text is the same product."""
    return LoanProduct.from_dict(json.loads(definition))


_PRODUCTS = select(servicing_tables.products.c.definition).order_by(servicing_tables.products.c.code)


def unknown_product(code: str) -> NotFound:
    return NotFound(f"no product {code!r}; create it first or pick one of `openice products`", field="product_code")


class ProductRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, product: LoanProduct) -> None:
        if self.conn.execute(
            select(servicing_tables.products.c.code).where(servicing_tables.products.c.code == product.code)
        ).first():
            raise Conflict(f"product {product.code} already exists", field="code")
        self.conn.execute(
            insert(servicing_tables.products).values(
                code=product.code,
                currency=product.currency,
                definition=json.dumps(product.to_dict()),
                created_at=now_iso(),
            )
        )

    def get(self, code: str) -> LoanProduct:
        row = direct.execute(self.conn, _PRODUCT, {"code": code}).first()
        if row is None:
            raise unknown_product(code)
        return parse_product(row.definition)

    def list(self) -> list[LoanProduct]:
        return [parse_product(r.definition) for r in direct.execute(self.conn, _PRODUCTS)]


BALANCE_COLUMNS = {account: f"bal_{account}" for account in ledger.SNAPSHOT_ACCOUNTS}


class LoanRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # loan id -> the installment rows as this transaction last read or wrote them, so `save` writes only the
        # installments that changed (a repayment usually touches one of twelve)
        self._installments: dict[int, dict[int, dict[str, Any]]] = {}
        # loan id -> the row `lock` read, handed to the next read of that loan instead of reading it again
        self._locked: dict[int, Any] = {}

    def next_id(self) -> int:
        """A new loan number before the row exists (the domain needs it for its journal lines).

        PostgreSQL draws it from the key's sequence, so concurrent originations never collide;
        SQLite serialises writers, so the next number after the largest is safe there."""
        if self.conn.dialect.name == "postgresql":
            return int(self.conn.execute(text("SELECT nextval(pg_get_serial_sequence('loans', 'id'))")).scalar_one())
        return (self.conn.execute(select(func.max(servicing_tables.loans.c.id))).scalar() or 0) + 1

    def add(self, loan: LoanAccount, borrower_id: str | None = None, channel: str = "direct") -> None:
        terms = loan.terms
        direct.execute(
            self.conn,
            _INSERT_LOAN,
            dict(
                id=loan.loan_id,
                borrower_id=borrower_id,
                product_code=terms.product_code,
                currency=terms.currency,
                principal=terms.principal,
                tenor=terms.tenor,
                rate_ppm=terms.rate_ppm,
                funder_rate_ppm=terms.funder_rate_ppm,
                guarantee_share_ppm=terms.guarantee_share_ppm,
                method=terms.method.value,
                day_count=terms.day_count,
                disbursed_day=to_day(loan.disbursed_on),
                maturity_day=to_day(loan.installments[-1].due_date),
                original_funder=loan.funder,
                business_model=terms.business_model.value,
                channel=channel,
                upfront_fee=-loan.balance(ledger.FACILITATION_FEE_INCOME) - loan.balance(ledger.DEFERRED_FEE),
                monthly_fee=terms.monthly_fee,
                grace_days=terms.grace_days,
                late_fee_ppm=terms.late_fee_ppm,
                late_fee_cap=terms.late_fee_cap,
                write_off_dpd=terms.write_off_dpd,
                non_accrual_dpd=terms.non_accrual_dpd,
                prepayment_allowed=terms.prepayment_allowed,
                prepayment_fee_ppm=terms.prepayment_fee_ppm,
                component_order=",".join(terms.component_order),
                allocation=terms.allocation.value,
                guarantee_payout_dpd=terms.guarantee_payout_dpd,
                version=1,  # given here: a Python-side column default would take the INSERT off `direct`'s fast path
                **dict(zip(servicing_tables.PROVISION_RATE_COLUMNS, terms.provision_ppm, strict=True)),
                **self._state(loan),
            ),
        )
        direct.execute(
            self.conn, _INSERT_INSTALLMENTS, [self._installment_row(loan.loan_id, i) for i in loan.installments]
        )
        self.write_journal(loan)

    @staticmethod
    def _state(loan: LoanAccount) -> dict[str, Any]:
        current = next((i.seq for i in loan.installments if not i.booked), None)
        state: dict[str, Any] = dict(
            status=loan.status.value,
            closed_day=opt_day(loan.closed_on),
            current_seq=current,
            overdue_since=opt_day(loan.overdue_since),
            dpd=loan.days_past_due,
            bucket=loan.bucket,
            late_fees_charged=loan.late_fees_charged,
            written_off=loan.written_off,
            recovered=loan.recovered,
            guarantee_paid=loan.guarantee_paid,
            funder=loan.funder,
        )
        for account, column in BALANCE_COLUMNS.items():
            state[column] = loan.balance(account)
        return state

    @staticmethod
    def _installment_row(loan_id: int, i: InstallmentState) -> dict[str, Any]:
        return dict(
            loan_id=loan_id,
            seq=i.seq,
            period_start_day=to_day(i.period_start),
            due_day=to_day(i.due_date),
            principal=i.principal,
            interest=i.interest,
            fee=i.fee,
            principal_paid=i.principal_paid,
            interest_paid=i.interest_paid,
            fee_paid=i.fee_paid,
            booked=i.booked,
            fee_amortisation=i.fee_amortisation,
        )

    def row(self, loan_id: int) -> Any:
        row = self._locked.pop(loan_id, None) or direct.execute(self.conn, _LOAN, {"loan_id": loan_id}).first()
        if row is None:
            raise NotFound(f"no loan {loan_id}", field="loan_id")
        return row

    def lock(self, loan_id: int) -> None:
        """Queue behind any other operation on this loan (PostgreSQL; SQLite locks the whole database). The row
        read under the lock is the current one, so the operation's own read of the loan reuses it."""
        query = _LOAN_FOR_UPDATE if self.conn.dialect.name == "postgresql" else _LOAN
        self._locked[loan_id] = self.conn.execute(query, {"loan_id": loan_id}).first()
        if self._locked[loan_id] is None:
            raise NotFound(f"no loan {loan_id}", field="loan_id")

    def get(self, loan_id: int, for_update: bool = False) -> LoanAccount:
        if for_update and loan_id not in self._locked and self.conn.dialect.name == "postgresql":
            self.lock(loan_id)
        return self.load(self.row(loan_id))

    def load(self, row: Any) -> LoanAccount:
        """The loan of a `loans` row read already (by `row`, or by a tenant-scoped query), with its schedule."""
        installments = [self._installment(r) for r in direct.execute(self.conn, _INSTALLMENTS, {"loan_id": row.id})]
        self._installments[row.id] = {i.seq: self._installment_row(row.id, i) for i in installments}
        return self._to_domain(row, installments)

    @staticmethod
    def _installment(r: Any) -> InstallmentState:
        return InstallmentState(
            r.seq,
            from_day(r.period_start_day),
            from_day(r.due_day),
            r.principal,
            r.interest,
            r.fee,
            r.principal_paid,
            r.interest_paid,
            r.fee_paid,
            bool(r.booked),
            r.fee_amortisation,
        )

    @staticmethod
    def terms_of(row: Any) -> LoanTerms:
        return LoanTerms(
            product_code=row.product_code,
            currency=row.currency,
            principal=row.principal,
            tenor=row.tenor,
            rate=Decimal(row.rate_ppm) / PPM,
            method=RepaymentMethod(row.method),
            day_count=row.day_count,
            grace_days=row.grace_days,
            late_fee_ppm=row.late_fee_ppm,
            late_fee_cap=row.late_fee_cap,
            write_off_dpd=row.write_off_dpd,
            non_accrual_dpd=row.non_accrual_dpd,
            prepayment_allowed=bool(row.prepayment_allowed),
            prepayment_fee_ppm=row.prepayment_fee_ppm,
            component_order=tuple(row.component_order.split(",")),
            allocation=AllocationStrategy(row.allocation),
            monthly_fee=row.monthly_fee,
            business_model=BusinessModel(row.business_model),
            guarantee_payout_dpd=row.guarantee_payout_dpd,
            provision_ppm=tuple(getattr(row, c) for c in servicing_tables.PROVISION_RATE_COLUMNS),
            funder_rate_ppm=row.funder_rate_ppm,
            guarantee_share_ppm=row.guarantee_share_ppm,
        )

    def _to_domain(self, row: Any, installments: list[InstallmentState]) -> LoanAccount:
        loan = LoanAccount(
            loan_id=row.id,
            terms=self.terms_of(row),
            funder=row.funder,
            disbursed_on=from_day(row.disbursed_day),
            installments=installments,
            status=LoanStatus(row.status),
            balances={account: getattr(row, column) for account, column in BALANCE_COLUMNS.items()},
            days_past_due=row.dpd,
            overdue_since=opt_date(row.overdue_since),
            late_fees_charged=row.late_fees_charged,
            guarantee_paid=bool(row.guarantee_paid),
            written_off=row.written_off,
            recovered=row.recovered,
            closed_on=opt_date(row.closed_day),
        )
        return loan

    def save(self, loan: LoanAccount, transaction_id: int | None = None) -> None:
        """Write the loan's new state, its installments and the journal entries it made since loading."""
        self._locked.pop(loan.loan_id, None)
        result = direct.execute(self.conn, _SAVE_LOAN, {"loan_key": loan.loan_id, **self._state(loan)})
        if result.rowcount != 1:
            raise NotFound(f"no loan {loan.loan_id}", field="loan_id")
        self._write_installments(loan)
        self.write_journal(loan, transaction_id)
        self.write_allocations(loan, transaction_id)

    def _write_installments(self, loan: LoanAccount) -> None:
        """The loan's installments as they are now: only the changed, new and dropped ones when this transaction read
        them (`get`), all of them otherwise."""
        rows = {i.seq: self._installment_row(loan.loan_id, i) for i in loan.installments}
        before = self._installments.get(loan.loan_id)
        if before is None:
            direct.execute(self.conn, _DELETE_INSTALLMENTS, {"loan_id": loan.loan_id})
            direct.execute(self.conn, _INSERT_INSTALLMENTS, list(rows.values()))
        else:
            dropped = [{"b_loan": loan.loan_id, "b_seq": seq} for seq in before if seq not in rows]
            changed = [
                {**{k: v for k, v in row.items() if k not in ("loan_id", "seq")}, "b_loan": loan.loan_id, "b_seq": seq}
                for seq, row in rows.items()
                if seq in before and before[seq] != row
            ]
            added = [row for seq, row in rows.items() if seq not in before]
            if dropped:
                direct.execute(self.conn, _DELETE_INSTALLMENT, dropped)
            if changed:
                direct.execute(self.conn, _UPDATE_INSTALLMENT, changed)
            if added:
                direct.execute(self.conn, _INSERT_INSTALLMENTS, added)
        self._installments[loan.loan_id] = rows

    def write_allocations(self, loan: LoanAccount, transaction_id: int | None = None) -> None:
        rows = [
            dict(
                transaction_id=txn if txn is not None else transaction_id,
                loan_id=loan.loan_id,
                seq=seq,
                value_day=to_day(on),
                component=component,
                amount=amount,
            )
            for txn, on, seq, component, amount in loan.allocation_log
            if amount
        ]
        if rows:
            direct.execute(self.conn, _INSERT_ALLOCATIONS, rows)
        loan.allocation_log.clear()

    def replace_allocations(self, loan: LoanAccount) -> None:
        self.conn.execute(
            servicing_tables.allocations.delete().where(servicing_tables.allocations.c.loan_id == loan.loan_id)
        )
        self.write_allocations(loan)

    def write_journal(self, loan: LoanAccount, transaction_id: int | None = None) -> None:
        created = now_iso()
        for on, kind, postings in loan.journal:
            self.post(loan.loan_id, on, kind, postings, transaction_id, created)
        loan.journal.clear()

    def post(
        self,
        loan_id: int,
        on: date,
        kind: str,
        postings: list[ledger.Posting],
        transaction_id: int | None = None,
        created: str | None = None,
    ) -> None:
        ledger.assert_balanced(postings)
        entry_id = direct.execute(
            self.conn,
            _INSERT_ENTRY,
            dict(
                loan_id=loan_id,
                business_day=to_day(on),
                kind=kind,
                transaction_id=transaction_id,
                created_at=created or now_iso(),
            ),
        ).scalar_one()
        direct.execute(
            self.conn,
            _INSERT_LINES,
            [dict(entry_id=entry_id, loan_id=loan_id, account=p.account, amount=p.amount) for p in postings],
        )

    def referral_receivables(self, institution: str, currency: str) -> list[tuple[int, int]]:
        """The loans in `currency` whose referral fee `institution` still owes, oldest first, with what each still
        owes. On PostgreSQL the loans are locked first and then summed, so two settlements at once queue instead
        of clearing the same fee twice."""
        lines = servicing_tables.journal_lines.c
        owing = (
            select(lines.loan_id)
            .where(lines.account == ledger.REFERRAL_FEE_RECEIVABLE)
            .group_by(lines.loan_id)
            .having(func.sum(lines.amount) > 0)
        )
        loans = (
            select(servicing_tables.loans.c.id)
            .where(
                servicing_tables.loans.c.original_funder == institution,
                servicing_tables.loans.c.currency == currency,
                servicing_tables.loans.c.id.in_(owing),
            )
            .order_by(servicing_tables.loans.c.id)
        )
        if self.conn.dialect.name == "postgresql":
            ids = [r.id for r in self.conn.execute(loans.with_for_update())]
            loans = select(servicing_tables.loans.c.id).where(servicing_tables.loans.c.id.in_(ids))
        owed = self.conn.execute(
            select(lines.loan_id, func.sum(lines.amount).label("owed"))
            .where(lines.account == ledger.REFERRAL_FEE_RECEIVABLE, lines.loan_id.in_(loans))
            .group_by(lines.loan_id)
            .order_by(lines.loan_id)
        )
        return [(r.loan_id, int(r.owed)) for r in owed if r.owed > 0]

    def ledger_balances(self, loan_id: int, history_only: bool = False) -> dict[str, int]:
        """The loan's balance per account; `history_only` leaves out the entries a replay of the loan's own history
        does not make (`ledger.OUTSIDE_HISTORY`: settlements with the institution, an asset-backed deal's entries),
        whether the entry is the loan's own or a batch's over many loans."""
        lines, entries = servicing_tables.journal_lines.c, servicing_tables.journal_entries.c
        query = select(lines.account, func.sum(lines.amount)).where(lines.loan_id == loan_id)
        if history_only:
            query = query.join(servicing_tables.journal_entries, entries.id == lines.entry_id).where(
                entries.kind.not_in(ledger.OUTSIDE_HISTORY)
            )
        rows = self.conn.execute(query.group_by(lines.account))
        return {account: int(total) for account, total in rows if total}

    def add_transaction(
        self,
        loan_id: int,
        kind: str,
        value_date: date,
        amount: int,
        booked_on: date,
        mode: PrepaymentMode | None = None,
        reason: str | None = None,
    ) -> int:
        return int(
            direct.execute(
                self.conn,
                _INSERT_TRANSACTION,
                dict(
                    loan_id=loan_id,
                    kind=kind,
                    value_day=to_day(value_date),
                    amount=amount,
                    mode=mode.value if mode else None,
                    reversed=False,
                    booked_day=to_day(booked_on),
                    created_at=now_iso(),
                    reason=reason,
                ),
            ).scalar_one()
        )

    def transaction(self, transaction_id: int) -> Any:
        row = self.conn.execute(
            select(servicing_tables.transactions).where(servicing_tables.transactions.c.id == transaction_id)
        ).first()
        if row is None:
            raise NotFound(f"no transaction {transaction_id}", field="transaction_id")
        return row

    def transactions(self, loan_id: int) -> list[Any]:
        """Every transaction of a loan, reversed ones included, in the order they were taken."""
        return list(
            self.conn.execute(
                select(servicing_tables.transactions)
                .where(servicing_tables.transactions.c.loan_id == loan_id)
                .order_by(servicing_tables.transactions.c.id)
            )
        )

    def live_transactions(self, loan_id: int) -> list[Transaction]:
        rows = self.conn.execute(
            select(servicing_tables.transactions)
            .where(
                servicing_tables.transactions.c.loan_id == loan_id, servicing_tables.transactions.c.reversed.is_(False)
            )
            .order_by(servicing_tables.transactions.c.id)
        )
        return [
            Transaction(r.id, r.kind, from_day(r.value_day), r.amount, PrepaymentMode(r.mode) if r.mode else None)
            for r in rows
        ]

    def mark_reversed(self, transaction_id: int) -> None:
        self.conn.execute(
            update(servicing_tables.transactions)
            .where(servicing_tables.transactions.c.id == transaction_id)
            .values(reversed=True)
        )


class Calendar:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def row(self) -> Any:
        row = direct.execute(self.conn, _CALENDAR).first()
        if row is None:
            raise NotFound("the database has no business date; run `openice db init`", field="database")
        return row

    @property
    def business_date(self) -> date:
        return from_day(self.row().business_day)

    def require_open(self) -> date:
        row = self.row()
        if row.eod_day is not None:
            raise Conflict(
                f"end of day for {from_day(row.eod_day)} is under way; retry when it has finished "
                "(or run `openice eod` to complete it)",
                field="business_date",
            )
        return from_day(row.business_day)


class Outbox:
    """Events for later stages, written in the same transaction as the change they report."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self,
        business_date: date,
        event_type: str,
        loan_id: int | None,
        payload: dict[str, Any],
        funder: str | None = None,
    ) -> None:
        """`funder`: the loan's funder now, whom the event is the institution's of (None for no loan's event)."""
        direct.execute(
            self.conn,
            _INSERT_OUTBOX,
            dict(
                business_day=to_day(business_date),
                event_type=event_type,
                loan_id=loan_id,
                funder=funder,
                payload=json.dumps(payload, default=str),
                published=False,
            ),
        )


class SettlementRepository:
    """The journal movements settlement statements are made of, and the statements paid."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def currencies(self, institution: str) -> list[str]:
        loans = servicing_tables.loans.c
        query = select(loans.currency).where(loans.original_funder == institution).distinct().order_by(loans.currency)
        return list(self.conn.execute(query).scalars())

    def parties(self, first: date, last: date) -> list[tuple[str, str]]:
        """The institutions and currencies with a statement from `first` to `last`: a loan's original funder with any
        movement a statement reads (the selection of `movements`)."""
        loans, lines, entries = servicing_tables.loans, servicing_tables.journal_lines, servicing_tables.journal_entries
        query = (
            select(loans.c.original_funder, loans.c.currency)
            .join(lines, lines.c.loan_id == loans.c.id)
            .join(entries, entries.c.id == lines.c.entry_id)
            .where(entries.c.business_day >= to_day(first), entries.c.business_day <= to_day(last))
            .where(entries.c.kind.in_(settlement.KINDS), lines.c.account.in_(settlement.ACCOUNTS), lines.c.amount != 0)
            .distinct()
            .order_by(loans.c.original_funder, loans.c.currency)
        )
        return [(r.original_funder, r.currency) for r in self.conn.execute(query)]

    def movements(
        self, institution: str, currency: str, first: date | None, last: date | None
    ) -> tuple[dict[int, settlement.FundedLoan], list[tuple[date, settlement.Movement]]]:
        """The institution's loans in `currency` and the movements a statement reads, with each entry's business day,
        from `first` to `last` (None: without that bound); never a settlement's own entries."""
        loans, lines, entries = servicing_tables.loans, servicing_tables.journal_lines, servicing_tables.journal_entries
        funded = (loans.c.original_funder == institution, loans.c.currency == currency)
        query = (
            select(entries.c.id, entries.c.kind, entries.c.business_day, lines.c.loan_id, lines.c.account)
            .add_columns(func.sum(lines.c.amount).label("amount"))
            .join(entries, entries.c.id == lines.c.entry_id)
            .join(loans, loans.c.id == lines.c.loan_id)
            .where(*funded, entries.c.kind.in_(settlement.KINDS), lines.c.account.in_(settlement.ACCOUNTS))
            .group_by(entries.c.id, entries.c.kind, entries.c.business_day, lines.c.loan_id, lines.c.account)
        )
        if first is not None:
            query = query.where(entries.c.business_day >= to_day(first))
        if last is not None:
            query = query.where(entries.c.business_day <= to_day(last))
        moved = [
            (from_day(r.business_day), settlement.Movement(r.id, r.kind, r.loan_id, r.account, int(r.amount)))
            for r in self.conn.execute(query)
            if r.amount
        ]
        payouts = dict(
            self.conn.execute(
                select(lines.c.loan_id, func.min(entries.c.id))
                .join(entries, entries.c.id == lines.c.entry_id)
                .join(loans, loans.c.id == lines.c.loan_id)
                .where(*funded, loans.c.guarantee_paid.is_(True), entries.c.kind == "guarantee_payout")
                .where(lines.c.account == ledger.FUNDING_CASH)
                .group_by(lines.c.loan_id)
            ).all()
        )
        ids = {m.loan_id for _, m in moved}
        terms = self.conn.execute(
            select(loans.c.id, loans.c.rate_ppm, loans.c.funder_rate_ppm).where(*funded, loans.c.id.in_(ids))
        )
        return {
            r.id: settlement.FundedLoan(r.id, r.rate_ppm, r.funder_rate_ppm, payouts.get(r.id)) for r in terms
        }, moved

    def paid(self, institution: str) -> list[Any]:
        """The statements the institution settled, oldest first."""
        table = servicing_tables.settlements
        rows = self.conn.execute(
            select(table).where(table.c.institution == institution).order_by(table.c.first_day, table.c.id)
        )
        return list(rows)

    def covering(self, institution: str, currency: str, first: date, last: date) -> int | None:
        """A settlement already paid for a day from `first` to `last`, if any."""
        days = servicing_tables.settled_days.c
        return self.conn.execute(
            select(days.settlement_id)
            .where(days.institution == institution, days.currency == currency)
            .where(days.day >= to_day(first), days.day <= to_day(last))
            .limit(1)
        ).scalar_one_or_none()

    def record(self, statement: settlement.Statement, paid_on: date) -> int:
        """Store a paid statement and claim its days: a day another settlement claimed first is a Conflict."""
        settlement_id = self.conn.execute(
            insert(servicing_tables.settlements)
            .values(
                institution=statement.institution,
                currency=statement.currency,
                period=statement.period.value,
                first_day=to_day(statement.first),
                last_day=to_day(statement.last),
                net=statement.net,
                lines=json.dumps(statement.lines),
                loans=len(statement.by_loan),
                paid_day=to_day(paid_on),
                created_at=now_iso(),
            )
            .returning(servicing_tables.settlements.c.id)
        ).scalar_one()
        days = range(to_day(statement.first), to_day(statement.last) + 1)
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(servicing_tables.settled_days),
                    [
                        dict(
                            institution=statement.institution,
                            currency=statement.currency,
                            day=d,
                            settlement_id=settlement_id,
                        )
                        for d in days
                    ],
                )
        except IntegrityError:
            raise Conflict(
                f"{statement.id} of {statement.institution} was settled by another payment", field="statement_id"
            ) from None
        return int(settlement_id)


class ServicingUnit:
    """One open transaction with servicing's repositories bound to it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.products = ProductRepository(conn)
        self.loans = LoanRepository(conn)
        self.calendar = Calendar(conn)
        self.idempotency = Idempotency(conn)
        self.outbox = Outbox(conn)
        self.settlements = SettlementRepository(conn)


@contextmanager
def servicing_unit(units: UnitsOfWork, readonly: bool = False, savepoint: bool = True) -> Iterator[ServicingUnit]:
    with units.begin(readonly=readonly, savepoint=savepoint) as conn:
        yield ServicingUnit(conn)
