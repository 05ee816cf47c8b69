"""The wall clock, read in one place: the moment a row was written, in UTC to the millisecond.

Business dates are not wall-clock time; they come from the business calendar (`servicing.repository.Calendar`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """A moment as rows store it: ISO 8601 to the millisecond, so stored moments compare as text."""
    return moment.isoformat(timespec="milliseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))
