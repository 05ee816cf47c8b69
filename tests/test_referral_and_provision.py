"""Referral fees at origination and the provision for contingent liabilities, worked by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from openice.errors import ValidationError
from openice.servicing import ledger
from openice.servicing.loan import BusinessModel, LoanAccount, LoanStatus
from openice.servicing.products import LoanProduct, RepaymentMethod

FLAT = LoanProduct(
    code="FLAT",
    currency="CNY",
    tenors=(3,),
    method=RepaymentMethod.EQUAL_PRINCIPAL,
    nominal_rate=Decimal(0),
    referral_fee_bps=50,
    referral_fee_flat=300,
)
START = date(2026, 1, 15)


def balances_of(loan: LoanAccount) -> dict[str, int]:
    return ledger.net_by_account(p for _, _, postings in loan.journal for p in postings)


def run(loan: LoanAccount, start: date, until: date) -> None:
    """Close every business day from `start` up to (not including) `until`."""
    day = start
    while day < until:
        loan.close_day(day)
        day += timedelta(days=1)


def guaranteed(principal: int = 300_000) -> LoanAccount:
    return LoanAccount.originate(
        1, FLAT, principal, 3, START, "bank-a", BusinessModel.CAPITAL_HEAVY, guarantee_payout_dpd=30
    )


@pytest.mark.parametrize(("principal", "fee"), [(10_050, 50 + 300), (10_100, 51 + 300), (300_000, 1_500 + 300)])
def test_referral_fee_is_basis_points_half_up_plus_flat(principal: int, fee: int) -> None:
    loan = LoanAccount.originate(1, FLAT, principal, 3, START, "bank-a", BusinessModel.CAPITAL_LIGHT)
    assert balances_of(loan)[ledger.REFERRAL_FEE_RECEIVABLE] == fee == -balances_of(loan)[ledger.REFERRAL_FEE_INCOME]


@pytest.mark.parametrize("model", [BusinessModel.ON_BALANCE_SHEET, BusinessModel.TECHNOLOGY])
def test_only_capital_light_institutions_pay_a_referral_fee(model: BusinessModel) -> None:
    loan = LoanAccount.originate(1, FLAT, 300_000, 3, START, "bank-a", model)
    assert ledger.REFERRAL_FEE_INCOME not in balances_of(loan)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"referral_fee_bps": -1}, "referral_fee_bps"),
        ({"referral_fee_bps": 10_001}, "referral_fee_bps"),
        ({"referral_fee_flat": -5}, "referral_fee_flat"),
        ({"provision_rates": ["1%"] * 4}, "provision_rates"),
        ({"provision_rates": ["1%", "2%", "3%", "4%", "101%"]}, "provision_rates"),
        ({"provision_rates": ["1%", "2%", "3%", "4%", "x"]}, "provision_rates"),
        ({"referral_fee_bps": True}, "referral_fee_bps"),
    ],
)
def test_bad_terms_name_their_field(changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        LoanProduct.from_dict({**FLAT.to_dict(), **changes})
    assert error.value.field == field


def test_terms_survive_the_stored_form() -> None:
    product = LoanProduct.from_dict({**FLAT.to_dict(), "provision_rates": ["0.5%", "10%", "40%", "70%", "100%"]})
    assert LoanProduct.from_dict(product.to_dict()) == product
    assert product.provision_rates[0] == Decimal("0.005")


def test_provision_is_trued_up_at_month_end_and_consumed_by_the_payout() -> None:
    """300,000 guaranteed, never paid, payout at 30 DPD. Default rates C 1%, M1 20%.

    01-31: current, 1% x 300,000 = 3,000.  02-28: 14 DPD (M1), 20% x 300,000 = 60,000 (+57,000).
    03-16: payout at 30 DPD; the 60,000 becomes the allowance.  08-14: written off beyond 180 DPD,
    the allowance absorbs 60,000 of the 300,000, credit loss 240,000."""
    loan = guaranteed()
    run(loan, START, date(2026, 2, 1))
    assert loan.balance(ledger.GUARANTEE_PROVISION) == -3_000 == -balances_of(loan)[ledger.PROVISION_EXPENSE]
    assert [on for on, kind, _ in loan.journal if kind == "provision"] == [date(2026, 1, 31)]
    run(loan, date(2026, 2, 1), date(2026, 3, 1))
    assert loan.bucket == "M1" and loan.balance(ledger.GUARANTEE_PROVISION) == -60_000
    run(loan, date(2026, 3, 1), date(2026, 3, 17))
    assert loan.guarantee_paid and loan.balance(ledger.GUARANTEE_PROVISION) == 0
    assert loan.balance(ledger.LOAN_LOSS_ALLOWANCE) == -60_000
    run(loan, date(2026, 3, 17), date(2026, 8, 20))
    books = balances_of(loan)
    assert loan.status is LoanStatus.WRITTEN_OFF and loan.closed_on == date(2026, 8, 14)
    assert books[ledger.PROVISION_EXPENSE] == 60_000 and books[ledger.CREDIT_LOSS] == 240_000
    assert ledger.GUARANTEE_PROVISION not in books and ledger.LOAN_LOSS_ALLOWANCE not in books
    assert sum(books.values()) == 0


def test_the_provision_covers_the_interest_a_payout_would_pay_too() -> None:
    """300,000 at 12% (30/360), 3 equal-principal months, never paid: the first installment, due 02-15, holds
    3,000 of interest (1% of 300,000).

    01-31: nothing due yet, 1% x 300,000 = 3,000.  02-28: 14 DPD (M1) with 3,000 of interest due,
    20% x 303,000 = 60,600 (+57,600): the payout would pay the institution that interest as well."""
    product = LoanProduct(
        code="I12", currency="CNY", tenors=(3,), method=RepaymentMethod.EQUAL_PRINCIPAL, nominal_rate=Decimal("0.12")
    )
    loan = LoanAccount.originate(
        1, product, 300_000, 3, START, "bank-a", BusinessModel.CAPITAL_HEAVY, guarantee_payout_dpd=30
    )
    run(loan, START, date(2026, 3, 1))
    assert (loan.bucket, loan.balance(ledger.INTEREST_RECEIVABLE)) == ("M1", 3_000)
    charges = [
        sum(p.amount for p in postings if p.account == ledger.PROVISION_EXPENSE)
        for _, kind, postings in loan.journal
        if kind == "provision"
    ]
    assert charges == [3_000, 57_600] and loan.balance(ledger.GUARANTEE_PROVISION) == -60_600


def test_a_repaid_loan_releases_its_provision() -> None:
    loan = guaranteed()
    run(loan, START, date(2026, 2, 1))
    assert loan.balance(ledger.GUARANTEE_PROVISION) == -3_000
    loan.prepay(loan.payoff_amount(date(2026, 2, 1)), date(2026, 2, 1))
    assert loan.status is LoanStatus.CLOSED and ledger.PROVISION_EXPENSE not in balances_of(loan)
    assert loan.balance(ledger.GUARANTEE_PROVISION) == 0


def test_provision_rounds_half_up() -> None:
    assert guaranteed(10_050).provision_target() == 101  # 1% of 100.50 = 1.005 -> 1.01


def test_interest_after_the_payout_is_the_platforms() -> None:
    """Interest recognised up to the payout day is the institution's; from then on it is the platform's."""
    product = LoanProduct(
        code="I12", currency="CNY", tenors=(3,), method=RepaymentMethod.EQUAL_PRINCIPAL, nominal_rate=Decimal("0.12")
    )
    loan = LoanAccount.originate(
        1, product, 300_000, 3, START, "bank-a", BusinessModel.CAPITAL_HEAVY, guarantee_payout_dpd=30
    )
    run(loan, START, date(2026, 4, 20))
    (payout_day,) = [on for on, kind, _ in loan.journal if kind == "guarantee_payout"]
    by_account: dict[str, list[date]] = {ledger.INTEREST_INCOME: [], ledger.PLATFORM_INTEREST_INCOME: []}
    for on, _, postings in loan.journal:
        for p in postings:
            if p.account in by_account:
                by_account[p.account].append(on)
    assert payout_day == date(2026, 3, 16) and loan.funder == "platform"
    assert max(by_account[ledger.INTEREST_INCOME]) < payout_day < min(by_account[ledger.PLATFORM_INTEREST_INCOME])
    books = balances_of(loan)
    booked = sum(i.interest for i in loan.installments if i.booked)
    assert -(books[ledger.INTEREST_INCOME] + books[ledger.PLATFORM_INTEREST_INCOME]) == booked + books.get(
        ledger.INTEREST_ACCRUED, 0
    )
