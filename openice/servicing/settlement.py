"""Settlement between the platform and a funding institution: the pure rules (no I/O).

The platform collects every borrower payment into `collections_clearing`. Part of it is the institution's (the
principal and its share of the interest on a loan it still funds), part is the platform's (fees, its interest spread,
late and prepayment fees), and the institution owes the platform referral fees. A statement reads the journal lines
of the institution's loans for a day or a month and says, line by line, what each side owes; paying it posts, per
loan, a balanced entry that moves the institution's share out of clearing to the funder's cash, sweeps the
platform's share to its own cash and nets the referral fees. Every line is a movement on ledger accounts, so the
statement adds up to the ledger to the cent (`reconcile`).

The rule of each line is written beside it in `LINES`; docs/settlement.md says the same for readers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from openice.errors import ValidationError
from openice.money import mul_div_half_up
from openice.servicing import ledger

# The entry a paid settlement posts on each loan: outside the loan's own history, so a replay leaves it as it is.
SETTLEMENT_KIND = ledger.INSTITUTION_SETTLEMENT
# Entries that move cash between a borrower and the platform: every line of theirs a statement reads is a component
# of the payment, so their components add up to the cash in clearing.
COLLECTION_KINDS = ("repayment", "prepayment", "recovery")
# A reversal or a backdated payment posts one net adjustment of every account it changes (the loan is replayed), so
# the cash it moves is read whole, not split into components.
ADJUSTMENT_KIND = "replay_adjustment"
KINDS = (*COLLECTION_KINDS, ADJUSTMENT_KIND, "disbursement", "guarantee_payout", "referral_settlement")
READY_EVENT = "settlement.statement_ready"  # the outbox event end of day writes when a statement's last day closes

INTEREST_ACCOUNTS = (
    ledger.INTEREST_RECEIVABLE,
    ledger.INTEREST_ACCRUED,
    ledger.INTEREST_INCOME,
    ledger.INTEREST_SPREAD_INCOME,
    ledger.PLATFORM_INTEREST_INCOME,
)
# What each part of a borrower's payment credits: the component is minus the account's movement in the entry.
COMPONENT_ACCOUNTS: dict[str, tuple[str, ...]] = {
    "principal": (ledger.LOAN_PRINCIPAL,),
    "interest": INTEREST_ACCOUNTS,
    "fee": (ledger.FEE_RECEIVABLE,),
    "late_fee": (ledger.PENALTY_RECEIVABLE,),
    "prepayment_fee": (ledger.PREPAYMENT_FEE_INCOME,),
    "recovery": (ledger.INSTITUTION_RECOVERY_INCOME, ledger.RECOVERY_INCOME),
}
ACCOUNTS = (
    ledger.COLLECTIONS_CLEARING,
    ledger.FUNDING_CASH,
    ledger.REFERRAL_FEE_RECEIVABLE,
    *(account for accounts in COMPONENT_ACCOUNTS.values() for account in accounts),
)


class Side(StrEnum):
    TO_INSTITUTION = "to_institution"  # the platform owes it: paid to the institution
    KEPT = "kept"  # collected on the institution's loans and kept by the platform: swept to its cash
    BY_INSTITUTION = "by_institution"  # the institution owes it: netted from what it is paid
    MEMO = "memo"  # settled when it happened (funding cash moved then); shown so the statement meets the ledger


@dataclass(frozen=True)
class Line:
    name: str
    side: Side
    rule: str


LINES = (
    Line("principal_collected", Side.TO_INSTITUTION, "principal the borrowers paid while the institution funds"),
    Line(
        "interest_collected",
        Side.TO_INSTITUTION,
        "the institution's share of the interest paid: each payment's interest x its rate / the borrower's rate, "
        "half-up per payment, as the ledger splits interest",
    ),
    Line("recoveries_collected", Side.TO_INSTITUTION, "collected on loans it wrote off and bore the loss of"),
    Line(
        "collection_adjustments",
        Side.TO_INSTITUTION,
        "cash a reversal or backdated payment added to (or took from) clearing, whole",
    ),
    Line("interest_spread_kept", Side.KEPT, "the rest of the interest paid: the platform's spread"),
    Line("fees_kept", Side.KEPT, "service and guarantee fees paid"),
    Line("late_fees_kept", Side.KEPT, "late fees paid"),
    Line("prepayment_fees_kept", Side.KEPT, "prepayment fees paid"),
    Line(
        "referral_fees",
        Side.BY_INSTITUTION,
        "referral fees billed on loans disbursed, less what the institution paid of them separately",
    ),
    Line("disbursements_funded", Side.MEMO, "principal the institution advanced to borrowers"),
    Line("guarantee_payouts", Side.MEMO, "principal and interest the platform paid out under its guarantee"),
    Line(
        "collected_after_payout",
        Side.MEMO,
        "collected on loans the platform took over by a payout: the platform's, not settled with the institution",
    ),
)
LINE_NAMES = tuple(line.name for line in LINES)
SIDES = {line.name: line.side for line in LINES}


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


def period_bounds(period: Period, on: date) -> tuple[date, date]:
    """The first and last day of the day or month holding `on`."""
    if period is Period.DAY:
        return on, on
    first = on.replace(day=1)
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first, date.fromordinal(following.toordinal() - 1)


def statement_id(currency: str, period: Period, first: date) -> str:
    """A statement's name: its currency and its day (`CNY-2026-01-15`) or month (`CNY-2026-01`)."""
    return f"{currency}-{first.isoformat() if period is Period.DAY else first.isoformat()[:7]}"


def parse_statement_id(text: str) -> tuple[str, Period, date, date]:
    """The currency, period and days a statement name stands for; a clear error naming `id` otherwise."""
    currency, _, when = text.partition("-")
    try:
        if len(currency) == 3 and currency.isalpha() and currency.isupper():
            if len(when) == 7:
                return (currency, Period.MONTH, *period_bounds(Period.MONTH, date.fromisoformat(when + "-01")))
            if len(when) == 10:
                return (currency, Period.DAY, *period_bounds(Period.DAY, date.fromisoformat(when)))
    except ValueError:
        pass
    raise ValidationError(
        f"{text!r} is not a statement: give CURRENCY-YYYY-MM-DD for a day or CURRENCY-YYYY-MM for a month",
        field="statement_id",
    )


@dataclass(frozen=True)
class Movement:
    """One loan's net movement on one account in one journal entry (debit positive)."""

    entry_id: int
    kind: str
    loan_id: int
    account: str
    amount: int


@dataclass(frozen=True)
class FundedLoan:
    """What a statement needs of a loan: how its interest splits, and the entry after which the platform holds it
    (its guarantee payout; None while the institution funds it)."""

    loan_id: int
    rate_ppm: int
    funder_rate_ppm: int
    paid_out_by: int | None = None

    def funder_interest(self, amount: int) -> int:
        """The rule of `LoanTerms.funder_interest`: amount x funder's rate / borrower's rate, half-up."""
        if self.funder_rate_ppm >= self.rate_ppm:
            return amount
        return mul_div_half_up(amount, self.funder_rate_ppm, self.rate_ppm)


class Unreconciled(AssertionError):
    """A statement that does not meet the ledger: a payment whose parts do not add up to the cash it brought."""


@dataclass
class Statement:
    institution: str
    currency: str
    period: Period
    first: date
    last: date
    by_loan: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return statement_id(self.currency, self.period, self.first)

    @property
    def lines(self) -> dict[str, int]:
        totals = dict.fromkeys(LINE_NAMES, 0)
        for lines in self.by_loan.values():
            for name, amount in lines.items():
                totals[name] += amount
        return totals

    @property
    def net(self) -> int:
        return net(self.lines)

    @property
    def empty(self) -> bool:
        return not any(self.lines.values())


def statement(
    institution: str,
    currency: str,
    period: Period,
    first: date,
    last: date,
    loans: Mapping[int, FundedLoan],
    movements: Iterable[Movement],
) -> Statement:
    """The statement of the institution's loans from the journal movements of entries booked from `first` to
    `last` (the caller reads only `KINDS` and `ACCOUNTS`, and never a settlement's own entries)."""
    entries: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    kinds: dict[int, str] = {}
    for m in movements:
        entries[(m.entry_id, m.loan_id)][m.account] += m.amount
        kinds[m.entry_id] = m.kind
    result = Statement(institution, currency, period, first, last)
    for (entry_id, loan_id), accounts in sorted(entries.items()):
        lines = result.by_loan.setdefault(loan_id, dict.fromkeys(LINE_NAMES, 0))
        for name, amount in _entry_lines(loans[loan_id], entry_id, kinds[entry_id], accounts).items():
            lines[name] += amount
    return result


def _entry_lines(loan: FundedLoan, entry_id: int, kind: str, accounts: Mapping[str, int]) -> dict[str, int]:
    cash = accounts.get(ledger.COLLECTIONS_CLEARING, 0)
    lines = {
        "referral_fees": accounts.get(ledger.REFERRAL_FEE_RECEIVABLE, 0),
        # Funding cash is credited when the institution's money goes out to a borrower, debited when it comes back.
        "disbursements_funded": -min(accounts.get(ledger.FUNDING_CASH, 0), 0) if kind == "disbursement" else 0,
        "guarantee_payouts": accounts.get(ledger.FUNDING_CASH, 0) if kind != "disbursement" else 0,
    }
    if not cash:
        return lines
    if loan.paid_out_by is not None and entry_id > loan.paid_out_by:
        return lines | {"collected_after_payout": cash}
    if kind not in COLLECTION_KINDS:
        return lines | {"collection_adjustments": cash}
    paid = {name: -sum(accounts.get(a, 0) for a in names) for name, names in COMPONENT_ACCOUNTS.items()}
    if sum(paid.values()) != cash:
        raise Unreconciled(f"loan {loan.loan_id}: entry {entry_id}'s parts add up to {sum(paid.values())}, not {cash}")
    funder = loan.funder_interest(paid["interest"])
    return lines | {
        "principal_collected": paid["principal"],
        "interest_collected": funder,
        # Before a payout the institution bears the loan's loss, so what is recovered on it is the institution's.
        "recoveries_collected": paid["recovery"],
        "interest_spread_kept": paid["interest"] - funder,
        "fees_kept": paid["fee"],
        "late_fees_kept": paid["late_fee"],
        "prepayment_fees_kept": paid["prepayment_fee"],
    }


def reconcile(lines: Mapping[str, int]) -> dict[str, int]:
    """The ledger movements a statement's lines stand for, per account read: the cash collected into clearing, the
    funder's cash and the referral receivable. A test holds them to the journal's own sums."""
    collected = side(lines, Side.TO_INSTITUTION) + side(lines, Side.KEPT) + lines["collected_after_payout"]
    return {
        ledger.COLLECTIONS_CLEARING: collected,
        ledger.FUNDING_CASH: lines["guarantee_payouts"] - lines["disbursements_funded"],
        ledger.REFERRAL_FEE_RECEIVABLE: lines["referral_fees"],
    }


def settlement_postings(lines: Mapping[str, int]) -> list[ledger.Posting]:
    """One loan's share of a paid statement: the institution's collections leave clearing for the funder's cash,
    the platform's for its own, and the referral fees netted from the payment leave the receivable. Balanced; a
    negative line (a reversal) moves the other way."""
    to_institution, kept = side(lines, Side.TO_INSTITUTION), side(lines, Side.KEPT)
    referral = lines["referral_fees"]
    postings = [
        ledger.Posting(ledger.FUNDING_CASH, to_institution),
        ledger.Posting(ledger.PLATFORM_CASH, kept + referral),
        ledger.Posting(ledger.COLLECTIONS_CLEARING, -(to_institution + kept)),
        ledger.Posting(ledger.REFERRAL_FEE_RECEIVABLE, -referral),
    ]
    result = [p for p in postings if p.amount]
    ledger.assert_balanced(result)
    return result


def subtract(lines: Mapping[str, int], settled: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """What is still owed: every line of the book less the lines of the statements already paid."""
    left = dict(lines)
    for paid in settled:
        for name, amount in paid.items():
            left[name] = left.get(name, 0) - amount
    return left


def side(lines: Mapping[str, int], which: Side) -> int:
    return sum(amount for name, amount in lines.items() if SIDES[name] is which)


def net(lines: Mapping[str, int]) -> int:
    """What the platform pays the institution on these lines (negative: what the institution pays the platform)."""
    return side(lines, Side.TO_INSTITUTION) - side(lines, Side.BY_INSTITUTION)
