"""What the platform tells a borrower about a loan on a given day: a reminder before an installment falls due, a
notice while it is overdue, and word that the loan is closed or written off. Derived from the loan itself, so the
messages always agree with the schedule and the balances the borrower sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from openice.servicing.loan import LoanAccount, LoanStatus

REMIND_DAYS = 3  # a reminder shows from this many days before the due date


class NoticeKind(StrEnum):
    DUE_SOON = "due_soon"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"
    CLOSED = "closed"
    WRITTEN_OFF = "written_off"


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    loan_id: int
    currency: str
    amount: int  # minor units: what to pay (due, overdue), 0 for closed
    on: date  # the due date, or the day the loan closed
    days_past_due: int = 0


def notices(loan: LoanAccount, today: date, remind_days: int = REMIND_DAYS) -> list[Notice]:
    """The loan's messages for `today`, most urgent first."""
    currency = loan.terms.currency
    if loan.status is LoanStatus.CLOSED:
        return [Notice(NoticeKind.CLOSED, loan.loan_id, currency, 0, loan.closed_on or today)]
    if loan.status is LoanStatus.WRITTEN_OFF:
        return [Notice(NoticeKind.WRITTEN_OFF, loan.loan_id, currency, 0, loan.closed_on or today)]
    found = []
    if loan.days_past_due > 0:
        found.append(Notice(NoticeKind.OVERDUE, loan.loan_id, currency, loan.total_due(), today, loan.days_past_due))
    upcoming = next((i for i in loan.installments if i.due_date >= today and i.unpaid > 0), None)
    if upcoming is not None and (upcoming.due_date - today).days <= remind_days:
        kind = NoticeKind.DUE_TODAY if upcoming.due_date == today else NoticeKind.DUE_SOON
        found.append(Notice(kind, loan.loan_id, currency, upcoming.unpaid, upcoming.due_date))
    return found
