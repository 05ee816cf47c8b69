"""The delinquency bucket ladder, defined once (pure, no I/O).

The per-loan rules read it through `delinquency_bucket`; the set-based end of day (and anything else that buckets
loans in SQL) gets the same ladder as a `CASE` expression from `bucket_sql`, so the two cannot disagree. Collections
stages and the provision rates are keyed by these names; analytics' disclosure ladder starts from the same rungs.
"""

from __future__ import annotations

from collections.abc import Sequence

CURRENT = "C"
LAST = "M4+"  # past the last rung, up to the product's write-off DPD
WRITTEN_OFF = "WO"  # beyond the write-off DPD, and every written-off loan
# (bucket, the most days past due it holds), least to most severe.
LADDER: tuple[tuple[str, int], ...] = ((CURRENT, 0), ("M1", 30), ("M2", 60), ("M3", 90))
BUCKETS = tuple(name for name, _ in LADDER) + (LAST,)  # the buckets of a live loan


def delinquency_bucket(days_past_due: int, write_off_dpd: int) -> str:
    """C current, M1 1-30, M2 31-60, M3 61-90, M4+ 91 to the write-off DPD, WO beyond."""
    if days_past_due > write_off_dpd:
        return WRITTEN_OFF
    return next((name for name, upper in LADDER if days_past_due <= upper), LAST)


def _whens(dpd: str, rungs: Sequence[tuple[str, int]]) -> str:
    return " ".join(f"WHEN {dpd} <= {upper} THEN '{name}'" for name, upper in rungs)


def ladder_sql(dpd: str, rungs: Sequence[tuple[str, int]], beyond: str) -> str:
    """A ladder as a SQL `CASE` over the days-past-due expression `dpd`: the first rung whose bound holds it."""
    return f"CASE {_whens(dpd, rungs)} ELSE '{beyond}' END"


def bucket_sql(dpd: str, write_off_dpd: str) -> str:
    """`delinquency_bucket` as SQL, over the SQL expressions of the days past due and the write-off DPD."""
    return f"CASE WHEN {dpd} > {write_off_dpd} THEN '{WRITTEN_OFF}' {_whens(dpd, LADDER)} ELSE '{LAST}' END"
