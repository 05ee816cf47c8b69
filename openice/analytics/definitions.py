"""The one definition of every metric, as SQL in DuckDB's dialect.

Each engine runs exactly this text: DuckDB as written, PostgreSQL and Spark after sqlglot
transpiles it (`for_dialect`). To keep the three engines equal to the cent the SQL only adds,
compares and counts integers; every ratio is formed in Python from exact integer numerators and
denominators, so a split's numerators add up to the total's.

Two fact tables are built once per period and as-of date and every metric reads them:

* ``loan_dues`` — one row per loan with an installment due on or before the as-of date that counts
  for it (due in the period, or not paid in time; `lf` reads a loan without a row as one with no dues),
  aggregated from the installment facts (`installment_facts`: per contractual installment, what was paid on it by
  its due date, within the collection window after it (`CollectionWindow`), and by the delinquency thresholds;
  never stored): the day the loan became overdue, the days it first crossed 30+ and 90+, and the sums over its
  installments due in the period. Settlement rows (the installment a full prepayment collapses the schedule into,
  recognisable by its ``principal_prepaid`` allocation) are not contractual dues and are left out; so
  are installments falling due after a loan was written off.
* ``lf`` — one row per loan disbursed by the as-of date: its split dimensions, outstanding
  principal, the day it became overdue, the days it first crossed the 30+ and 90+ thresholds and
  its balance on those days, whether it is a repeat drawdown, and its period's dues.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import sqlglot

from openice.errors import ValidationError
from openice.servicing import ledger
from openice.servicing.buckets import BUCKETS as SERVICING_BUCKETS
from openice.servicing.buckets import CURRENT, LADDER, LAST, ladder_sql
from openice.servicing.loan import PLATFORM
from openice.servicing.sources import funding_source_sql, platform_model_sql

PRINCIPAL = "('principal', 'principal_prepaid')"
DUE_COMPONENTS = "('principal', 'principal_prepaid', 'interest', 'fee')"

# Split dimensions: name -> column of `lf`. model_group folds both capital-heavy models together,
# as the disclosures split volume into capital-light / capital-heavy / technology solutions.
DIMENSIONS = ("business_model", "model_group", "institution", "product", "channel", "origination_month")

INCOME_ACCOUNTS = (
    ledger.INTEREST_INCOME,
    ledger.FEE_INCOME,
    ledger.FACILITATION_FEE_INCOME,
    ledger.PENALTY_INCOME,
    ledger.PREPAYMENT_FEE_INCOME,
    ledger.GUARANTEE_RELEASE_INCOME,
    ledger.RECOVERY_INCOME,
    ledger.REFERRAL_FEE_INCOME,
    ledger.PLATFORM_INTEREST_INCOME,
    ledger.INTEREST_SPREAD_INCOME,
    ledger.INSTITUTION_RECOVERY_INCOME,
)


def accounts_sql(*accounts: str) -> str:
    """A SQL list of ledger accounts, `('a', 'b')`, from the ledger's own names."""
    return "(" + ", ".join(ledger.sql_name(a) for a in accounts) + ")"


SERVICE_FEES = accounts_sql(ledger.FACILITATION_FEE_INCOME, ledger.FEE_INCOME, ledger.INTEREST_SPREAD_INCOME)
OTHER_FEES = accounts_sql(ledger.PENALTY_INCOME, ledger.PREPAYMENT_FEE_INCOME)

# (revenue line, SQL condition on account `a`, business model `m` and `s`, 1 when the loan was sold into a deal that
# derecognised it by the entry's day). Every income line of the ledger falls in the first line whose condition holds,
# so the lines add up to the ledger's income to the cent.
REVENUE_LINES: tuple[tuple[str, str], ...] = (
    # A loan sold off the balance sheet earns for the deal's trust from its transfer: none of it is the platform's.
    ("abs_trust_income", "{s} = 1"),
    # The platform's interest spread on an institution's loan is a service fee in substance: it is the platform's
    # price for facilitating and servicing, taken out of the borrower's interest.
    ("credit_driven.facilitation_and_servicing_fees", "{m} = 'capital-heavy' AND {a} IN " + SERVICE_FEES),
    # Interest on loans the platform took over by paying out its guarantee is financing income too.
    (
        "credit_driven.financing_income",
        "({m} = 'on-balance-sheet' AND {a} IN "
        + accounts_sql(ledger.INTEREST_INCOME, ledger.FACILITATION_FEE_INCOME, ledger.FEE_INCOME)
        + ") OR {a} = "
        + ledger.sql_name(ledger.PLATFORM_INTEREST_INCOME),
    ),
    ("credit_driven.guarantee_release", "{a} = " + ledger.sql_name(ledger.GUARANTEE_RELEASE_INCOME)),
    ("credit_driven.other_fees", "{m} IN ('capital-heavy', 'on-balance-sheet') AND {a} IN " + OTHER_FEES),
    ("platform.facilitation_and_servicing_fees", "{m} = 'capital-light' AND {a} IN " + SERVICE_FEES),
    ("platform.other_fees", "{m} = 'capital-light' AND {a} IN " + OTHER_FEES),
    ("platform.referral_fees", "{a} = " + ledger.sql_name(ledger.REFERRAL_FEE_INCOME)),
    (
        "technology.fees",
        "{m} = 'technology' AND {a} NOT IN "
        + accounts_sql(ledger.INTEREST_INCOME, ledger.RECOVERY_INCOME, ledger.INSTITUTION_RECOVERY_INCOME),
    ),
    ("institution_interest", "{m} <> 'on-balance-sheet' AND {a} = " + ledger.sql_name(ledger.INTEREST_INCOME)),
    ("recoveries", "{a} = " + ledger.sql_name(ledger.RECOVERY_INCOME)),
    ("institution_recoveries", "{a} = " + ledger.sql_name(ledger.INSTITUTION_RECOVERY_INCOME)),
)

# How a reader of the disclosures names each line, and the lines that are not the platform's revenue: listed so that
# the lines add up to the ledger's income, set apart from the revenue total.
REVENUE_LABELS = {
    "abs_trust_income": "Income on loans sold into asset-backed deals (the trusts')",
    "credit_driven.facilitation_and_servicing_fees": "Loan facilitation and servicing fees (capital-heavy)",
    "credit_driven.financing_income": "Financing income",
    "credit_driven.guarantee_release": "Revenue from releasing guarantee liabilities",
    "credit_driven.other_fees": "Other fees (credit-driven services)",
    "platform.facilitation_and_servicing_fees": "Loan facilitation and servicing fees (capital-light)",
    "platform.other_fees": "Other fees (platform services)",
    "platform.referral_fees": "Referral fees",
    "technology.fees": "Technology solution fees",
    "institution_interest": "Interest earned by the funding institutions",
    "recoveries": "Recoveries on loans the platform wrote off",
    "institution_recoveries": "Recoveries on loans the institutions wrote off",
}
NOT_REVENUE = ("institution_interest", "recoveries", "institution_recoveries", "abs_trust_income")
REVENUE_GROUPS = {
    "credit_driven": "Credit-driven services",
    "platform": "Platform services",
    "technology": "Technology solutions",
}

# The bucket beyond `Thresholds.m4`: outside the 90 day+ rate's numerator and denominator and the outstanding balance,
# shown apart (`balance_over_180`) whatever a product's write-off DPD.
OVER_M4 = ">180"
# Servicing's buckets of a live loan, then the disclosures' own >180 (see `Thresholds` for where they differ).
BUCKETS = (*SERVICING_BUCKETS, OVER_M4)
SERVICING_BOUNDS = dict(LADDER)


def bucket_column(bucket: str) -> str:
    """The column holding a bucket's balance: bucket_c, bucket_m1 ... bucket_m4, bucket_over_180."""
    return "bucket_over_180" if bucket == OVER_M4 else f"bucket_{bucket.strip('+').lower()}"


@dataclass(frozen=True)
class Thresholds:
    """Delinquency bucket upper bounds in DPD, by default servicing's ladder (`openice.servicing.buckets`).

    Where the disclosures deliberately differ from servicing: the bounds can be set per report; M4+ ends at m4
    rather than at a product's write-off DPD, and beyond m4 is the >180 bucket (left out of the 90 day+ rate)
    where servicing has M4+ and then WO (a written-off loan)."""

    m1: int = SERVICING_BOUNDS["M1"]
    m2: int = SERVICING_BOUNDS["M2"]
    m3: int = SERVICING_BOUNDS["M3"]
    m4: int = 180
    fpd_days: int = 1  # a first installment is delinquent if unpaid at the end of its due date + fpd_days - 1

    def __post_init__(self) -> None:
        if not 0 < self.m1 < self.m2 < self.m3 < self.m4:
            raise ValidationError("need 0 < m1 < m2 < m3 < m4", field="thresholds")
        if self.fpd_days < 1:
            raise ValidationError("must be at least 1", field="fpd_days")

    def bucket_sql(self, dpd: str) -> str:
        bounds = (SERVICING_BOUNDS[CURRENT], self.m1, self.m2, self.m3, self.m4)
        return ladder_sql(dpd, tuple(zip(SERVICING_BUCKETS, bounds, strict=True)), OVER_M4)


def month_key_sql(day: str) -> str:
    """Year * 12 + month - 1 of a day number, in integer arithmetic every engine shares.

    Counts 4-year cycles from 1968-03-01 (the leap day ends each cycle); exact from 1968-03-01 to
    2100-02-28."""
    e = f"(({day}) + 671)"
    r = f"({e} % 1461)"
    yr = f"(({r} - {r} // 1460) // 365)"
    mp = f"((5 * ({r} - 365 * {yr}) + 2) // 153)"
    return f"((1968 + 4 * ({e} // 1461) + {yr}) * 12 + {mp} + 2)"


def first_of_month_sql(key: str) -> str:
    """The day number of the first day of month `key` (year * 12 + month - 1), the inverse of `month_key_sql`.

    Counts years from March (the leap day ends each) with every fourth one leap: exact for the months 1901-03 to
    2100-02."""
    t = f"(({key}) - 2)"
    year = f"({t} // 12)"
    return f"(365 * {year} + {year} // 4 + (153 * ({t} % 12) + 2) // 5 - 719483)"


def one_month_after_sql(day: str) -> str:
    """The same day of the next month, or that month's last day if it is shorter (31 Jan -> 28/29 Feb), as
    integer SQL on a day number; exact for days from 1968-03-01 to 2099-12-31 (`month_key_sql`,
    `first_of_month_sql`)."""
    key = month_key_sql(day)
    return (
        f"LEAST({first_of_month_sql(f'{key} + 1')} + ({day}) - {first_of_month_sql(key)}, "
        f"{first_of_month_sql(f'{key} + 2')} - 1)"
    )


class CollectionWindow(StrEnum):
    """How long after its due date a repayment of overdue principal counts as collected: the filing's "repaid in
    one month", by default the calendar month (a 15 January overdue counts through 15 February; 31 January
    through the end of February), or a fixed 30 days."""

    CALENDAR_MONTH = "calendar-month"
    DAYS_30 = "30-days"

    @classmethod
    def parse(cls, value: str) -> CollectionWindow:
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(
                f"{value!r} is not a collection window; choose from {', '.join(w.value for w in cls)}",
                field="collection_window",
            ) from None

    @property
    def description(self) -> str:
        if self is CollectionWindow.CALENDAR_MONTH:
            return "through the same day of the next month (its last day if shorter)"
        return "in the 30 days after the due date"

    def within_sql(self, day: str, due: str) -> str:
        """`day` is no later than the window's last day after `due` (the caller checks that it is after `due`).
        A calendar month is 28 to 31 days, so the month arithmetic is evaluated only for repayments 29 to 31 days
        after the due date (the OR and AND stop early): few rows of the per-installment facts."""
        if self is CollectionWindow.DAYS_30:
            return f"{day} <= {due} + 30"
        return f"({day} <= {due} + 28 OR ({day} <= {due} + 31 AND {day} <= {one_month_after_sql(due)}))"


def group_cols(by: Sequence[str], *extra: str) -> tuple[str, str]:
    """SELECT prefix and GROUP BY clause for the split dimensions, plus the metric's own grouping."""
    for name in by:
        if name not in DIMENSIONS:
            raise ValidationError(f"unknown split {name!r}; choose from {', '.join(DIMENSIONS)}", field="by")
    cols = [f"l.{name}" for name in by]
    keys = cols + list(extra)
    return "".join(c + ", " for c in cols), (" GROUP BY " + ", ".join(keys)) if keys else ""


# The one-value-day path keys an installment by one BIGINT, loan_id * SEQ_KEY + seq: one column to hash and
# compare in its aggregate and join instead of two. Unique while 0 <= seq < SEQ_KEY (a schedule has a few
# hundred installments at most) and loan_id < 2**43; allocations outside that seq range are left out of the
# path and their installments' loans take the exact one (`single_day_facts`).
SEQ_KEY = 1 << 20


def _seq_key(alias: str) -> str:
    return f"{alias}loan_id * {SEQ_KEY} + {alias}seq"


def _alloc_ints(keys: str, where: str) -> str:
    """The allocations due on installments as integer columns (amount, principal part, prepaid part) after
    `keys`, so that no text goes through a join or an aggregation."""
    return f"""(SELECT {keys}, value_day, amount,
             CASE WHEN component IN {PRINCIPAL} THEN amount ELSE 0 END AS prin,
             CASE WHEN component = 'principal_prepaid' THEN amount ELSE 0 END AS prepaid
           FROM allocations WHERE component IN {DUE_COMPONENTS}{where})"""


def _restrict(loans: tuple[int, int] | None, only: str | None, col: str) -> str:
    """Filter on a loan-id column: a range of ids and/or membership in a loan-id subquery."""
    out = f" AND {col} >= {loans[0]} AND {col} <= {loans[1]}" if loans else ""
    return out + (f" AND {col} IN ({only})" if only else "")


def _due_installments(loans: tuple[int, int] | None, only: str | None) -> str:
    """Installments due by the as-of date (the written-off loans are joined, a small hash table, to drop
    their installments falling due after the write-off)."""
    return f"""FROM installments i
LEFT JOIN (SELECT id, closed_day FROM loans WHERE status = 'written_off'{_restrict(loans, only, "id")}) w
  ON w.id = i.loan_id"""


def installment_facts(
    as_of: int, th: Thresholds, window: CollectionWindow, loans: tuple[int, int] | None = None, only: str | None = None
) -> str:
    """One row per contractual installment due by the as-of date, with what was paid on it by its due date,
    in the collection window after it, by the delinquency thresholds and by the as-of date: installments ⋈ allocations,
    grouped on the installments' key alone (loan_id, seq; the other columns depend on it). `loans` =
    (first, last) restricts it to a range of loan ids (a large portfolio is built in parts whose hash
    tables stay small); `only`, to the loan ids a subquery returns."""
    return f"""
SELECT i.loan_id, i.seq, MAX(i.due_day) AS due_day, MAX(i.principal) AS principal,
  MAX(i.principal + i.interest + i.fee) AS owed,
  COALESCE(SUM(CASE WHEN a.value_day <= i.due_day THEN a.prin END), 0) AS prin_by_due,
  COALESCE(SUM(CASE WHEN a.value_day > i.due_day AND a.value_day <= {as_of}
                     AND {window.within_sql("a.value_day", "i.due_day")} THEN a.prin END), 0) AS prin_collected,
  COALESCE(SUM(CASE WHEN a.value_day <= i.due_day + {th.fpd_days - 1} THEN a.amount END), 0) AS paid_fpd,
  COALESCE(SUM(CASE WHEN a.value_day <= i.due_day + {th.m1} THEN a.amount END), 0) AS paid_30,
  COALESCE(SUM(CASE WHEN a.value_day <= i.due_day + {th.m3} THEN a.amount END), 0) AS paid_90,
  COALESCE(SUM(CASE WHEN a.value_day <= {as_of} THEN a.amount END), 0) AS paid_asof,
  0 AS several_days
{_due_installments(loans, only)}
LEFT JOIN {_alloc_ints("loan_id, seq", _restrict(loans, only, "loan_id"))} a
  ON a.loan_id = i.loan_id AND a.seq = i.seq
WHERE i.due_day <= {as_of} AND (w.id IS NULL OR w.closed_day >= i.due_day){_restrict(loans, only, "i.loan_id")}
GROUP BY i.loan_id, i.seq
HAVING COALESCE(SUM(a.prepaid), 0) = 0"""


def single_day_facts(as_of: int, th: Thresholds, window: CollectionWindow, loans: tuple[int, int] | None = None) -> str:
    """The installment facts, exact for every installment whose allocations all carry one value day (the
    usual case: an installment paid in one go): the allocations are summed per installment first (with
    their first and last value day) and joined 1:1, so the sums by day are all-or-nothing comparisons of
    that one day, with no aggregation after the join. `several_days` flags the installments paid on
    several days, and those whose seq is outside the range of the one-column key (`SEQ_KEY`): `loan_dues`
    takes their loans from `installment_facts` instead."""
    in_range, outside = f" AND seq >= 0 AND seq < {SEQ_KEY}", f"i.seq < 0 OR i.seq >= {SEQ_KEY}"

    def by_day(cond: str, col: str) -> str:
        return f"CASE WHEN a.d0 IS NOT NULL AND {cond.format(vd='a.d0')} THEN a.{col} ELSE 0 END"

    return f"""
SELECT i.loan_id, i.seq, i.due_day, i.principal, i.principal + i.interest + i.fee AS owed,
  {by_day("{vd} <= i.due_day", "prin")} AS prin_by_due,
  {by_day(f"{{vd}} > i.due_day AND {{vd}} <= {as_of} AND " + window.within_sql("{vd}", "i.due_day"), "prin")}
    AS prin_collected,
  {by_day("{vd} <= i.due_day + " + str(th.fpd_days - 1), "amount")} AS paid_fpd,
  {by_day("{vd} <= i.due_day + " + str(th.m1), "amount")} AS paid_30,
  {by_day("{vd} <= i.due_day + " + str(th.m3), "amount")} AS paid_90,
  {by_day("{vd} <= " + str(as_of), "amount")} AS paid_asof,
  CASE WHEN a.d0 < a.d1 OR {outside} THEN 1 ELSE 0 END AS several_days
{_due_installments(loans, None)}
LEFT JOIN (SELECT k, MIN(value_day) AS d0, MAX(value_day) AS d1, SUM(amount) AS amount, SUM(prin) AS prin,
             SUM(prepaid) AS prepaid
           FROM {_alloc_ints(_seq_key("") + " AS k", in_range + _restrict(loans, None, "loan_id"))} x
           GROUP BY k) a
  ON a.k = {_seq_key("i.")}
WHERE i.due_day <= {as_of} AND (w.id IS NULL OR w.closed_day >= i.due_day){_restrict(loans, None, "i.loan_id")}
  AND (COALESCE(a.prepaid, 0) = 0 OR {outside})"""


def _loan_dues_of(facts: str, as_of: int, start: int, end: int, th: Thresholds) -> str:
    """Per loan, from its installment facts. Only the installments that count for one of its columns are
    aggregated (due in the period, unpaid by the as-of date or by a threshold, or flagged): an installment
    paid in time outside the period adds nothing, and a loan with only such installments gets no row."""
    period = f"due_day >= {start} AND due_day <= {end}"
    first = f"{period} AND seq = 1 AND due_day + {th.fpd_days - 1} <= {as_of}"
    unpaid = "owed - paid_asof > 0"
    late30 = f"due_day + {th.m1} <= {as_of} AND owed - paid_30 > 0"
    late90 = f"due_day + {th.m3} <= {as_of} AND owed - paid_90 > 0"
    count = "CAST(SUM(CASE WHEN {cond} THEN {value} ELSE 0 END) AS BIGINT)"
    return f"""
SELECT loan_id,
  MIN(CASE WHEN {unpaid} THEN due_day END) AS overdue_since,
  MIN(CASE WHEN {late30} THEN due_day + {th.m1} END) AS first30,
  MIN(CASE WHEN {late90} THEN due_day + {th.m3} END) AS first90,
  {count.format(cond=period, value=1)} AS dues,
  {count.format(cond=period, value="principal")} AS principal_due,
  {count.format(cond=period, value="principal - prin_by_due")} AS overdue_day1,
  {count.format(cond=f"{period} AND principal > prin_by_due", value="prin_collected")} AS collected_30d,
  {count.format(cond=first, value=1)} AS first_due,
  {count.format(cond=f"{first} AND owed - paid_fpd > 0", value=1)} AS first_delinquent,
  CAST(SUM(several_days) AS BIGINT) AS several_days
FROM ({facts}) f
WHERE ({period}) OR {unpaid} OR ({late30}) OR ({late90}) OR several_days > 0
GROUP BY loan_id"""


def loan_dues_single_day(
    as_of: int, start: int, end: int, th: Thresholds, window: CollectionWindow, loans: tuple[int, int] | None = None
) -> str:
    """`loan_dues` from `single_day_facts`: right for the loans with `several_days` = 0. Built in
    loan-id ranges (`loans`): a loan's installments all fall in its own range."""
    return _loan_dues_of(single_day_facts(as_of, th, window, loans), as_of, start, end, th)


def loan_dues(as_of: int, start: int, end: int, th: Thresholds, window: CollectionWindow) -> str:
    """Per loan with an installment due by the as-of date that counts for it (`_loan_dues_of`), from its
    installment facts (aggregated straight away, never stored): the day it became overdue, the days it
    first crossed the 30+ and 90+ thresholds, and its sums over the installments due in the period for
    Day-1 delinquency, 30-day collection (in `window`) and FPD (the split dimensions are the loan's, so the period's
    sums can be formed per loan first).
    Taken from `loan_dues_single_day`, except for the loans it flags (an installment paid on several days,
    or a seq outside `SEQ_KEY`), which are computed again from the full `installment_facts`."""
    several = "SELECT loan_id FROM loan_dues_single_day WHERE several_days > 0"
    return f"""
SELECT * FROM loan_dues_single_day WHERE several_days = 0
UNION ALL
{_loan_dues_of(installment_facts(as_of, th, window, None, several), as_of, start, end, th)}"""


def loan_paid(as_of: int, loans: tuple[int, int] | None = None) -> str:
    """Principal repaid per loan by the as-of date, and by the days the loan first crossed 30+ and 90+
    (from `loan_dues`): one pass over the principal allocations, built in loan-id ranges like
    `loan_dues` so that its hash tables stay small."""
    part = f" AND a.loan_id >= {loans[0]} AND a.loan_id <= {loans[1]}" if loans else ""
    c_part = f" AND loan_id >= {loans[0]} AND loan_id <= {loans[1]}" if loans else ""
    paid_by = "SUM(CASE WHEN a.value_day <= {day} THEN a.amount ELSE 0 END)"
    return f"""
SELECT a.loan_id, {paid_by.format(day=as_of)} AS paid_asof, {paid_by.format(day="c.first30")} AS paid30,
  {paid_by.format(day="c.first90")} AS paid90
FROM allocations a
LEFT JOIN (SELECT loan_id, first30, first90 FROM loan_dues
           WHERE (first30 IS NOT NULL OR first90 IS NOT NULL){c_part}) c ON c.loan_id = a.loan_id
WHERE a.component IN {PRINCIPAL} AND a.value_day <= {as_of}{part}
GROUP BY a.loan_id"""


# A loan's (disbursed_day, id) as one BIGINT in the same order is exact while 0 <= id < 2**40 and the day number
# is under 2**22 in magnitude (loan ids are a database sequence, day numbers count from 1970); `compute` checks it.
DRAWDOWN_ID_BITS, DRAWDOWN_DAY_BITS = 40, 22


def _drawdown_key(alias: str) -> str:
    return f"({alias}disbursed_day * {1 << DRAWDOWN_ID_BITS} + {alias}id)"


def loan_key_bounds() -> str:
    """The least and greatest loan id and disbursement day, to check them against `_drawdown_key`'s bounds."""
    return (
        "SELECT MIN(id) AS min_id, MAX(id) AS max_id, MIN(disbursed_day) AS min_day, "
        "MAX(disbursed_day) AS max_day FROM loans"
    )


def loan_facts(as_of: int, th: Thresholds) -> str:
    """Per loan, without a GROUP BY over the loan's columns: the loan's due facts (`loan_dues`, `e`) and
    principal repaid (`loan_paid`, `p`) are per loan already, and are joined to the loans 1:1. A repeat
    drawdown is a loan after its borrower's first (by disbursement day, then id), found from each
    borrower's least `_drawdown_key` (an aggregate, cheaper than numbering every borrower's loans)."""
    written_off = f"(l.status = 'written_off' AND l.closed_day <= {as_of})"
    return f"""
SELECT l.id AS loan_id, l.business_model,
  CASE WHEN l.business_model = 'on-balance-sheet' THEN 'capital-heavy' ELSE l.business_model END AS model_group,
  l.original_funder AS institution, l.product_code AS product, l.channel,
  {month_key_sql("l.disbursed_day")} AS origination_month,
  l.principal, l.tenor, l.borrower_id, l.disbursed_day,
  CASE WHEN {written_off} THEN 1 ELSE 0 END AS wo,
  CASE WHEN {written_off} THEN NULL ELSE e.overdue_since END AS overdue_since,
  e.first30, e.first90,
  CASE WHEN {written_off} THEN 0 ELSE l.principal - COALESCE(p.paid_asof, 0) END AS outstanding,
  CASE WHEN e.first30 IS NULL THEN 0 ELSE l.principal - COALESCE(p.paid30, 0) END AS bal30,
  CASE WHEN e.first90 IS NULL THEN 0 ELSE l.principal - COALESCE(p.paid90, 0) END AS bal90,
  CASE WHEN r.first_key < {_drawdown_key("l.")} THEN 1 ELSE 0 END AS repeat_drawdown, COALESCE(e.dues, 0) AS dues,
  e.principal_due, e.overdue_day1, e.collected_30d, e.first_due, e.first_delinquent
FROM loans l
LEFT JOIN (SELECT borrower_id, MIN({_drawdown_key("")}) AS first_key FROM loans
           WHERE disbursed_day <= {as_of} AND borrower_id IS NOT NULL GROUP BY borrower_id) r
  ON r.borrower_id = l.borrower_id
LEFT JOIN loan_dues e ON e.loan_id = l.id
LEFT JOIN loan_paid p ON p.loan_id = l.id
WHERE l.disbursed_day <= {as_of}"""


def dues(by: Sequence[str]) -> str:
    """Day-1 delinquency, 30-day collection and first-payment default, over installments due in the period
    (summed per loan in `loan_dues`)."""
    sel, grp = group_cols(by)
    return f"""
SELECT {sel}SUM(l.principal_due) AS principal_due, SUM(l.overdue_day1) AS overdue_day1,
  SUM(l.collected_30d) AS collected_30d, SUM(l.first_due) AS first_due, SUM(l.first_delinquent) AS first_delinquent
FROM lf l WHERE l.dues > 0{grp}"""


def originations(by: Sequence[str], start: int, end: int) -> str:
    sel, grp = group_cols(by)
    vol = "SUM(CASE WHEN {cond} THEN l.principal ELSE 0 END)"
    return f"""
SELECT {sel}COUNT(*) AS loans_originated, SUM(l.principal) AS volume,
  {vol.format(cond="l.business_model IN ('capital-light', 'capital-heavy')")} AS facilitation_volume,
  {vol.format(cond="l.business_model = 'on-balance-sheet'")} AS origination_volume,
  {vol.format(cond="l.business_model = 'technology'")} AS technology_volume,
  SUM(l.principal * l.tenor) AS principal_tenor,
  {vol.format(cond="l.repeat_drawdown = 1")} AS repeat_volume
FROM lf l WHERE l.disbursed_day >= {start} AND l.disbursed_day <= {end}{grp}"""


def dpd_sql(as_of: int) -> str:
    """A loan's days past due at the end of the as-of day, from `lf`'s overdue_since."""
    return f"(CASE WHEN l.overdue_since IS NULL THEN 0 ELSE {as_of} + 1 - l.overdue_since END)"


def balances(by: Sequence[str], as_of: int, th: Thresholds) -> str:
    """Outstanding balances by bucket, and the borrowers with a drawdown: unsplit, each borrower's first
    drawdown counts them once (no DISTINCT over the borrower ids); split, a borrower may be in several groups.
    `outstanding` and `loans_outstanding` leave out the loans beyond `th.m4` DPD (the disclosures' outstanding
    balance, the 90 day+ rate's denominator); they are counted apart (`bucket_over_180`, `loans_over_180`)."""
    sel, grp = group_cols(by)
    borrowers = (
        "COUNT(DISTINCT l.borrower_id)"
        if by
        else "SUM(CASE WHEN l.borrower_id IS NOT NULL AND l.repeat_drawdown = 0 THEN 1 ELSE 0 END)"
    )
    dpd = dpd_sql(as_of)
    per_bucket = ",\n  ".join(
        f"SUM(CASE WHEN {th.bucket_sql(dpd)} = '{b}' THEN l.outstanding ELSE 0 END) AS {bucket_column(b)}"
        for b in BUCKETS
    )
    return f"""
SELECT {sel}SUM(CASE WHEN {dpd} <= {th.m4} THEN l.outstanding ELSE 0 END) AS outstanding,
  SUM(CASE WHEN l.outstanding > 0 AND {dpd} <= {th.m4} THEN 1 ELSE 0 END) AS loans_outstanding,
  SUM(CASE WHEN l.outstanding > 0 AND {dpd} > {th.m4} THEN 1 ELSE 0 END) AS loans_over_180,
  {per_bucket},
  {borrowers} AS borrowers_with_drawdown
FROM lf l{grp}"""


def funding(by: Sequence[str]) -> str:
    sel, grp = group_cols(by)
    return f"""
SELECT {sel}SUM(CASE WHEN f.code IS NULL THEN 0 ELSE l.outstanding END) AS covered_balance,
  SUM(CASE WHEN f.code IS NULL THEN l.outstanding ELSE 0 END) AS uncovered_balance,
  SUM(CAST(l.outstanding AS DECIMAL(38, 0)) * COALESCE(f.funding_cost_ppm, 0)) AS balance_cost_ppm
FROM lf l LEFT JOIN institutions f ON f.code = l.institution
WHERE l.outstanding > 0{grp}"""


GUARANTEE_PAYOUT = "guarantee_payout"  # the journal entry that moves a capital-heavy loan to the platform


def funding_mix(by: Sequence[str], as_of: int, th: Thresholds, costs: bool, deals: bool = False) -> str:
    """Principal outstanding by funding source and platform model (`openice.servicing.sources`), with the funding
    cost of the funder on file weighted by it (`costs`: the source has an institutions table, with their costs and
    kinds, so a trust's loans are told apart; `deals`: it has the
    deals issued, whose terms `compute` registers as `DEAL_TERMS`).

    The funder is the one of the as-of date: a loan's `funder` today, unless its guarantee was paid out after the
    as-of date (the payout's journal entry), when it was still its original funder's, or it was sold into a deal after
    the as-of date, when it was still the platform's (a pool is cut from the platform's own loans only), or bought
    back at a deal's clean-up call after the as-of date, when it was still the deal's. `outstanding`
    is the disclosures' outstanding balance (loans beyond `th.m4` DPD left out); the cost is weighted by all principal
    outstanding, as the blended funding cost (`funding`): an institution's on file, a deal's its notes' coupons."""
    kind = "f.kind" if costs else "NULL"  # an institution's kind: a trust's loans are their own source
    source, model = funding_source_sql("l.funder_as_of", kind), platform_model_sql("l.business_model", "l.channel")
    sel, grp = group_cols(by, source, model)
    codes, cost_of, join = [], [], ""
    if costs:
        codes.append("f.code")
        cost_of.append("f.funding_cost_ppm")
        join += " LEFT JOIN institutions f ON f.code = l.funder_as_of"
    if deals:
        codes.append("d.funder")
        cost_of.append("d.cost_ppm")
        join += f" LEFT JOIN {DEAL_TERMS} d ON d.funder = l.funder_as_of"
    code = f"COALESCE({', '.join(codes)})" if len(codes) > 1 else (codes or ["NULL"])[0]
    cost = f"COALESCE({', '.join(cost_of)}, 0)" if cost_of else "0"
    sold = f" LEFT JOIN {transfers_sql()} t ON t.loan_id = x.loan_id" if deals else ""
    before_sale = (
        f" WHEN t.transfer_day > {as_of} THEN '{PLATFORM}' WHEN t.left_day > {as_of} THEN t.deal_funder"
        if deals
        else ""
    )
    return f"""
SELECT {sel}{source} AS source, {model} AS platform_model,
  SUM(CASE WHEN {dpd_sql(as_of)} <= {th.m4} THEN l.outstanding ELSE 0 END) AS outstanding,
  SUM(CASE WHEN {code} IS NULL THEN 0 ELSE l.outstanding END) AS covered_balance,
  SUM(CASE WHEN {code} IS NULL THEN l.outstanding ELSE 0 END) AS uncovered_balance,
  SUM(CAST(l.outstanding AS DECIMAL(38, 0)) * {cost}) AS balance_cost_ppm
FROM (SELECT x.*, CASE WHEN p.payout_day > {as_of} THEN x.institution{before_sale} ELSE o.funder END AS funder_as_of
      FROM lf x JOIN loans o ON o.id = x.loan_id
      LEFT JOIN (SELECT j.loan_id, MIN(e.business_day) AS payout_day
                 FROM journal_entries e JOIN journal_lines j ON j.entry_id = e.id
                 WHERE e.kind = '{GUARANTEE_PAYOUT}' GROUP BY j.loan_id) p ON p.loan_id = x.loan_id{sold}
      WHERE x.outstanding > 0) l{join}{grp}"""


# The terms of each deal issued, as `compute` registers them from `deals` and `deal_tranches`: deal_id, funder,
# transfer_day (its loans moved to it on its cut-off day, the day it was issued), cost_ppm (its notes' coupons
# weighted by their balances, `openice.servicing.sources.deal_cost_ppm`; NULL without notes) and derecognise (1 or 0).
DEAL_TERMS = "abs_deal_terms"


def deals() -> str:
    """The deals issued: each one's ABS issued is its pool balance, in its currency, on its cut-off day."""
    return "SELECT id, funder, currency, derecognise, cut_off_day, pool_balance FROM abs_deals ORDER BY id"


def deal_tranches() -> str:
    return "SELECT deal_id, balance, coupon FROM abs_tranches ORDER BY deal_id, balance"


def transfers_sql(derecognised: bool = False) -> str:
    """Each pool loan with its deal's funder, the day it moved to the deal (its cut-off day, or the day after the
    month-end a revolving deal bought it) and the day it came back to the platform at a clean-up call (NULL while it
    is the deal's) (`derecognised`: only the deals that took it off the platform's balance sheet), as a subquery."""
    where = " WHERE d.derecognise = 1" if derecognised else ""
    return (
        "(SELECT pl.loan_id, d.funder AS deal_funder, COALESCE(pl.joined_day, d.transfer_day) AS transfer_day,"
        f" pl.left_day FROM abs_pool_loans pl JOIN {DEAL_TERMS} d ON d.deal_id = pl.deal_id{where})"
    )


def vintages(by: Sequence[str]) -> str:
    """Balance on the day each loan first crossed 30+ and 90+, by origination month and month on book."""
    mob = "CASE WHEN l.first{n} IS NULL THEN -1 ELSE " + month_key_sql("l.first{n}") + " - l.origination_month END"
    sel, grp = group_cols(by, "l.origination_month", mob.format(n=30), mob.format(n=90))
    return f"""
SELECT {sel}l.origination_month, {mob.format(n=30)} AS mob30, {mob.format(n=90)} AS mob90,
  SUM(l.principal) AS principal, SUM(l.bal30) AS bal30, SUM(l.bal90) AS bal90
FROM lf l{grp}"""


def month_end_buckets(by: Sequence[str], from_day: int, as_of: int, th: Thresholds) -> str:
    """Month-end snapshot balances by bucket, for roll rates and the delinquency trend."""
    bucket = th.bucket_sql("s.dpd")
    sel, grp = group_cols(by, "s.as_of_day", bucket)
    return f"""
SELECT {sel}s.as_of_day, {bucket} AS bucket, SUM(s.principal_outstanding) AS balance
FROM portfolio_snapshots s JOIN lf l ON l.loan_id = s.loan_id
WHERE s.status <> 'written_off' AND s.as_of_day >= {from_day} AND s.as_of_day <= {as_of}{grp}"""


def revenue(by: Sequence[str], start: int, end: int, deals: bool = False) -> str:
    """Income of the period by revenue line: the ledger lines are summed per split, business model, account and
    whether the loan was sold off the balance sheet by then (`deals`: the source has the deals issued) first, so that
    the line's CASE (text comparisons) runs on those few rows, not on every line."""
    line = (
        "CASE "
        + " ".join(
            f"WHEN {cond.format(m='l.business_model', a='l.account', s='l.sold')} THEN '{name}'"
            for name, cond in REVENUE_LINES
        )
        + " END"
    )
    sel, grp = group_cols(by, line)
    held = "t.transfer_day <= e.business_day AND (t.left_day IS NULL OR e.business_day < t.left_day)"
    sold = f"CASE WHEN {held} THEN 1 ELSE 0 END" if deals else "0"
    keys = ", ".join(dict.fromkeys([*(f"l.{name}" for name in by), "l.business_model", "j.account"]))
    accounts = ", ".join(f"'{a}'" for a in INCOME_ACCOUNTS)
    join = f" LEFT JOIN {transfers_sql(derecognised=True)} t ON t.loan_id = j.loan_id" if deals else ""
    return f"""
SELECT {sel}{line} AS line, -SUM(l.amount) AS amount
FROM (SELECT {keys}, {sold} AS sold, SUM(j.amount) AS amount
      FROM journal_lines j JOIN journal_entries e ON e.id = j.entry_id
      JOIN ({loans_dims()}) l ON l.loan_id = j.loan_id{join}
      WHERE e.business_day >= {start} AND e.business_day <= {end} AND j.account IN ({accounts})
      GROUP BY {keys}{", " + sold if deals else ""}) l{grp}"""


def provision_charge(by: Sequence[str], start: int, end: int) -> str:
    """The provision for contingent liabilities charged in the period (net of releases), from the ledger."""
    sel, grp = group_cols(by)
    return f"""
SELECT {sel}SUM(j.amount) AS charge
FROM journal_lines j JOIN journal_entries e ON e.id = j.entry_id JOIN ({loans_dims()}) l ON l.loan_id = j.loan_id
WHERE j.account = 'provision_expense' AND e.business_day >= {start} AND e.business_day <= {end}{grp}"""


def loans_dims() -> str:
    """Split dimensions of every loan, for the ledger metrics (the ledger also carries loans disbursed after
    the as-of date). Joined as a subquery, not stored: an engine then reads only the columns a query uses."""
    return f"""
SELECT l.id AS loan_id, l.business_model,
  CASE WHEN l.business_model = 'on-balance-sheet' THEN 'capital-heavy' ELSE l.business_model END AS model_group,
  l.original_funder AS institution, l.product_code AS product, l.channel,
  {month_key_sql("l.disbursed_day")} AS origination_month
FROM loans l"""


def model_monitoring(by: Sequence[str]) -> str:
    """Predicted PD against realised default (90+ DPD or written off) by origination month and grade."""
    sel, grp = group_cols(by, "l.origination_month", "p.grade")
    return f"""
SELECT {sel}l.origination_month, p.grade, COUNT(*) AS loans, SUM(p.pd_ppm) AS pd_ppm_sum,
  SUM(CASE WHEN l.first90 IS NOT NULL OR l.wo = 1 THEN 1 ELSE 0 END) AS defaulted
FROM lf l JOIN loan_pd p ON p.loan_id = l.loan_id{grp}"""


def stored_pds() -> str:
    """The PD and grade of the decision behind each loan (drawdown -> credit line), for model monitoring: the PD in
    parts per million, rounded half-up with FLOOR (which every engine computes alike, unlike ROUND's ties)."""
    return """
SELECT d.loan_id, CAST(FLOOR(c.pd * 1000000 + 0.5) AS BIGINT) AS pd_ppm, c.grade
FROM drawdowns d JOIN credit_lines c ON c.id = d.line_id
WHERE d.loan_id IS NOT NULL AND c.pd IS NOT NULL"""


def currencies() -> str:
    """The currencies of the loans' products: the unit of every money figure."""
    return "SELECT DISTINCT p.currency FROM loans l JOIN products p ON p.code = l.product_code ORDER BY p.currency"


def charge_offs(by: Sequence[str], start: int, end: int) -> str:
    """Principal charged off in the period (the write-off entries' credit to the loan's principal) and what was
    recovered in it (the platform's and the institutions' recoveries), from the ledger."""
    sel, grp = group_cols(by)
    principal, write_off = ledger.sql_name(ledger.LOAN_PRINCIPAL), "'write_off'"
    recovered = accounts_sql(ledger.RECOVERY_INCOME, ledger.INSTITUTION_RECOVERY_INCOME)
    return f"""
SELECT {sel}SUM(CASE WHEN e.kind = {write_off} AND j.account = {principal} THEN -j.amount ELSE 0 END) AS charged_off,
  SUM(CASE WHEN j.account IN {recovered} THEN -j.amount ELSE 0 END) AS recovered
FROM journal_lines j JOIN journal_entries e ON e.id = j.entry_id JOIN ({loans_dims()}) l ON l.loan_id = j.loan_id
WHERE e.business_day >= {start} AND e.business_day <= {end}
  AND ((e.kind = {write_off} AND j.account = {principal}) OR j.account IN {recovered}){grp}"""


def provision_coverage(by: Sequence[str], as_of: int, th: Thresholds) -> str:
    """Provisions held at the as-of date (the guarantee provision and the loan-loss allowance, from the ledger)
    against the outstanding principal 91-180 DPD of the loans whose credit risk the platform bears (capital-heavy,
    on balance sheet included)."""
    sel, grp = group_cols(by)
    held = accounts_sql(ledger.GUARANTEE_PROVISION, ledger.LOAN_LOSS_ALLOWANCE)
    dpd = dpd_sql(as_of)
    return f"""
SELECT {sel}COALESCE(SUM(p.held), 0) AS provisions_held,
  SUM(CASE WHEN l.model_group = 'capital-heavy' AND {th.bucket_sql(dpd)} = '{LAST}' THEN l.outstanding ELSE 0 END)
    AS at_risk_90_plus
FROM lf l LEFT JOIN (
  SELECT j.loan_id, -SUM(j.amount) AS held FROM journal_lines j JOIN journal_entries e ON e.id = j.entry_id
  WHERE j.account IN {held} AND e.business_day <= {as_of} GROUP BY j.loan_id) p ON p.loan_id = l.loan_id{grp}"""


def registered_users(as_of: int) -> str:
    return f"SELECT COUNT(*) AS users FROM borrowers WHERE registered_day <= {as_of}"


def approved_users(as_of: int) -> str:
    return (
        f"SELECT COUNT(DISTINCT borrower_id) AS users FROM credit_lines "
        f"WHERE approved_day IS NOT NULL AND approved_day <= {as_of}"
    )


# Whole numbers standing alone (not part of a name such as bal30, nor of a decimal): the day numbers and
# thresholds a statement is built with.
_INTEGER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_MARK, _MARKED = 9_100_000_000_000, re.compile(r"(?<![\w.])91\d{11}(?![\w.])")


def for_dialect(sql: str, dialect: str) -> str:
    """The canonical (DuckDB) text, transpiled for another engine.

    Transpiling is most of a small book's computation on PostgreSQL, and the statements differ from one period or
    as-of date to the next only in their numbers: each shape is transpiled once, with its whole numbers stood in
    for by marks, and the numbers are put back. A shape whose marks do not come back one for one is transpiled
    as it is."""
    if dialect == "duckdb":
        return sql
    numbers: list[str] = []

    def mark(match: re.Match[str]) -> str:
        numbers.append(match.group())
        return str(_MARK + len(numbers) - 1)

    if _MARKED.search(sql):
        return _transpile(sql, dialect)
    shape = _transpile(_INTEGER.sub(mark, sql), dialect)
    found = [int(m) - _MARK for m in _MARKED.findall(shape)]
    if sorted(found) != list(range(len(numbers))):
        return _transpile(sql, dialect)
    return _MARKED.sub(lambda m: numbers[int(m.group()) - _MARK], shape)


@lru_cache(maxsize=512)
def _transpile(sql: str, dialect: str) -> str:
    return sqlglot.transpile(sql, read="duckdb", write=dialect)[0]
