"""A loan account: the pure, per-loan rules of servicing (no I/O).

This is the reference implementation of every servicing rule. Online operations (repay,
prepay) run through it one loan at a time; replaying a loan's history through it is how a
reversal or a backdated payment is applied; and the set-based end of day in `eod.py` must give
exactly what `close_day` gives here, loan by loan (a test holds them together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from openice.errors import Amount, Conflict, ValidationError
from openice.money import format_money, mul_div_half_up, round_half_up
from openice.servicing import ledger
from openice.servicing.buckets import WRITTEN_OFF, delinquency_bucket
from openice.servicing.daycount import DayCount
from openice.servicing.products import (
    PPM,
    PROVISION_BUCKETS,
    AllocationStrategy,
    LoanProduct,
    PrepaymentMode,
    RepaymentMethod,
    to_ppm,
)
from openice.servicing.schedule import amortise, build_schedule, fee_amortisation


class BusinessModel(StrEnum):
    CAPITAL_LIGHT = "capital-light"  # the institution funds and bears the principal risk
    CAPITAL_HEAVY = "capital-heavy"  # the institution funds, the platform guarantees
    ON_BALANCE_SHEET = "on-balance-sheet"  # the platform (or its trust) funds
    TECHNOLOGY = "technology"  # an institution's own loan serviced on the platform


class LoanStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    WRITTEN_OFF = "written_off"


PLATFORM = "platform"
# The funder of a loan sold or pledged to an asset-backed deal: `ABS:` and the deal's name (openice/funding/).
DEAL_FUNDER_PREFIX = "ABS:"


def deal_funder(deal_name: str) -> str:
    return f"{DEAL_FUNDER_PREFIX}{deal_name}"


def is_deal_funder(funder: str) -> bool:
    return funder.startswith(DEAL_FUNDER_PREFIX)


@dataclass
class InstallmentState:
    seq: int
    period_start: date
    due_date: date
    principal: int
    interest: int
    fee: int
    principal_paid: int = 0
    interest_paid: int = 0
    fee_paid: int = 0
    booked: bool = False  # interest and fee recognised as due
    fee_amortisation: int = 0  # the part of a deferred upfront fee earned when this installment falls due

    def owed(self, component: str) -> int:
        if component == "principal":
            return self.principal - self.principal_paid
        if component == "interest":
            return self.interest - self.interest_paid if self.booked else 0
        if component == "fee":
            return self.fee - self.fee_paid if self.booked else 0
        return 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fee

    @property
    def unpaid(self) -> int:
        return (
            (self.principal - self.principal_paid) + (self.interest - self.interest_paid) + (self.fee - self.fee_paid)
        )

    def pay(self, component: str, amount: int) -> None:
        setattr(self, f"{component}_paid", getattr(self, f"{component}_paid") + amount)


@dataclass(frozen=True)
class LoanTerms:
    """What a loan keeps from its product at origination: later product edits do not touch it."""

    product_code: str
    currency: str
    principal: int
    tenor: int
    rate: Decimal
    method: RepaymentMethod
    day_count: str
    grace_days: int
    late_fee_ppm: int
    late_fee_cap: int
    write_off_dpd: int
    non_accrual_dpd: int
    prepayment_allowed: bool
    prepayment_fee_ppm: int
    component_order: tuple[str, ...]
    allocation: AllocationStrategy
    monthly_fee: int
    business_model: BusinessModel
    guarantee_payout_dpd: int | None
    provision_ppm: tuple[int, ...]  # provision rate per bucket (C, M1, M2, M3, M4+) of a guaranteed loan
    funder_rate_ppm: int  # the annual rate the funder earns; the rest of the borrower's rate is the platform's
    guarantee_share_ppm: int  # a guaranteed loan: the guarantee's share of each fee; the rest pays for servicing

    @property
    def guaranteed(self) -> bool:
        return self.business_model is BusinessModel.CAPITAL_HEAVY

    @property
    def rate_ppm(self) -> int:
        return int(self.rate * PPM)

    def guarantee_fee(self, fee: int) -> int:
        """The guarantee's part of an installment's fee, half-up; 0 on a loan without a guarantee."""
        return mul_div_half_up(fee, self.guarantee_share_ppm, PPM) if self.guaranteed else 0

    def funder_interest(self, amount: int) -> int:
        """The funder's part of an interest amount: amount x funder's rate / borrower's rate, half-up, per posting;
        the rest is the platform's spread."""
        if self.funder_rate_ppm >= self.rate_ppm:
            return amount
        return mul_div_half_up(amount, self.funder_rate_ppm, self.rate_ppm)


@dataclass(frozen=True)
class PayoffQuote:
    """What closes a loan on a day: what is due, the principal not yet due, the interest earned in the current
    period and the prepayment fee on that principal."""

    on: date
    currency: str
    due: int
    principal_not_due: int
    accrued_interest: int
    prepayment_fee: int

    @property
    def total(self) -> int:
        return self.due + self.principal_not_due + self.accrued_interest + self.prepayment_fee


@dataclass
class LoanAccount:
    loan_id: int
    terms: LoanTerms
    funder: str
    disbursed_on: date
    installments: list[InstallmentState]
    status: LoanStatus = LoanStatus.ACTIVE
    balances: dict[str, int] = field(default_factory=dict)
    days_past_due: int = 0
    overdue_since: date | None = None
    late_fees_charged: int = 0
    guarantee_paid: bool = False
    written_off: int = 0  # what the borrower owed when the loan was written off: the most recoveries can bring
    recovered: int = 0
    closed_on: date | None = None
    journal: list[tuple[date, str, list[ledger.Posting]]] = field(default_factory=list)
    # (transaction id, value date, installment seq or None, component, amount): where each payment went
    allocation_log: list[tuple[int | None, date, int | None, str, int]] = field(default_factory=list)
    current_txn: int | None = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def originate(
        cls,
        loan_id: int,
        product: LoanProduct,
        principal: int,
        tenor: int,
        on: date,
        funder: str,
        business_model: BusinessModel,
        rate: Decimal | None = None,
        guarantee_payout_dpd: int | None = None,
        funder_rate: Decimal | None = None,
    ) -> LoanAccount:
        """Disburse a new loan: the funder advances the principal, the platform takes its upfront fee.

        `funder_rate` is the annual rate the institution agreed to earn; the borrower's rate above it is the
        platform's interest spread. None (and a loan on the platform's own balance sheet): the funder earns it all."""
        if business_model is BusinessModel.CAPITAL_HEAVY:
            if guarantee_payout_dpd is None or not 1 <= guarantee_payout_dpd <= product.write_off_dpd:
                raise ValidationError(
                    f"a capital-heavy loan needs a payout DPD between 1 and {product.write_off_dpd}",
                    field="guarantee_payout_dpd",
                )
        elif guarantee_payout_dpd is not None:
            raise ValidationError("only capital-heavy loans carry a guarantee", field="guarantee_payout_dpd")
        if business_model is BusinessModel.ON_BALANCE_SHEET:
            funder = PLATFORM
        schedule = build_schedule(product, principal, tenor, on, rate)
        rate = product.nominal_rate if rate is None else rate
        rate_ppm = int(rate * PPM)
        if funder_rate is None or business_model is BusinessModel.ON_BALANCE_SHEET:
            funder_rate_ppm = rate_ppm
        else:
            funder_rate_ppm = to_ppm(funder_rate, "funder_rate")
            if funder_rate_ppm < 0:
                raise ValidationError("must not be negative", field="funder_rate")
            if funder_rate_ppm > rate_ppm:
                raise ValidationError(
                    f"the funder's {funder_rate:.2%} is above the borrower's {rate:.2%}: the "
                    "platform does not pay the difference",
                    field="funder_rate",
                )
        terms = LoanTerms(
            product_code=product.code,
            currency=product.currency,
            principal=principal,
            tenor=tenor,
            rate=rate,
            method=product.method,
            day_count=product.day_count.value,
            grace_days=product.grace_days,
            late_fee_ppm=to_ppm(product.late_fee_daily_rate, "late_fee_daily_rate"),
            late_fee_cap=round_half_up(Decimal(principal) * product.late_fee_cap_rate),
            write_off_dpd=product.write_off_dpd,
            non_accrual_dpd=product.non_accrual_dpd,
            prepayment_allowed=product.prepayment_allowed,
            prepayment_fee_ppm=to_ppm(product.prepayment_fee_rate, "prepayment_fee_rate"),
            component_order=tuple(product.component_order),
            allocation=product.allocation,
            monthly_fee=schedule.installments[0].fee if product.method is not RepaymentMethod.BULLET else 0,
            business_model=business_model,
            guarantee_payout_dpd=guarantee_payout_dpd,
            provision_ppm=tuple(to_ppm(r, "provision_rates") for r in product.provision_rates),
            funder_rate_ppm=funder_rate_ppm,
            guarantee_share_ppm=product.guarantee_share_ppm(principal, sum(i.fee for i in schedule.installments)),
        )
        # On the platform's own balance sheet the upfront fee is part of the loan's yield: received now, earned
        # over its life by the effective interest method. Elsewhere it pays for a facilitation already done.
        deferred = schedule.upfront_fee if business_model is BusinessModel.ON_BALANCE_SHEET else 0
        spread = fee_amortisation(deferred, principal, [(i.principal, i.interest) for i in schedule.installments])
        loan = cls(
            loan_id=loan_id,
            terms=terms,
            funder=funder,
            disbursed_on=on,
            installments=[
                InstallmentState(
                    i.seq, i.period_start, i.due_date, i.principal, i.interest, i.fee, fee_amortisation=part
                )
                for i, part in zip(schedule.installments, spread, strict=True)
            ],
        )
        guarantee = sum(terms.guarantee_fee(i.fee) for i in schedule.installments)
        referral = product.referral_fee(principal) if business_model is BusinessModel.CAPITAL_LIGHT else 0
        loan._post(
            on,
            "disbursement",
            ledger.entry(
                (ledger.LOAN_PRINCIPAL, ledger.FUNDING_CASH, principal),
                (ledger.PLATFORM_CASH, ledger.FACILITATION_FEE_INCOME, schedule.upfront_fee - deferred),
                (ledger.PLATFORM_CASH, ledger.DEFERRED_FEE, deferred),
                (ledger.GUARANTEE_CONTRACT_ASSET, ledger.GUARANTEE_LIABILITY, guarantee),
                (ledger.REFERRAL_FEE_RECEIVABLE, ledger.REFERRAL_FEE_INCOME, referral),
            ),
        )
        return loan

    # ---- helpers ------------------------------------------------------------------------
    def _post(self, on: date, kind: str, postings: list[ledger.Posting]) -> None:
        ledger.assert_balanced(postings)
        for p in postings:
            self.balances[p.account] = self.balances.get(p.account, 0) + p.amount
        for account in ledger.SNAPSHOT_ACCOUNTS:
            value = self.balances.get(account, 0)
            if value > 0 if account in ledger.CREDIT_SNAPSHOT_ACCOUNTS else value < 0:
                raise AssertionError(f"loan {self.loan_id}: {account} went the wrong side ({value}) on {kind}")
        if postings:
            self.journal.append((on, kind, postings))

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    @property
    def guarantee_active(self) -> bool:
        return self.terms.guaranteed and not self.guarantee_paid

    @property
    def bucket(self) -> str:
        if self.status is LoanStatus.WRITTEN_OFF:
            return WRITTEN_OFF
        return delinquency_bucket(self.days_past_due, self.terms.write_off_dpd)

    def _require_active(self, field_name: str = "loan_id") -> None:
        if self.status is not LoanStatus.ACTIVE:
            raise Conflict(
                f"loan {self.loan_id} is {self.status.value}; it takes no more payments",
                field=field_name,
                reason="loan.not_active",
            )

    @property
    def platform_bears_loss(self) -> bool:
        """The platform bears a loan's credit loss when it funds it, or holds it after paying its guarantee out; an
        institution that funded a capital-light or technology loan bears its own."""
        return self.funder == PLATFORM

    @property
    def non_accrual(self) -> bool:
        """Past the product's non-accrual DPD, what is billed is not income until it is collected."""
        return self.days_past_due > self.terms.non_accrual_dpd

    def _interest_income(self, debit: str, amount: int) -> list[tuple[str, str, int]]:
        """Interest recognised: the funder's part and the platform's spread, or all the platform's once it has paid
        the guarantee out and holds the loan."""
        funder = amount if self.guarantee_paid else self.terms.funder_interest(amount)
        return [
            (debit, ledger.FUNDER_INTEREST.pick(self.guarantee_paid), funder),
            (debit, ledger.INTEREST_SPREAD_INCOME, amount - funder),
        ]

    def _interest_billed(self, debit: str, amount: int) -> list[tuple[str, str, int]]:
        """Interest earned by the calendar: income, or held in suspense while the loan is in non-accrual."""
        return [(debit, ledger.INTEREST_SUSPENSE, amount)] if self.non_accrual else self._interest_income(debit, amount)

    def total_due(self) -> int:
        """What the borrower owes today: booked installments and late fees."""
        return self.balance(ledger.PENALTY_RECEIVABLE) + sum(
            i.owed("principal") + i.owed("interest") + i.owed("fee") for i in self.installments if i.booked
        )

    def accrued_interest(self, on: date) -> int:
        """Interest earned in the current period up to `on`, spread evenly over the period's days."""
        current = self._current_installment()
        if current is None or on <= current.period_start:
            return 0
        period = (current.due_date - current.period_start).days
        elapsed = min((on - current.period_start).days, period)
        # Never below what is already recognised (a partial prepayment can lower the period's interest).
        return max(mul_div_half_up(current.interest, elapsed, period), self.balance(ledger.INTEREST_ACCRUED))

    def _current_installment(self) -> InstallmentState | None:
        return next((i for i in self.installments if not i.booked), None)

    def payoff_amount(self, on: date) -> int:
        """Everything needed to close the loan today, prepayment fee included."""
        return self.payoff_quote(on).total

    def payoff_quote(self, on: date) -> PayoffQuote:
        """The payoff amount on `on` (the business date) and what it is made of."""
        future_principal = sum(i.principal - i.principal_paid for i in self.installments if not i.booked)
        fee = mul_div_half_up(future_principal, self.terms.prepayment_fee_ppm, PPM)
        return PayoffQuote(on, self.terms.currency, self.total_due(), future_principal, self.accrued_interest(on), fee)

    # ---- end of day (reference implementation of eod.py) ---------------------------------
    def close_day(self, day: date) -> None:
        """Close business day `day`: the business date becomes `day + 1`."""
        if self.status is not LoanStatus.ACTIVE:
            return
        nxt = day + timedelta(days=1)
        self._book_due(nxt)
        if nxt.day == 1:
            self._accrue_to(nxt, day)
        self._mark_overdue(day, nxt)
        self._charge_late_fee(day)
        if self.guarantee_active and self.days_past_due >= (self.terms.guarantee_payout_dpd or 0):
            self._guarantee_payout(day)
        if self.days_past_due > self.terms.write_off_dpd:
            self._write_off(day)
        if nxt.day == 1 and self.status is LoanStatus.ACTIVE and self.guarantee_active:
            self._true_up_provision(day)

    def _book_due(self, due: date) -> None:
        """Installments falling due on the new business date become receivable."""
        for inst in self.installments:
            if inst.due_date == due and not inst.booked:
                accrued = self.balance(ledger.INTEREST_ACCRUED)
                guarantee = self.terms.guarantee_fee(inst.fee) if self.guarantee_active else 0
                postings = ledger.entry(
                    (ledger.INTEREST_RECEIVABLE, ledger.INTEREST_ACCRUED, accrued),
                    *self._interest_billed(ledger.INTEREST_RECEIVABLE, inst.interest - accrued),
                    # The guarantee's part of the fee was billed in advance (the contract asset) and is earned now as
                    # the platform is released from that month's risk; the rest pays for servicing.
                    (ledger.FEE_RECEIVABLE, ledger.GUARANTEE_CONTRACT_ASSET, guarantee),
                    (ledger.GUARANTEE_LIABILITY, ledger.GUARANTEE_RELEASE_INCOME, guarantee),
                    (ledger.FEE_RECEIVABLE, ledger.FEE_BILLED.pick(self.non_accrual), inst.fee - guarantee),
                    *self._fee_earned(inst.fee_amortisation),
                )
                inst.booked = True
                self._post(due - timedelta(days=1), "installment_due", postings)

    @staticmethod
    def _fee_earned(amount: int) -> list[tuple[str, str, int]]:
        """A deferred upfront fee earned (a period of the effective interest method can also give some back)."""
        if amount >= 0:
            return [(ledger.DEFERRED_FEE, ledger.FACILITATION_FEE_INCOME, amount)]
        return [(ledger.FACILITATION_FEE_INCOME, ledger.DEFERRED_FEE, -amount)]

    def _accrue_to(self, nxt: date, day: date) -> None:
        """Month-end: recognise the interest earned so far in the current period."""
        increment = self.accrued_interest(nxt) - self.balance(ledger.INTEREST_ACCRUED)
        if increment > 0:
            self._post(day, "accrual", ledger.entry(*self._interest_billed(ledger.INTEREST_ACCRUED, increment)))

    def _mark_overdue(self, day: date, nxt: date) -> None:
        overdue = [i.due_date for i in self.installments if i.booked and i.due_date <= day and i.unpaid > 0]
        self.overdue_since = min(overdue) if overdue else None
        self.days_past_due = (nxt - self.overdue_since).days if self.overdue_since else 0

    def overdue_principal(self, day: date) -> int:
        return sum(i.principal - i.principal_paid for i in self.installments if i.booked and i.due_date <= day)

    def _charge_late_fee(self, day: date) -> None:
        if self.days_past_due <= self.terms.grace_days or not self.terms.late_fee_ppm:
            return
        fee = mul_div_half_up(self.overdue_principal(day), self.terms.late_fee_ppm, PPM)
        fee = min(fee, self.terms.late_fee_cap - self.late_fees_charged)
        if fee > 0:
            self.late_fees_charged += fee
            income = ledger.PENALTY_BILLED.pick(self.non_accrual)
            self._post(day, "late_fee", ledger.entry((ledger.PENALTY_RECEIVABLE, income, fee)))

    def guaranteed_amount(self) -> int:
        """What a payout would pay the institution today: the outstanding principal and the interest due."""
        return self.balance(ledger.LOAN_PRINCIPAL) + self.balance(ledger.INTEREST_RECEIVABLE)

    def provision_target(self) -> int:
        """Month-end provision of a live guarantee: the bucket's rate x the guaranteed amount, half-up."""
        rate = self.terms.provision_ppm[PROVISION_BUCKETS.index(self.bucket)]
        return mul_div_half_up(self.guaranteed_amount(), rate, PPM)

    def _true_up_provision(self, day: date) -> None:
        """Charge (or release) the difference between the target and the provision already held."""
        delta = self.provision_target() + self.balance(ledger.GUARANTEE_PROVISION)
        self._post(
            day,
            "provision",
            ledger.entry(
                (ledger.PROVISION_EXPENSE, ledger.GUARANTEE_PROVISION, max(delta, 0)),
                (ledger.GUARANTEE_PROVISION, ledger.PROVISION_EXPENSE, max(-delta, 0)),
            ),
        )

    def _guarantee_payout(self, day: date) -> None:
        """The platform pays the institution principal and due interest, and takes over the loan.

        The payout consumes the provision: it becomes the allowance against the loan the platform now holds."""
        payout = self.guaranteed_amount()
        remaining = self.balance(ledger.GUARANTEE_CONTRACT_ASSET)
        self._post(
            day,
            "guarantee_payout",
            ledger.entry(
                (ledger.FUNDING_CASH, ledger.PLATFORM_CASH, payout),
                (ledger.GUARANTEE_LIABILITY, ledger.GUARANTEE_CONTRACT_ASSET, remaining),
                (ledger.GUARANTEE_PROVISION, ledger.LOAN_LOSS_ALLOWANCE, -self.balance(ledger.GUARANTEE_PROVISION)),
            ),
        )
        self.guarantee_paid = True
        self.funder = PLATFORM

    def _write_off(self, day: date) -> None:
        """Write off everything the borrower owes; the allowance (the provision carried over by a guarantee
        payout) absorbs its part of the loss, and what was held in suspense is no loss at all. A guaranteed loan
        always reaches this paid out, so no provision is left to release."""
        written_off = sum(self.balance(account) for account in ledger.RECEIVABLE_ACCOUNTS)
        loss = ledger.WRITE_OFF_LOSS.pick(self.platform_bears_loss)
        pairs = [(loss, account, self.balance(account)) for account in ledger.RECEIVABLE_ACCOUNTS]
        pairs.append(
            (ledger.GUARANTEE_LIABILITY, ledger.GUARANTEE_CONTRACT_ASSET, self.balance(ledger.GUARANTEE_CONTRACT_ASSET))
        )
        pairs.append((ledger.LOAN_LOSS_ALLOWANCE, loss, -self.balance(ledger.LOAN_LOSS_ALLOWANCE)))
        # What was held in suspense was never income: it leaves with its receivable, not as a credit loss.
        pairs += [(account, loss, -self.balance(account)) for account in ledger.SUSPENSE_ACCOUNTS]
        # The fee not yet earned was never income either: the loss is on the carrying amount, principal less it.
        pairs.append((ledger.DEFERRED_FEE, loss, -self.balance(ledger.DEFERRED_FEE)))
        self._post(day, "write_off", ledger.entry(*pairs))
        self.status = LoanStatus.WRITTEN_OFF
        self.closed_on = day
        self.written_off = written_off

    # ---- online operations -----------------------------------------------------------------
    def repay(self, amount: int, on: date) -> dict[str, int]:
        """Apply a payment to what is due, in the product's allocation order."""
        self._require_active()
        self._check_amount(amount, on)
        due = self.total_due()
        if amount > due:
            cur = self.terms.currency
            raise ValidationError(
                f"{format_money(amount, cur)} is more than the {format_money(due, cur)} due today; "
                "pay the difference as a prepayment",
                field="amount",
                reason="repay.above_due",
                values={"amount": Amount(amount, cur), "due": Amount(due, cur)},
            )
        allocated = self._allocate(amount, on)
        self._post(on, "repayment", self._payment_postings(allocated))
        self._recognise_collected(on)
        self._after_payment(on)
        return allocated

    def prepay(self, amount: int, on: date, mode: PrepaymentMode = PrepaymentMode.REAMORTISE) -> dict[str, int]:
        """Pay what is due, then prepay principal; paying the payoff amount closes the loan."""
        self._require_active()
        self._check_amount(amount, on)
        if not self.terms.prepayment_allowed:
            raise Conflict(
                f"product {self.terms.product_code} does not allow prepayment",
                field="amount",
                reason="prepay.not_allowed",
            )
        payoff = self.payoff_amount(on)
        if amount > payoff:
            cur = self.terms.currency
            raise ValidationError(
                f"{format_money(amount, cur)} is more than the payoff amount {format_money(payoff, cur)} on {on}",
                field="amount",
                reason="prepay.above_payoff",
                values={"amount": Amount(amount, cur), "payoff": Amount(payoff, cur), "day": on},
            )
        due = self.total_due()
        allocated = self._allocate(min(amount, due), on)
        rest = amount - min(amount, due)
        postings = self._payment_postings(allocated)
        if amount == payoff and self._future():
            postings += self._close_by_prepayment(on, allocated)
        elif rest:
            postings += self._partial_prepayment(on, rest, mode, allocated)
        self._post(on, "prepayment", postings)
        self._recognise_collected(on)
        self._after_payment(on)
        return allocated

    def _check_amount(self, amount: int, on: date) -> None:
        if not isinstance(amount, int) or amount <= 0:
            raise ValidationError("must be a positive amount", field="amount", reason="amount.not_positive")
        if on < self.disbursed_on:
            raise ValidationError(f"{on} is before the loan was disbursed on {self.disbursed_on}", field="value_date")

    def _log(self, on: date, seq: int | None, component: str, amount: int) -> None:
        self.allocation_log.append((self.current_txn, on, seq, component, amount))

    def _allocate(self, amount: int, on: date) -> dict[str, int]:
        """Spread `amount` over due items; returns the total per component."""
        order = self.terms.component_order
        booked = sorted((i for i in self.installments if i.booked and i.unpaid), key=lambda i: i.due_date)
        paid_by_component = dict.fromkeys(order, 0)
        left = amount

        def take(component: str, inst: InstallmentState | None) -> None:
            nonlocal left
            if component == "penalty":
                owed = self.balance(ledger.PENALTY_RECEIVABLE) - paid_by_component["penalty"]
            else:
                owed = inst.owed(component) if inst else 0
            part = min(owed, left)
            if part <= 0:
                return
            if inst is not None and component != "penalty":
                inst.pay(component, part)
            self._log(on, inst.seq if inst else None, component, part)
            paid_by_component[component] += part
            left -= part

        targets: list[InstallmentState | None] = [*booked] or [None]  # no booked installment: only penalty is owed
        if self.terms.allocation is AllocationStrategy.BY_COMPONENT:
            for component in order:
                for inst in targets:
                    take(component, inst)
        else:
            for inst in targets:
                for component in order:
                    take(component, inst)
        return paid_by_component

    def _payment_postings(self, allocated: dict[str, int]) -> list[ledger.Posting]:
        return ledger.entry(
            (ledger.COLLECTIONS_CLEARING, ledger.PENALTY_RECEIVABLE, allocated.get("penalty", 0)),
            (ledger.COLLECTIONS_CLEARING, ledger.FEE_RECEIVABLE, allocated.get("fee", 0)),
            (ledger.COLLECTIONS_CLEARING, ledger.INTEREST_RECEIVABLE, allocated.get("interest", 0)),
            (ledger.COLLECTIONS_CLEARING, ledger.LOAN_PRINCIPAL, allocated.get("principal", 0)),
        )

    def _future(self) -> list[InstallmentState]:
        return [i for i in self.installments if not i.booked]

    def _close_by_prepayment(self, on: date, allocated: dict[str, int]) -> list[ledger.Posting]:
        """Collapse what is left of the schedule into one paid installment dated today."""
        future = self._future()
        principal = sum(i.principal - i.principal_paid for i in future)
        fee = mul_div_half_up(principal, self.terms.prepayment_fee_ppm, PPM)
        accrued = self.accrued_interest(on)
        booked_accrual = self.balance(ledger.INTEREST_ACCRUED)
        unearned_guarantee = self.balance(ledger.GUARANTEE_CONTRACT_ASSET) if self.guarantee_active else 0
        last = future[0]
        last.principal, last.principal_paid = principal + last.principal_paid, principal + last.principal_paid
        last.interest = last.interest_paid = accrued
        last.fee = last.fee_paid = 0
        last.due_date, last.booked, last.fee_amortisation = on, True, 0
        self.installments = [i for i in self.installments if i.booked]
        allocated["principal"] = allocated.get("principal", 0) + principal
        allocated["interest"] = allocated.get("interest", 0) + accrued
        allocated["prepayment_fee"] = fee
        self._log(on, last.seq, "principal_prepaid", principal)
        self._log(on, last.seq, "interest", accrued)
        self._log(on, None, "prepayment_fee", fee)
        return ledger.entry(
            (ledger.COLLECTIONS_CLEARING, ledger.LOAN_PRINCIPAL, principal),
            (ledger.COLLECTIONS_CLEARING, ledger.INTEREST_ACCRUED, booked_accrual),
            *self._interest_income(ledger.COLLECTIONS_CLEARING, accrued - booked_accrual),
            (ledger.COLLECTIONS_CLEARING, ledger.PREPAYMENT_FEE_INCOME, fee),
            # The guarantee ends with the loan: fees that will never be billed leave both sides.
            (ledger.GUARANTEE_LIABILITY, ledger.GUARANTEE_CONTRACT_ASSET, unearned_guarantee),
            # So does the loan's yield: an upfront fee not yet earned is earned at payoff.
            (ledger.DEFERRED_FEE, ledger.FACILITATION_FEE_INCOME, -self.balance(ledger.DEFERRED_FEE)),
        )

    def _partial_prepayment(
        self, on: date, amount: int, mode: PrepaymentMode, allocated: dict[str, int]
    ) -> list[ledger.Posting]:
        """Lower the remaining principal and rebuild the schedule from `on`.

        Interest already earned in the current period stays on its installment; the rest of the
        period earns interest on the new balance."""
        fee = mul_div_half_up(amount, self.terms.prepayment_fee_ppm, PPM + self.terms.prepayment_fee_ppm)
        principal = amount - fee
        future = self._future()
        outstanding = sum(i.principal - i.principal_paid for i in future)
        if principal >= outstanding:
            raise ValidationError(
                "a partial prepayment must leave principal outstanding; pay the payoff amount",
                field="amount",
                reason="prepay.pays_off",
            )
        current = future[0]
        earned = self.accrued_interest(on)
        new_balance = outstanding - principal
        dues = [i.due_date for i in future]
        method = self.terms.method
        day_count = DayCount(self.terms.day_count)
        payment: int | None = None
        if mode is PrepaymentMode.SHORTEN and method is RepaymentMethod.EQUAL_INSTALLMENT:
            payment = current.principal + current.interest
        elif mode is PrepaymentMode.SHORTEN and method is RepaymentMethod.EQUAL_PRINCIPAL:
            per = max(current.principal - current.principal_paid, 1)
            dues = dues[: max(1, -(-new_balance // per))]
        fees = {i.due_date: i.fee for i in future}
        rebuilt = amortise(
            new_balance,
            self.terms.rate,
            day_count,
            method,
            on,
            dues,
            0,
            first_seq=current.seq,
            payment=payment,
            broken_first_period=True,
        )
        new_future = [
            InstallmentState(r.seq, r.period_start, r.due_date, r.principal, r.interest, fees[r.due_date])
            for r in rebuilt
        ]
        first = new_future[0]
        first.period_start = current.period_start
        first.interest += earned
        # What is left of a deferred upfront fee is spread again, by the same method, over the new schedule.
        for inst, part in zip(
            new_future,
            fee_amortisation(
                -self.balance(ledger.DEFERRED_FEE), new_balance, [(i.principal, i.interest) for i in new_future]
            ),
            strict=True,
        ):
            inst.fee_amortisation = part
        dropped_guarantee = sum(self.terms.guarantee_fee(fee) for fee in fees.values()) - sum(
            self.terms.guarantee_fee(i.fee) for i in new_future
        )
        self.installments = [i for i in self.installments if i.booked] + new_future
        allocated["principal"] = allocated.get("principal", 0) + principal
        allocated["prepayment_fee"] = fee
        self._log(on, None, "principal_prepaid", principal)
        self._log(on, None, "prepayment_fee", fee)
        postings = ledger.entry(
            (ledger.COLLECTIONS_CLEARING, ledger.LOAN_PRINCIPAL, principal),
            (ledger.COLLECTIONS_CLEARING, ledger.PREPAYMENT_FEE_INCOME, fee),
        )
        if self.guarantee_active and dropped_guarantee:
            postings += ledger.entry((ledger.GUARANTEE_LIABILITY, ledger.GUARANTEE_CONTRACT_ASSET, dropped_guarantee))
        return postings

    def _recognise_collected(self, on: date) -> None:
        """What was held in suspense becomes income once collected. A payment settles the oldest dues first, which
        were income already; so suspense is recognised only as far as it exceeds what is still receivable."""
        held = [
            (
                ledger.INTEREST_SUSPENSE,
                self.balance(ledger.INTEREST_ACCRUED) + self.balance(ledger.INTEREST_RECEIVABLE),
            ),
            (ledger.FEE_SUSPENSE, self.balance(ledger.FEE_RECEIVABLE)),
            (ledger.PENALTY_SUSPENSE, self.balance(ledger.PENALTY_RECEIVABLE)),
        ]
        pairs: list[tuple[str, str, int]] = []
        for account, receivable in held:
            collected = -self.balance(account) - receivable
            if collected <= 0:
                continue
            if account == ledger.INTEREST_SUSPENSE:
                pairs += self._interest_income(account, collected)
            else:
                pairs.append(
                    (account, ledger.FEE_INCOME if account == ledger.FEE_SUSPENSE else ledger.PENALTY_INCOME, collected)
                )
        if pairs:
            self._post(on, "suspense_collected", ledger.entry(*pairs))

    def _after_payment(self, on: date) -> None:
        overdue = [i.due_date for i in self.installments if i.booked and i.due_date < on and i.unpaid > 0]
        self.overdue_since = min(overdue) if overdue else None
        self.days_past_due = (on - self.overdue_since).days if self.overdue_since else 0
        if all(i.unpaid == 0 for i in self.installments) and self.balance(ledger.PENALTY_RECEIVABLE) == 0:
            self.status = LoanStatus.CLOSED
            self.closed_on = on
            # Nothing is left to guarantee or to lose: the provision and the allowance are released.
            self._post(
                on,
                "provision",
                ledger.entry(
                    (ledger.GUARANTEE_PROVISION, ledger.PROVISION_EXPENSE, -self.balance(ledger.GUARANTEE_PROVISION)),
                    (ledger.LOAN_LOSS_ALLOWANCE, ledger.PROVISION_EXPENSE, -self.balance(ledger.LOAN_LOSS_ALLOWANCE)),
                ),
            )

    def recover(self, amount: int, on: date) -> None:
        """Money collected on a written-off loan: never more than is still written off on it."""
        if self.status is not LoanStatus.WRITTEN_OFF:
            raise Conflict(
                f"loan {self.loan_id} is {self.status.value}; recoveries apply to written-off loans", field="loan_id"
            )
        self._check_amount(amount, on)
        left = self.written_off - self.recovered
        if amount > left:
            raise ValidationError(
                f"{format_money(amount, self.terms.currency)} is more than the "
                f"{format_money(left, self.terms.currency)} still written off on loan {self.loan_id}",
                field="amount",
            )
        self.recovered += amount
        self._log(on, None, "recovery", amount)
        income = ledger.RECOVERY_INCOME if self.platform_bears_loss else ledger.INSTITUTION_RECOVERY_INCOME
        self._post(on, "recovery", ledger.entry((ledger.COLLECTIONS_CLEARING, income, amount)))

    def write_off_now(self, on: date) -> None:
        """A manual write-off before the automatic threshold (fraud, deceased, settlement). A guaranteed loan is paid
        out first, as at the payout DPD: the institution is made whole and the platform bears the loss."""
        self._require_active()
        if self.guarantee_active:
            self._guarantee_payout(on)
        self._write_off(on)


@dataclass(frozen=True)
class Transaction:
    """A borrower money movement kept for replay."""

    txn_id: int
    kind: str  # repayment | prepayment | recovery | write_off
    value_date: date
    amount: int
    mode: PrepaymentMode | None = None


def replay(
    originate: Callable[[], LoanAccount],
    transactions: list[Transaction],
    business_date: date,
    on_close: Callable[[LoanAccount, date], None] | None = None,
) -> LoanAccount:
    """Rebuild a loan from origination and its live transactions, closing each day in between.

    Transactions on the same date keep the order they were taken in. `on_close(loan, day)` sees the loan as each
    day closes: what end of day's later steps (collections) read of it."""
    loan = originate()
    ordered = sorted(transactions, key=lambda t: (t.value_date, t.txn_id))
    day = loan.disbursed_on
    k = 0
    while day <= business_date:
        while k < len(ordered) and ordered[k].value_date == day:
            apply_transaction(loan, ordered[k])
            k += 1
        if day < business_date:
            loan.close_day(day)
            if on_close:
                on_close(loan, day)
        day += timedelta(days=1)
    return loan


def apply_transaction(loan: LoanAccount, txn: Transaction) -> dict[str, int]:
    """Apply one borrower money movement; returns where a payment went, by component."""
    loan.current_txn = txn.txn_id
    if txn.kind == "repayment":
        return loan.repay(txn.amount, txn.value_date)
    if txn.kind == "prepayment":
        return loan.prepay(txn.amount, txn.value_date, txn.mode or PrepaymentMode.REAMORTISE)
    if txn.kind == "recovery":
        loan.recover(txn.amount, txn.value_date)
    elif txn.kind == "write_off":
        loan.write_off_now(txn.value_date)
    else:
        raise ValidationError(f"unknown transaction kind {txn.kind!r}", field="kind")
    return {}


__all__ = [
    "BusinessModel",
    "LoanAccount",
    "LoanStatus",
    "LoanTerms",
    "InstallmentState",
    "PayoffQuote",
    "Transaction",
    "replay",
    "apply_transaction",
    "PLATFORM",
]
