"""The set-based end of day gives, loan by loan, exactly what the per-loan reference rules give."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from openice.servicing import ledger
from openice.servicing.eod import run_until
from openice.servicing.loan import BusinessModel, LoanAccount, replay
from openice.servicing.products import demo_products
from openice.servicing.repository import servicing_unit
from openice.storage import servicing_tables
from openice.storage.days import from_day
from tests.conftest import START


def originate_mix(servicing, count: int, seed: int) -> list[int]:  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    products = demo_products()
    ids = []
    for k in range(count):
        product = rnd.choice(products)
        model = rnd.choice(["capital-light", "capital-heavy", "on-balance-sheet"])
        # Most institutions earn less than the borrower pays: the platform books the spread.
        funder_rate = rnd.choice([None, product.nominal_rate * Decimal("0.7"), product.nominal_rate - Decimal("0.03")])
        result = servicing.originate(
            product_code=product.code,
            principal=rnd.randint(500, 50_000) * 100,
            tenor=rnd.choice(product.tenors),
            funder="bank-a",
            business_model=model,
            guarantee_payout_dpd=60 if model == "capital-heavy" else None,
            idempotency_key=f"orig-{seed}-{k}",
            funder_rate=funder_rate,
        )
        ids.append(result["loan_id"])
    return ids


def reference(uow, loan_id: int, business_date: date) -> LoanAccount:  # type: ignore[no-untyped-def]
    """The loan as the per-loan rules alone make it, from origination and its payments."""
    row = uow.loans.row(loan_id)
    product = uow.products.get(row.product_code)
    return replay(
        lambda: LoanAccount.originate(
            loan_id,
            product,
            row.principal,
            row.tenor,
            from_day(row.disbursed_day),
            row.original_funder,
            BusinessModel(row.business_model),
            None,
            row.guarantee_payout_dpd,
            Decimal(row.funder_rate_ppm) / 1_000_000,
        ),
        uow.loans.live_transactions(loan_id),
        business_date,
    )


def paid(loan: LoanAccount) -> list[tuple]:
    return [(i.due_date, i.principal_paid, i.interest_paid, i.fee_paid, i.booked) for i in loan.installments]


def test_eod_equals_per_loan_rules_with_payments(servicing, engine) -> None:  # type: ignore[no-untyped-def]
    ids = originate_mix(servicing, 60, seed=7)
    rnd = random.Random(3)
    target = date(2026, 10, 20)
    day = START
    while day < target:
        day = day + timedelta(days=rnd.randint(10, 25))
        day = min(day, target)
        run_until(engine, day)
        for loan_id in rnd.sample(ids, 15):
            loan = servicing.loan(loan_id)
            if loan.status.value != "active":
                continue
            due = loan.total_due()
            if due and rnd.random() < 0.7:
                servicing.repay(loan_id, due if rnd.random() < 0.8 else max(1, due // 2), f"r-{loan_id}-{day}")
            elif rnd.random() < 0.1:
                servicing.prepay(loan_id, max(1, loan.payoff_amount(day) // 3), f"p-{loan_id}-{day}")
    with servicing_unit(servicing.units, readonly=True) as uow:
        for loan_id in ids:
            stored = uow.loans.get(loan_id)
            ref = reference(uow, loan_id, target)
            assert stored.status == ref.status, loan_id
            assert stored.days_past_due == ref.days_past_due, loan_id
            assert stored.late_fees_charged == ref.late_fees_charged, loan_id
            for account in ledger.SNAPSHOT_ACCOUNTS:
                assert stored.balance(account) == ref.balance(account), (loan_id, account)
            books = uow.loans.ledger_balances(loan_id)
            expected = ledger.net_by_account(p for _, _, postings in ref.journal for p in postings)
            assert books == expected, loan_id
            assert paid(stored) == paid(ref), loan_id
        assert uow.conn.execute(select(func.sum(servicing_tables.journal_lines.c.amount))).scalar_one() == 0
        # The run exercised referral fees, provision true-ups, payouts into the allowance, interest after payouts,
        # the platform's interest spread, non-accrual (interest and late fees held in suspense).
        accounts = set(uow.conn.execute(select(servicing_tables.journal_lines.c.account).distinct()).scalars())
        assert {
            ledger.REFERRAL_FEE_INCOME,
            ledger.PROVISION_EXPENSE,
            ledger.GUARANTEE_PROVISION,
            ledger.LOAN_LOSS_ALLOWANCE,
            ledger.PLATFORM_INTEREST_INCOME,
            ledger.INTEREST_SPREAD_INCOME,
            ledger.INTEREST_SUSPENSE,
            ledger.PENALTY_SUSPENSE,
        } <= accounts
