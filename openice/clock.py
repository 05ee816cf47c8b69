"""The wall clock, read in one place: the moment a row was written, in UTC to the millisecond.

Business dates are not wall-clock time; they come from the business calendar (`servicing.repository.Calendar`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
