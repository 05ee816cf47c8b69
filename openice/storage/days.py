"""Dates as integer day numbers in storage (days since 1970-01-01)."""

from __future__ import annotations

from datetime import date, timedelta

EPOCH = date(1970, 1, 1)


def to_day(value: date) -> int:
    return (value - EPOCH).days


def from_day(day: int) -> date:
    return EPOCH + timedelta(days=day)


def opt_day(value: date | None) -> int | None:
    return None if value is None else to_day(value)


def opt_date(day: int | None) -> date | None:
    return None if day is None else from_day(day)
