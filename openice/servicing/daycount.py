"""Day-count conventions: the fraction of a year between two dates."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class DayCount(StrEnum):
    ACT_365 = "ACT/365"
    ACT_360 = "ACT/360"
    THIRTY_360 = "30/360"


def days_30_360(start: date, end: date) -> int:
    """US 30/360 (bond basis): day 31 counts as 30."""
    d1 = min(start.day, 30)
    d2 = end.day
    if d2 == 31 and d1 == 30:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def accrual_days(convention: DayCount, start: date, end: date) -> int:
    if convention is DayCount.THIRTY_360:
        return days_30_360(start, end)
    return (end - start).days


def year_basis(convention: DayCount) -> int:
    return 365 if convention is DayCount.ACT_365 else 360
