"""The pool cut, its strata and the deal's ledger entries, pure and by hand: eligibility (grades, products, tenor,
days past due), the borrower and province limits as shares of the pool balance, the buckets, a month's collections
from journal lines, a reversal carried into the next month, and the waterfall's payments balanced to the cent."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from openice.errors import ValidationError
from openice.funding import books
from openice.funding.books import Line
from openice.funding.deal import Deal
from openice.funding.pool import PoolLoan, cut, months_on_book, share, stratify
from openice.funding.waterfall import Collection, run_waterfall
from openice.servicing import ledger

AS_OF = date(2026, 6, 30)


def loan(n: int, balance: int, **changes: Any) -> PoolLoan:
    base = PoolLoan(
        loan_id=n,
        borrower_id=f"b{n}",
        product="CASH-EI",
        grade="B",
        province="Guangdong",
        funder="platform",
        business_model="on-balance-sheet",
        status="active",
        dpd=0,
        balance=balance,
        rate_ppm=150_000,
        remaining_tenor=6,
        disbursed_on=date(2026, 1, 15),
    )
    return replace(base, **changes)


def deal(**eligibility: Any) -> Deal:
    return Deal.from_dict(
        {
            "name": "T",
            "currency": "CNY",
            "pool_balance": "10000.00",
            "tranches": [{"name": "A", "balance": "8000.00", "coupon": 0.05}, {"name": "R", "balance": "2000.00"}],
            "eligibility": eligibility,
        }
    )


def test_eligibility_leaves_each_loan_out_for_its_reason() -> None:
    book = [
        loan(1, 100_000),
        loan(2, 100_000, funder="bank-a", business_model="capital-light"),
        loan(3, 100_000, dpd=3),
        loan(4, 100_000, remaining_tenor=1),
        loan(5, 100_000, product="SME-IO"),
        loan(6, 100_000, grade="E"),
        loan(7, 100_000, grade=None),  # no grade on record: 'unknown', not among A-C
        loan(8, 0),  # paid down to nothing
    ]
    rules = deal(min_remaining_tenor=2, products=["CASH-EI"], grades=["A", "B", "C"]).eligibility
    taken = cut(book, rules, 1_000_000)
    assert [x.loan_id for x in taken.loans] == [1]
    assert taken.left == {
        "grade": 2,
        "not active": 1,
        "not the platform's own": 1,
        "past due": 1,
        "product": 1,
        "remaining tenor": 1,
    }


def test_a_past_due_loan_goes_in_when_current_only_is_off() -> None:
    assert len(cut([loan(1, 100, dpd=5)], deal(current_only=False).eligibility, 100).loans) == 1


def test_limits_are_shares_of_the_pool_balance_taken_oldest_first() -> None:
    # Pool balance 10,000.00: one borrower at most 20% (2,000.00), Zhejiang at most 30% (3,000.00).
    book = [
        loan(5, 150_000, borrower_id="x"),
        loan(2, 150_000, borrower_id="x", province="Zhejiang"),  # taken first: the loans go by number
        loan(3, 200_000, province="Zhejiang"),  # Zhejiang 3,500.00 > 3,000.00: left
        loan(4, 100_000, province="Zhejiang"),  # Zhejiang 2,500.00: taken
        loan(6, 700_000),  # within the pool balance (9,500.00), but 7,000.00 for one borrower: left
        loan(7, 200_000),  # exactly 20%: taken
    ]
    rules = deal(max_borrower_share=0.2, province_limits={"Zhejiang": 0.3}).eligibility
    taken = cut(book, rules, 1_000_000)
    # x: loan 2 (1,500.00) is taken, then loan 5 would make 3,000.00 > 2,000.00.
    assert [x.loan_id for x in taken.loans] == [2, 4, 7]
    assert taken.balance == 450_000
    assert taken.left == {"borrower share": 2, "province limit": 1}


def test_strata_buckets_and_shares() -> None:
    loans = [
        loan(1, 499_999, rate_ppm=119_999, remaining_tenor=6, disbursed_on=date(2026, 3, 31)),  # 2 months on book
        loan(2, 500_000, rate_ppm=120_000, remaining_tenor=7, disbursed_on=date(2026, 3, 30)),  # 3 months
        loan(
            3, 5_000_000, rate_ppm=240_000, remaining_tenor=25, disbursed_on=date(2025, 5, 30), grade="A"
        ),  # 13 months
    ]
    strata = {(s.dimension, s.bucket): (s.count, s.balance) for s in stratify(loans, "CNY", AS_OF)}
    assert strata == {
        ("balance", "< 5,000"): (1, 499_999),
        ("balance", "5,000-10,000"): (1, 500_000),
        ("balance", "50,000+"): (1, 5_000_000),
        ("rate", "< 12%"): (1, 499_999),
        ("rate", "12%-18%"): (1, 500_000),
        ("rate", "24%+"): (1, 5_000_000),
        ("grade", "A"): (1, 5_000_000),
        ("grade", "B"): (2, 999_999),
        ("remaining_tenor", "1-6"): (1, 499_999),
        ("remaining_tenor", "7-12"): (1, 500_000),
        ("remaining_tenor", "25+"): (1, 5_000_000),
        ("province", "Guangdong"): (3, 5_999_999),
        ("seasoning", "0-3"): (2, 999_999),
        ("seasoning", "13+"): (1, 5_000_000),
    }
    # 999,999 of 5,999,999 is 0.166666...: 0.1667 half-up.
    assert share(999_999, 5_999_999) == Decimal("0.1667")


@pytest.mark.parametrize(
    ("disbursed", "months"),
    [(date(2026, 1, 15), 5), (date(2026, 1, 31), 4), (date(2026, 6, 30), 0), (date(2025, 6, 30), 12)],
)
def test_months_on_book(disbursed: date, months: int) -> None:
    assert months_on_book(disbursed, AS_OF) == months


@pytest.mark.parametrize(
    ("eligibility", "field"),
    [
        ({"grade": ["A"]}, "eligibility.grade"),
        ({"max_borrower_share": 0}, "eligibility.max_borrower_share"),
        ({"province_limits": {"Hubei": 1.5}}, "eligibility.province_limits.Hubei"),
        ({"min_remaining_tenor": 6, "max_remaining_tenor": 3}, "eligibility.max_remaining_tenor"),
        ({"min_remaining_tenor": -1}, "eligibility.min_remaining_tenor"),
        ({"cut_off": "2026-02-30"}, "eligibility.cut_off"),
        ({"products": []}, "eligibility.products"),
    ],
)
def test_bad_eligibility_is_refused_naming_its_field(eligibility: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        deal(**eligibility)
    assert refused.value.field == field


def test_the_residual_tranche_takes_the_pool_beyond_the_notes() -> None:
    sized = deal().sized_to(900_000)
    assert [t.balance for t in sized.tranches] == [800_000, 100_000] and sized.pool_balance == 900_000
    with pytest.raises(ValidationError) as refused:
        deal().sized_to(799_999)
    assert refused.value.field == "pool_balance"


def test_a_month_from_journal_lines() -> None:
    # Loan 1 pays 1,030.00: 1,000.00 principal and 30.00 interest; loan 2 is written off with 500.00 of principal and
    # 7.00 is recovered on loan 3 (written off earlier). Interest is the cash that was neither principal nor recovery.
    lines = [
        (Line(1, ledger.COLLECTIONS_CLEARING, 103_000), "repayment"),
        (Line(1, ledger.LOAN_PRINCIPAL, -100_000), "repayment"),
        (Line(2, ledger.LOAN_PRINCIPAL, -50_000), "write_off"),
        (Line(3, ledger.COLLECTIONS_CLEARING, 700), "recovery"),
        (Line(3, ledger.INSTITUTION_RECOVERY_INCOME, -700), "recovery"),
    ]
    month = books.month(lines)
    assert month.collection == Collection(0, 3_000, 100_000, 50_000, 700)
    assert month.cash == {1: 103_000, 3: 700}
    assert month.funder_results == {(3, ledger.INSTITUTION_RECOVERY_INCOME): -700}
    # Kept on balance sheet, the recovery is the platform's.
    assert books.kept(month) == [
        Line(3, ledger.RECOVERY_INCOME, -700),
        Line(3, ledger.INSTITUTION_RECOVERY_INCOME, 700),
    ]


def test_a_reversal_is_carried_into_the_next_months() -> None:
    # Month 2 reverses 1,000.00 of month 1's principal and collects only 600.00: -400.00 is carried, taken off month 3.
    months = [Collection(0, 10, 100_000, 0, 0), Collection(0, 20, -40_000, 0, 0), Collection(0, 30, 90_000, 5, 0)]
    assert books.fed(months) == [
        Collection(1, 10, 100_000, 0, 0),
        Collection(2, 20, 0, 0, 0),
        Collection(3, 30, 50_000, 5, 0),
    ]


def test_the_payments_entry_balances_and_empties_the_collection_account() -> None:
    d = Deal.from_dict(
        {
            "name": "T",
            "currency": "CNY",
            "pool_balance": "10000.00",
            "tranches": [{"name": "A", "balance": "8000.00", "coupon": 0.06}, {"name": "R", "balance": "2000.00"}],
            "fees": [{"name": "servicing", "annual_rate": 0.012}],
            "reserve_account": {"target": "50.00", "initial": "20.00"},
        }
    )
    # Available 1,500.00 + 20.00; fee 1.2% / 12 x 10,000.00 = 10.00; A 0.5% x 8,000.00 = 40.00; principal 1,000.00 to A;
    # the reserve filled to 50.00 (+30.00); residual income 1,520.00 - 10.00 - 40.00 - 1,000.00 - 50.00 = 420.00.
    (period,) = run_waterfall(d, [Collection(1, 50_000, 100_000, 0, 0)])
    entry = books.payments(7, {7: 90_000, 9: 60_000}, period, 2_000, derecognise=False)
    net = ledger.net_by_account(ledger.Posting(x.account, x.amount) for x in entry)
    assert net == {
        ledger.COLLECTIONS_CLEARING: -150_000,
        ledger.ABS_FEES_PAID: 1_000,
        ledger.ABS_NOTE_INTEREST_PAID: 4_000,
        ledger.ABS_SECURED_BORROWING: 100_000,
        ledger.ABS_RESERVE_ACCOUNT: 3_000,
        ledger.ABS_RESIDUAL_PAID: 42_000,
    }
    # The waterfall's own lines stand on the anchor loan's books; the other loans only remit their cash.
    remittance = (ledger.COLLECTIONS_CLEARING, ledger.ABS_COLLECTION_ACCOUNT)
    assert {x.loan_id for x in entry if x.account not in remittance} == {7}
