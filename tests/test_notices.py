"""The borrower's messages, read off the loan: a reminder in the days before a due date, the day itself, a notice
while overdue with what is owed, and the loan's end."""

from __future__ import annotations

from datetime import date, timedelta

from openice.servicing.loan import BusinessModel, LoanAccount
from openice.servicing.notices import REMIND_DAYS, NoticeKind, notices
from openice.servicing.products import demo_products

START = date(2026, 1, 15)


def loan() -> LoanAccount:
    product = next(p for p in demo_products() if p.code == "CASH-EI")
    return LoanAccount.originate(1, product, 1_200_000, 12, START, "bank-a", BusinessModel.CAPITAL_LIGHT)


def run_to(account: LoanAccount, day: date) -> None:
    """Close business days up to (not including) `day`, as end of day does."""
    current = START
    while current < day:
        account.close_day(current)
        current += timedelta(days=1)


def test_no_message_until_the_reminder_window() -> None:
    account = loan()
    first = account.installments[0].due_date
    assert notices(account, first - timedelta(days=REMIND_DAYS + 1)) == []
    [soon] = notices(account, first - timedelta(days=REMIND_DAYS))
    assert soon.kind is NoticeKind.DUE_SOON and soon.amount == account.installments[0].total and soon.on == first


def test_the_due_day_then_overdue_with_what_is_owed() -> None:
    account = loan()
    first = account.installments[0].due_date
    run_to(account, first)
    [today] = notices(account, first)
    assert today.kind is NoticeKind.DUE_TODAY and today.amount == account.installments[0].unpaid
    run_to(account, first + timedelta(days=3))
    account_notices = notices(account, first + timedelta(days=3))
    assert account_notices[0].kind is NoticeKind.OVERDUE
    assert (
        account_notices[0].amount == account.total_due()
        and account_notices[0].days_past_due == account.days_past_due > 0
    )


def test_a_paid_installment_is_not_reminded_and_a_closed_loan_says_so() -> None:
    account = loan()
    first = account.installments[0].due_date
    run_to(account, first)
    account.repay(account.total_due(), first)
    assert notices(account, first) == []
    account.prepay(account.payoff_amount(first), first)
    [closed] = notices(account, first)
    assert closed.kind is NoticeKind.CLOSED and closed.on == first
