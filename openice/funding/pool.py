"""The pool cut (pure, no I/O): which loans of the live book go into a deal under its eligibility criteria, and the
stratification report that shows the pool before anything is committed.

Only the platform's own loans can be sold: on-balance-sheet loans it funds (an institution's loan is not the
platform's to sell). The eligible loans are taken oldest first (by loan number, so the same book always gives the
same pool) while the pool stays within the deal's `pool_balance` and each borrower and province within its share of
it; a loan that would break a limit is left and the next one tried. Each loan left out is counted under its reason."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from openice.funding.deal import Eligibility
from openice.money import minor_digits
from openice.servicing.loan import PLATFORM, BusinessModel, LoanStatus

UNKNOWN = "unknown"  # a loan booked without a borrower's application has no grade or province on record


@dataclass(frozen=True)
class PoolLoan:
    """A loan of the book as the pool cut sees it."""

    loan_id: int
    borrower_id: str | None
    product: str
    grade: str | None
    province: str | None
    funder: str
    business_model: str
    status: str
    dpd: int
    balance: int  # principal outstanding, minor units
    rate_ppm: int
    remaining_tenor: int  # installments not yet due
    disbursed_on: date


@dataclass(frozen=True)
class Cut:
    """The loans taken, their total, and how many were left for each reason."""

    loans: tuple[PoolLoan, ...]
    left: dict[str, int]

    @property
    def balance(self) -> int:
        return sum(loan.balance for loan in self.loans)


@dataclass(frozen=True)
class Stratum:
    dimension: str
    bucket: str
    count: int
    balance: int


def ineligible(loan: PoolLoan, rules: Eligibility) -> str | None:
    """Why the loan cannot be in the pool, or None."""
    if loan.funder != PLATFORM or loan.business_model != BusinessModel.ON_BALANCE_SHEET:
        return "not the platform's own"
    if loan.status != LoanStatus.ACTIVE or loan.balance <= 0:
        return "not active"
    if rules.current_only and loan.dpd > 0:
        return "past due"
    if rules.min_remaining_tenor is not None and loan.remaining_tenor < rules.min_remaining_tenor:
        return "remaining tenor"
    if rules.max_remaining_tenor is not None and loan.remaining_tenor > rules.max_remaining_tenor:
        return "remaining tenor"
    if rules.products is not None and loan.product not in rules.products:
        return "product"
    if rules.grades is not None and (loan.grade or UNKNOWN) not in rules.grades:
        return "grade"
    return None


def cut(
    book: Iterable[PoolLoan],
    rules: Eligibility,
    pool_balance: int,
    held: Sequence[PoolLoan] = (),
    budget: int | None = None,
) -> Cut:
    """The loans of `book` that make the pool, oldest first, within `budget` (the pool_balance unless given) and the
    concentration limits (each a share of `pool_balance`, compared exactly). A revolving deal buys loans into the
    pool it `held` already: its loans count towards each borrower's and province's share."""
    left: Counter[str] = Counter()
    taken: list[PoolLoan] = []
    total = 0
    by_borrower: defaultdict[str, int] = defaultdict(int)
    by_province: defaultdict[str, int] = defaultdict(int)
    for loan in held:
        by_borrower[_borrower(loan)] += loan.balance
        by_province[loan.province or UNKNOWN] += loan.balance
    limit_total = pool_balance if budget is None else budget
    for loan in sorted(book, key=lambda x: x.loan_id):
        reason = ineligible(loan, rules)
        borrower = _borrower(loan)
        province = loan.province or UNKNOWN
        limit = rules.province_limits.get(province)
        if reason is None and total + loan.balance > limit_total:
            reason = "above the pool balance"
        if reason is None and rules.max_borrower_share is not None:
            if by_borrower[borrower] + loan.balance > rules.max_borrower_share * pool_balance:
                reason = "borrower share"
        if reason is None and limit is not None and by_province[province] + loan.balance > limit * pool_balance:
            reason = "province limit"
        if reason is not None:
            left[reason] += 1
            continue
        taken.append(loan)
        total += loan.balance
        by_borrower[borrower] += loan.balance
        by_province[province] += loan.balance
    return Cut(tuple(taken), dict(sorted(left.items())))


def _borrower(loan: PoolLoan) -> str:
    """Whose share the loan counts towards: a loan booked without a borrower on record stands alone."""
    return loan.borrower_id or f"loan {loan.loan_id}"


def months_on_book(disbursed_on: date, as_of: date) -> int:
    """Whole months from disbursement to `as_of` (a loan disbursed on 15 January is one month on book from 15
    February)."""
    months = (as_of.year - disbursed_on.year) * 12 + as_of.month - disbursed_on.month
    return max(months - (as_of.day < disbursed_on.day), 0)


@dataclass(frozen=True)
class Ladder:
    """Buckets of a number: each label with its exclusive upper bound, then the label of everything above."""

    steps: tuple[tuple[int, str], ...]
    top: str

    def label(self, value: int) -> str:
        return next((label for upper, label in self.steps if value < upper), self.top)

    @property
    def labels(self) -> list[str]:
        return [label for _, label in self.steps] + [self.top]


RATES = Ladder(((120_000, "< 12%"), (180_000, "12%-18%"), (240_000, "18%-24%")), "24%+")  # parts per million
TENORS = Ladder(((7, "1-6"), (13, "7-12"), (25, "13-24")), "25+")  # months still to fall due
SEASONING = Ladder(((4, "0-3"), (7, "4-6"), (13, "7-12")), "13+")  # months on book


def balances(currency: str) -> Ladder:
    """Loan balances by major units of `currency`."""
    unit = 10 ** minor_digits(currency)
    return Ladder(
        (
            (5_000 * unit, "< 5,000"),
            (10_000 * unit, "5,000-10,000"),
            (20_000 * unit, "10,000-20,000"),
            (50_000 * unit, "20,000-50,000"),
        ),
        "50,000+",
    )


def stratify(loans: Sequence[PoolLoan], currency: str, as_of: date) -> list[Stratum]:
    """The pool by balance, rate, grade, remaining tenor, province and seasoning: each bucket's count and balance,
    numeric buckets low to high, grades and provinces by name; empty buckets are left out."""
    by_balance = balances(currency)
    dimensions: list[tuple[str, Callable[[PoolLoan], str], list[str] | None]] = [
        ("balance", lambda x: by_balance.label(x.balance), by_balance.labels),
        ("rate", lambda x: RATES.label(x.rate_ppm), RATES.labels),
        ("grade", lambda x: x.grade or UNKNOWN, None),
        ("remaining_tenor", lambda x: TENORS.label(x.remaining_tenor), TENORS.labels),
        ("province", lambda x: x.province or UNKNOWN, None),
        ("seasoning", lambda x: SEASONING.label(months_on_book(x.disbursed_on, as_of)), SEASONING.labels),
    ]
    strata: list[Stratum] = []
    for dimension, label, order in dimensions:
        counts: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for loan in loans:
            bucket = label(loan)
            counts[bucket] += 1
            totals[bucket] += loan.balance
        buckets = [b for b in order if b in counts] if order else sorted(counts)
        strata += [Stratum(dimension, b, counts[b], totals[b]) for b in buckets]
    return strata


def share(balance: int, total: int) -> Decimal:
    """`balance` as a fraction of `total`, half-up to four places (0.1234 is 12.34%)."""
    if total == 0:
        return Decimal("0.0000")
    return (Decimal(balance) / Decimal(total)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
