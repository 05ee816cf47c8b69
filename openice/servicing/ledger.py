"""The chart of accounts and balanced postings of the double-entry ledger.

Amounts are signed minor units: debit positive, credit negative. Every journal entry sums to
zero, so the trial balance (the sum of all lines) is zero at every moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Per-loan balance-sheet accounts: their balances are also kept as a snapshot on the loan.
LOAN_PRINCIPAL = "loan_principal"
INTEREST_ACCRUED = "interest_accrued"  # earned, not yet due
INTEREST_RECEIVABLE = "interest_receivable"  # due, unpaid
FEE_RECEIVABLE = "fee_receivable"
PENALTY_RECEIVABLE = "penalty_receivable"
GUARANTEE_CONTRACT_ASSET = "guarantee_contract_asset"  # guarantee fees still to come from the borrower
GUARANTEE_LIABILITY = "guarantee_liability"  # the platform's stand-ready obligation
GUARANTEE_PROVISION = "guarantee_provision"  # expected payouts on a live guarantee (contingent liability)
LOAN_LOSS_ALLOWANCE = "loan_loss_allowance"  # the provision, carried onto a loan the platform paid out on
# Non-accrual: interest, fees and late fees billed past the product's non-accrual DPD are not income until collected.
INTEREST_SUSPENSE = "interest_suspense"
FEE_SUSPENSE = "fee_suspense"
PENALTY_SUSPENSE = "penalty_suspense"

# An on-balance-sheet loan's upfront fee, received at disbursement and earned over its life (effective interest).
DEFERRED_FEE = "deferred_origination_fee"

SNAPSHOT_ACCOUNTS = (
    LOAN_PRINCIPAL,
    INTEREST_ACCRUED,
    INTEREST_RECEIVABLE,
    FEE_RECEIVABLE,
    PENALTY_RECEIVABLE,
    GUARANTEE_CONTRACT_ASSET,
    GUARANTEE_LIABILITY,
    GUARANTEE_PROVISION,
    LOAN_LOSS_ALLOWANCE,
    INTEREST_SUSPENSE,
    FEE_SUSPENSE,
    PENALTY_SUSPENSE,
    DEFERRED_FEE,
)
# Snapshot accounts that carry a credit balance (<= 0); the others carry a debit balance (>= 0).
CREDIT_SNAPSHOT_ACCOUNTS = (
    GUARANTEE_LIABILITY,
    GUARANTEE_PROVISION,
    LOAN_LOSS_ALLOWANCE,
    INTEREST_SUSPENSE,
    FEE_SUSPENSE,
    PENALTY_SUSPENSE,
    DEFERRED_FEE,
)
SUSPENSE_ACCOUNTS = (INTEREST_SUSPENSE, FEE_SUSPENSE, PENALTY_SUSPENSE)
RECEIVABLE_ACCOUNTS = (LOAN_PRINCIPAL, INTEREST_ACCRUED, INTEREST_RECEIVABLE, FEE_RECEIVABLE, PENALTY_RECEIVABLE)

# Income and expense.
INTEREST_INCOME = "interest_income"  # the funder's: the institution's, or the platform's on its own balance sheet
PLATFORM_INTEREST_INCOME = "platform_interest_income"  # earned after a guarantee payout, on the loan taken over
INTEREST_SPREAD_INCOME = "interest_spread_income"  # the platform's part of the interest: borrower's rate - funder's
FEE_INCOME = "service_fee_income"
FACILITATION_FEE_INCOME = "facilitation_fee_income"
PENALTY_INCOME = "late_fee_income"
PREPAYMENT_FEE_INCOME = "prepayment_fee_income"
GUARANTEE_RELEASE_INCOME = "guarantee_release_income"
RECOVERY_INCOME = "recovery_income"
REFERRAL_FEE_INCOME = "referral_fee_income"  # paid by a capital-light institution for each loan it funds
CREDIT_LOSS = "credit_loss_expense"  # the platform's: a loan it funded, or took over by paying its guarantee out
# The institution's own loss and recoveries on a loan it funded and bore the risk of (capital-light, technology):
# on the loan's books for reconciliation with the institution, never in the platform's P&L.
INSTITUTION_CREDIT_LOSS = "institution_credit_loss"
INSTITUTION_RECOVERY_INCOME = "institution_recovery_income"
PROVISION_EXPENSE = "provision_expense"  # charge (and release) of the provision for contingent liabilities

# Settlement: money in and out of the loan.
FUNDING_CASH = "funding_cash"  # the funder's money lent out, and paid back by a guarantee payout
PLATFORM_CASH = "platform_cash"
COLLECTIONS_CLEARING = "collections_clearing"  # borrower payments received
REFERRAL_FEE_RECEIVABLE = "referral_fee_receivable"  # owed by the institution, settled outside the loan

# A paid settlement statement's share on one loan (servicing/settlement.py).
INSTITUTION_SETTLEMENT = "institution_settlement"

# An asset-backed deal over the platform's own loans (openice/funding/, docs/funding.md).
ABS_TRUST_FUNDING = "abs_trust_funding"  # derecognised: the trust's money standing in the loan it bought
ABS_SECURED_BORROWING = "abs_secured_borrowing"  # kept on balance sheet: what the platform owes the noteholders
ABS_COLLECTION_ACCOUNT = "abs_collection_account"  # the deal's cash: the pool's collections before the waterfall
ABS_RESERVE_ACCOUNT = "abs_reserve_account"  # cash the deal holds for its notes
ABS_FEES_PAID = "abs_fees_paid"  # the deal's senior fees (servicing, trustee)
ABS_NOTE_INTEREST_PAID = "abs_note_interest_paid"  # the coupon tranches' interest
ABS_RESIDUAL_PAID = "abs_residual_paid"  # the residual tranche's income
ABS_NOTE_LOSS = "abs_note_loss"  # the notes' balance a clean-up call's price could not pay: the noteholders' loss
ABS_TRANSFER = "abs_transfer"  # entry kind: a loan sold to a deal (or pledged to it)
ABS_PERIOD = "abs_period"  # entry kind: a month's collections of the pool and the waterfall's payments
# Entries on a loan's books that its own history does not make, so a replay of the loan leaves them as they are.
OUTSIDE_HISTORY = ("referral_settlement", INSTITUTION_SETTLEMENT, ABS_TRANSFER, ABS_PERIOD)

ALL_ACCOUNTS = SNAPSHOT_ACCOUNTS + (
    INTEREST_INCOME,
    PLATFORM_INTEREST_INCOME,
    INTEREST_SPREAD_INCOME,
    FEE_INCOME,
    FACILITATION_FEE_INCOME,
    PENALTY_INCOME,
    PREPAYMENT_FEE_INCOME,
    GUARANTEE_RELEASE_INCOME,
    RECOVERY_INCOME,
    REFERRAL_FEE_INCOME,
    CREDIT_LOSS,
    INSTITUTION_CREDIT_LOSS,
    INSTITUTION_RECOVERY_INCOME,
    PROVISION_EXPENSE,
    FUNDING_CASH,
    PLATFORM_CASH,
    COLLECTIONS_CLEARING,
    REFERRAL_FEE_RECEIVABLE,
    ABS_TRUST_FUNDING,
    ABS_SECURED_BORROWING,
    ABS_COLLECTION_ACCOUNT,
    ABS_RESERVE_ACCOUNT,
    ABS_FEES_PAID,
    ABS_NOTE_INTEREST_PAID,
    ABS_RESIDUAL_PAID,
    ABS_NOTE_LOSS,
)


def sql_name(account: str) -> str:
    """An account as a SQL string literal, for statements generated from these constants rather than spelt out."""
    if account not in ALL_ACCOUNTS:
        raise ValueError(f"{account!r} is not in the chart of accounts")
    return f"'{account}'"


@dataclass(frozen=True)
class AccountChoice:
    """Which of two accounts a posting goes to, by one fact about the loan: the per-loan rules `pick` it, the
    set-based end of day gets the same choice as a SQL `CASE`, so the two cannot name different accounts."""

    when: str  # the account when the fact holds
    otherwise: str

    def pick(self, holds: bool) -> str:
        return self.when if holds else self.otherwise

    def sql(self, condition: str) -> str:
        return f"CASE WHEN {condition} THEN {sql_name(self.when)} ELSE {sql_name(self.otherwise)} END"


# Billed past the product's non-accrual DPD: held in suspense, not income, until collected.
FEE_BILLED = AccountChoice(FEE_SUSPENSE, FEE_INCOME)
PENALTY_BILLED = AccountChoice(PENALTY_SUSPENSE, PENALTY_INCOME)
# The funder's part of the interest; all of it is the platform's once it paid the guarantee out and holds the loan.
FUNDER_INTEREST = AccountChoice(PLATFORM_INTEREST_INCOME, INTEREST_INCOME)
# A write-off is the platform's loss when it holds the loan (funded it, or took it over by a payout), else the
# institution's.
WRITE_OFF_LOSS = AccountChoice(CREDIT_LOSS, INSTITUTION_CREDIT_LOSS)
# A deal's notes: a derecognised sale is funded by the trust, a deal kept on balance sheet is the platform's borrowing.
ABS_NOTES = AccountChoice(ABS_TRUST_FUNDING, ABS_SECURED_BORROWING)


@dataclass(frozen=True)
class Posting:
    account: str
    amount: int  # debit > 0, credit < 0


class UnbalancedEntry(AssertionError):
    pass


def entry(*pairs: tuple[str, str, int]) -> list[Posting]:
    """Build a balanced entry from (debit_account, credit_account, amount) pairs, dropping zeros."""
    lines: list[Posting] = []
    for debit, credit, amount in pairs:
        if amount < 0:
            raise UnbalancedEntry(f"negative amount {amount} for {debit}/{credit}")
        if amount:
            lines.append(Posting(debit, amount))
            lines.append(Posting(credit, -amount))
    return lines


def net_by_account(postings: Iterable[Posting]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for p in postings:
        totals[p.account] += p.amount
    return {k: v for k, v in totals.items() if v}


def assert_balanced(postings: Iterable[Posting]) -> None:
    total = sum(p.amount for p in postings)
    if total:
        raise UnbalancedEntry(f"entry does not balance: off by {total}")
