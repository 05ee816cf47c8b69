"""Servicing operations: the application layer between the API/CLI and the domain.

Every money-moving call takes an idempotency key. The key, the change and its events are
committed in one transaction: the same key replays the first result; the same key with a
different request is refused; concurrent duplicates apply once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from openice.errors import Conflict, Forbidden, OpeniceError, ValidationError
from openice.money import format_money
from openice.servicing import ledger, settlement
from openice.servicing.loan import (
    BusinessModel,
    LoanAccount,
    LoanStatus,
    PayoffQuote,
    Transaction,
    apply_transaction,
    is_deal_funder,
    replay,
)
from openice.servicing.products import PPM, LoanProduct, PrepaymentMode
from openice.servicing.repository import ServicingUnit, servicing_unit
from openice.storage.days import from_day
from openice.storage.uow import UnitsOfWork

Work = Callable[[ServicingUnit], dict[str, Any]]
Booked = Callable[[str, dict[str, Any]], None]
E = TypeVar("E", bound=Enum)


def _enum(kind: type[E], value: Any, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"must be one of {[v.value for v in kind]}", field=field) from None


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    text = reason.strip() if isinstance(reason, str) else ""
    if not 1 <= len(text) <= 200:
        raise ValidationError(
            "give a reason of 1-200 characters", field="reason", reason="reason.length", values={"most": 200}
        )
    return text


def last_month_end(today: date) -> date:
    """The last day whose month has been closed by end of day: a value date on or before it is in closed books."""
    return today.replace(day=1) - timedelta(days=1)


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"must be a positive whole number of minor units, got {value!r}", field=field)
    return value


class Servicing:
    def __init__(self, units: UnitsOfWork, booked: Booked | None = None) -> None:
        """`booked(operation, result)` runs inside the unit of work of each money call that books, never on an
        idempotent replay: what a caller records about the booking (the API's audit row) commits with it, once."""
        self.units = units
        self.booked = booked

    # ---- plumbing --------------------------------------------------------------------------
    def _money_call(
        self, operation: str, key: str | None, payload: dict[str, Any], work: Work, loan_id: int | None = None
    ) -> dict[str, Any]:
        # The key is claimed first, in the call's own unit (`openice.idempotency`): a concurrent duplicate waits on
        # the claim until this call commits, then replays its result. A call without a loan keeps a savepoint, since
        # its caller may go on after it fails (matching retries an origination whose loan number was taken).
        with servicing_unit(self.units, savepoint=loan_id is None) as uow:

            def book() -> dict[str, Any]:
                if loan_id is not None:
                    uow.loans.lock(loan_id)
                result = work(uow)
                if self.booked is not None:
                    self.booked(operation, result)
                return result

            return uow.idempotency.run(key, operation, payload, book)

    # ---- products ----------------------------------------------------------------------------
    def create_product(self, product: LoanProduct) -> None:
        """Products are immutable once created: a changed product is a new code, so loans keep their terms."""
        with servicing_unit(self.units) as uow:
            uow.products.add(product)

    def products(self) -> list[LoanProduct]:
        with servicing_unit(self.units, readonly=True) as uow:
            return uow.products.list()

    def business_date(self) -> date:
        with servicing_unit(self.units, readonly=True) as uow:
            return uow.calendar.business_date

    # ---- origination -------------------------------------------------------------------------
    def originate(
        self,
        *,
        product_code: str,
        principal: int,
        tenor: int,
        funder: str,
        business_model: str | BusinessModel,
        idempotency_key: str | None,
        borrower_id: str | None = None,
        rate: Decimal | None = None,
        guarantee_payout_dpd: int | None = None,
        channel: str = "direct",
        funder_rate: Decimal | None = None,
    ) -> dict[str, Any]:
        """Book and disburse a loan on today's business date under its funder and business model; `funder_rate` is
        the rate the institution earns (the borrower's rate above it is the platform's spread)."""
        principal = _positive_int(principal, "principal")
        model = _enum(BusinessModel, business_model, "business_model")
        if not funder:
            raise ValidationError("is required: an institution code or 'platform'", field="funder")
        payload = dict(
            product_code=product_code,
            principal=principal,
            tenor=tenor,
            funder=funder,
            business_model=model.value,
            borrower_id=borrower_id,
            rate=str(rate),
            guarantee_payout_dpd=guarantee_payout_dpd,
            channel=channel,
            **({"funder_rate": str(funder_rate)} if funder_rate is not None else {}),
        )

        def work(uow: ServicingUnit) -> dict[str, Any]:
            today = uow.calendar.require_open()
            product = uow.products.get(product_code)
            loan = LoanAccount.originate(
                uow.loans.next_id(),
                product,
                principal,
                tenor,
                today,
                funder,
                model,
                rate,
                guarantee_payout_dpd,
                funder_rate,
            )
            uow.loans.add(loan, borrower_id=borrower_id, channel=channel)
            uow.outbox.add(
                today,
                "loan.originated",
                loan.loan_id,
                {"principal": principal, "funder": loan.funder, "business_model": model.value},
                loan.funder,
            )
            return {"loan_id": loan.loan_id, "disbursed_on": today.isoformat(), "installments": len(loan.installments)}

        return self._money_call("originate", idempotency_key, payload, work)

    # ---- borrower money ------------------------------------------------------------------------
    def repay(
        self,
        loan_id: int,
        amount: int,
        idempotency_key: str | None,
        value_date: date | None = None,
        currency: str | None = None,
        reason: str | None = None,
        may_backdate: bool = True,
    ) -> dict[str, Any]:
        """A payment of what is due, today or (an operator's, with a reason) backdated: see `_apply`."""
        amount = _positive_int(amount, "amount")
        reason = _reason(reason)
        payload = dict(loan_id=loan_id, amount=amount, value_date=str(value_date), currency=currency, reason=reason)

        def work(uow: ServicingUnit) -> dict[str, Any]:
            return self._apply(uow, loan_id, "repayment", amount, value_date, None, currency, reason, may_backdate)

        return self._money_call("repay", idempotency_key, payload, work, loan_id)

    def prepay(
        self,
        loan_id: int,
        amount: int,
        idempotency_key: str | None,
        mode: str | PrepaymentMode = PrepaymentMode.REAMORTISE,
        currency: str | None = None,
    ) -> dict[str, Any]:
        amount = _positive_int(amount, "amount")
        prepayment_mode = _enum(PrepaymentMode, mode, "mode")
        payload = dict(loan_id=loan_id, amount=amount, mode=prepayment_mode.value, currency=currency)

        def work(uow: ServicingUnit) -> dict[str, Any]:
            return self._apply(uow, loan_id, "prepayment", amount, None, prepayment_mode, currency)

        return self._money_call("prepay", idempotency_key, payload, work, loan_id)

    def recover(self, loan_id: int, amount: int, idempotency_key: str | None) -> dict[str, Any]:
        amount = _positive_int(amount, "amount")

        def work(uow: ServicingUnit) -> dict[str, Any]:
            return self._apply(uow, loan_id, "recovery", amount, None, None)

        return self._money_call("recover", idempotency_key, dict(loan_id=loan_id, amount=amount), work, loan_id)

    def write_off(self, loan_id: int, idempotency_key: str | None, reason: str | None = None) -> dict[str, Any]:
        """Write a loan off now. One that is not past due (fraud, death, a settlement) needs a reason on record."""
        reason = _reason(reason)

        def work(uow: ServicingUnit) -> dict[str, Any]:
            return self._apply(uow, loan_id, "write_off", 0, None, None, reason=reason)

        return self._money_call("write_off", idempotency_key, dict(loan_id=loan_id, reason=reason), work, loan_id)

    def _apply(
        self,
        uow: ServicingUnit,
        loan_id: int,
        kind: str,
        amount: int,
        value_date: date | None,
        mode: PrepaymentMode | None,
        currency: str | None = None,
        reason: str | None = None,
        may_backdate: bool = True,
    ) -> dict[str, Any]:
        """Book one money movement on today's business date. A value date before today (backdating) replays the loan
        with the payment in its place, which can undo late fees and days past due: it is for a caller who
        `may_backdate`, needs a reason, and never reaches into a month already closed."""
        today = uow.calendar.require_open()
        on = value_date or today
        if on > today:
            raise ValidationError(f"{on} is after the business date {today}", field="value_date")
        if on < today:
            if not may_backdate:
                raise Forbidden(
                    f"only an operator may backdate a payment; pay with today's value date {today}", field="value_date"
                )
            if reason is None:
                raise ValidationError("a backdated payment needs a reason", field="reason")
            closed = last_month_end(today)
            if on <= closed:
                raise ValidationError(
                    f"{on} is in a closed month: the books are closed through {closed}", field="value_date"
                )
        loan = uow.loans.get(loan_id, for_update=True)
        if currency is not None and currency != loan.terms.currency:
            raise ValidationError(f"loan {loan_id} is in {loan.terms.currency}, not {currency}", field="currency")
        if on < loan.disbursed_on:
            raise ValidationError(f"{on} is before the loan was disbursed on {loan.disbursed_on}", field="value_date")
        if kind == "write_off" and reason is None and loan.days_past_due == 0:
            raise ValidationError(f"loan {loan_id} is not past due: say why it is written off", field="reason")
        txn_id = uow.loans.add_transaction(loan_id, kind, on, amount, today, mode, reason)
        if on < today:  # backdated: rebuild the loan's history with this payment in its place
            loan = self._rebuild(uow, loan_id, today, txn_id)
            allocated: dict[str, int] = {}
        else:
            allocated = apply_transaction(loan, Transaction(txn_id, kind, on, amount, mode))
            uow.loans.save(loan, txn_id)
        uow.outbox.add(
            today,
            f"loan.{kind}",
            loan_id,
            {"transaction_id": txn_id, "amount": amount, **({"reason": reason} if reason else {})},
            loan.funder,
        )
        if loan.status is LoanStatus.CLOSED:
            uow.outbox.add(today, "loan.closed", loan_id, {"closed_on": str(loan.closed_on)}, loan.funder)
        return {
            "transaction_id": txn_id,
            "loan_id": loan_id,
            "value_date": on.isoformat(),
            "allocated": allocated,
            "status": loan.status.value,
            "outstanding_principal": loan.balance(ledger.LOAN_PRINCIPAL),
        }

    # ---- institution money ----------------------------------------------------------------------
    def settle_referral_fees(
        self, institution: str, amount: int, currency: str, idempotency_key: str | None
    ) -> dict[str, Any]:
        """A capital-light institution paid referral fees it owes: the payment clears the receivables of the loans
        it funded, oldest loan first, one journal entry per loan (Dr platform_cash, Cr referral_fee_receivable).
        Paying more than is owed is refused: the platform has nothing to book the excess against."""
        amount = _positive_int(amount, "amount")
        payload = dict(institution=institution, amount=amount, currency=currency)

        def work(uow: ServicingUnit) -> dict[str, Any]:
            today = uow.calendar.require_open()
            owed = uow.loans.referral_receivables(institution, currency)
            total = sum(due for _, due in owed)
            if amount > total:
                raise ValidationError(
                    f"{institution} owes {format_money(total, currency)} of referral fees, "
                    f"less than {format_money(amount, currency)}",
                    field="amount",
                )
            left, loans = amount, 0
            for loan_id, due in owed:
                part = min(due, left)
                uow.loans.post(
                    loan_id,
                    today,
                    "referral_settlement",
                    ledger.entry((ledger.PLATFORM_CASH, ledger.REFERRAL_FEE_RECEIVABLE, part)),
                )
                left, loans = left - part, loans + 1
                if left == 0:
                    break
            return {
                "institution": institution,
                "currency": currency,
                "settled": amount,
                "loans": loans,
                "still_owed": total - amount,
                "settled_on": today.isoformat(),
            }

        return self._money_call("settle_referral_fees", idempotency_key, payload, work)

    def pay_settlement(self, institution: str, statement_id: str, idempotency_key: str | None) -> dict[str, Any]:
        """Record a settlement statement as paid: each loan's share moves out of clearing and the referral receivable
        (`settlement.settlement_postings`), and the statement's days are claimed. A day or month not closed by end of
        day yet, one with nothing to settle, or one any day of which is already settled is refused."""
        currency, period, first, last = settlement.parse_statement_id(statement_id)

        def work(uow: ServicingUnit) -> dict[str, Any]:
            today = uow.calendar.require_open()
            if last >= today:
                raise Conflict(f"{statement_id} is not closed yet: the business date is {today}", field="statement_id")
            earlier = uow.settlements.covering(institution, currency, first, last)
            if earlier is not None:
                raise Conflict(
                    f"{institution} already settled {statement_id} (settlement {earlier})", field="statement_id"
                )
            loans, moved = uow.settlements.movements(institution, currency, first, last)
            paid = settlement.statement(institution, currency, period, first, last, loans, [m for _, m in moved])
            if paid.empty:
                raise Conflict(f"{institution} has nothing to settle in {statement_id}", field="statement_id")
            for loan_id, lines in sorted(paid.by_loan.items()):
                postings = settlement.settlement_postings(lines)
                if postings:
                    uow.loans.post(loan_id, today, settlement.SETTLEMENT_KIND, postings)
            return {
                "settlement_id": uow.settlements.record(paid, today),
                "institution": institution,
                "statement": paid.id,
                "currency": currency,
                "net": paid.net,
                "lines": paid.lines,
                "loans": len(paid.by_loan),
                "paid_on": today.isoformat(),
            }

        return self._money_call(
            "pay_settlement", idempotency_key, dict(institution=institution, statement=statement_id), work
        )

    # ---- reversal and replay ------------------------------------------------------------------
    def reverse(self, transaction_id: int, idempotency_key: str | None) -> dict[str, Any]:
        """Undo a payment: the loan's later history is replayed in date order without it."""
        with servicing_unit(self.units, readonly=True) as uow:
            loan_id = uow.loans.transaction(transaction_id).loan_id

        def work(uow: ServicingUnit) -> dict[str, Any]:
            today = uow.calendar.require_open()
            txn = uow.loans.transaction(transaction_id)
            if txn.reversed:
                raise Conflict(f"transaction {transaction_id} is already reversed", field="transaction_id")
            if txn.kind == "write_off":
                raise Conflict("a write-off is not a payment; record a recovery instead", field="transaction_id")
            uow.loans.mark_reversed(transaction_id)
            loan = self._rebuild(uow, loan_id, today, transaction_id)
            uow.outbox.add(today, "transaction.reversed", loan_id, {"transaction_id": transaction_id}, loan.funder)
            return {
                "transaction_id": transaction_id,
                "loan_id": loan_id,
                "status": loan.status.value,
                "outstanding_principal": loan.balance(ledger.LOAN_PRINCIPAL),
            }

        return self._money_call("reverse", idempotency_key, dict(transaction_id=transaction_id), work, loan_id)

    def _rebuild(self, uow: ServicingUnit, loan_id: int, today: date, transaction_id: int) -> LoanAccount:
        """Replay the loan from origination and post the difference to the ledger as one adjustment."""
        row = uow.loans.row(loan_id)
        product = uow.products.get(row.product_code)
        terms = uow.loans.terms_of(row)

        def originate() -> LoanAccount:
            loan = LoanAccount.originate(
                loan_id,
                product,
                row.principal,
                row.tenor,
                from_day(row.disbursed_day),
                row.original_funder,
                terms.business_model,
                terms.rate,
                terms.guarantee_payout_dpd,
                Decimal(terms.funder_rate_ppm) / PPM,
            )
            # A loan in an asset-backed deal went to it outside its own history, and only while it was current:
            # the replay keeps it there, so what it loses or recovers stays the deal's.
            if is_deal_funder(row.funder):
                loan.funder = row.funder
            return loan

        try:
            loan = replay(originate, uow.loans.live_transactions(loan_id), today)
        except OpeniceError as error:
            raise Conflict(
                f"the loan's history no longer holds together without this change: {error}", field="transaction_id"
            ) from error
        target = ledger.net_by_account(p for _, _, postings in loan.journal for p in postings)
        current = uow.loans.ledger_balances(loan_id, history_only=True)
        adjustment = [
            ledger.Posting(account, target.get(account, 0) - current.get(account, 0))
            for account in sorted(set(target) | set(current))
            if target.get(account, 0) != current.get(account, 0)
        ]
        loan.journal.clear()
        uow.loans.replace_allocations(loan)
        uow.loans.save(loan)
        if adjustment:
            uow.loans.post(loan_id, today, "replay_adjustment", adjustment, transaction_id)
        return loan

    # ---- reads ----------------------------------------------------------------------------------
    def loan(self, loan_id: int) -> LoanAccount:
        with servicing_unit(self.units, readonly=True) as uow:
            return uow.loans.get(loan_id)

    def loan_with_transactions(self, loan_id: int) -> tuple[LoanAccount, list[Any]]:
        """The loan and every transaction taken on it (reversed ones marked), read together."""
        with servicing_unit(self.units, readonly=True) as uow:
            return uow.loans.get(loan_id), uow.loans.transactions(loan_id)

    def payoff_quote(self, loan_id: int, on: date | None = None) -> PayoffQuote:
        """What closes the loan on `on` (default: the business date). A later day is quoted as if no payment came
        in before it: the loan's days up to it are closed in memory by the per-loan rules end of day follows, so
        the installments that fall due, late fees and days past due by then are in the quote."""
        with servicing_unit(self.units, readonly=True) as uow:
            today = uow.calendar.business_date
            loan = uow.loans.get(loan_id)
        on = on or today
        if on < today:
            raise ValidationError(f"{on} is before the business date {today}; quote today or later", field="date")
        day = today
        while day < on and loan.status is LoanStatus.ACTIVE:
            loan.close_day(day)
            day += timedelta(days=1)
        if loan.status is not LoanStatus.ACTIVE:
            raise Conflict(
                f"loan {loan_id} is {loan.status.value} by {on}: there is nothing to pay off", field="loan_id"
            )
        if not loan.terms.prepayment_allowed:
            raise Conflict(f"product {loan.terms.product_code} does not allow prepayment", field="loan_id")
        return loan.payoff_quote(on)
