"""Property tests of the per-loan rules over random products and random payment histories."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openice.errors import OpeniceError, ValidationError
from openice.money import round_half_up
from openice.servicing import ledger
from openice.servicing.daycount import DayCount
from openice.servicing.loan import BusinessModel, LoanAccount, LoanStatus, Transaction, replay
from openice.servicing.products import LoanProduct, PrepaymentMode, RepaymentMethod

START = date(2027, 12, 20)  # crosses the 2028 leap February


@st.composite
def products(draw: st.DrawFn) -> LoanProduct:
    method = draw(st.sampled_from(list(RepaymentMethod)))
    tenor = draw(st.sampled_from([1, 3, 6, 12]))
    return LoanProduct(
        code="P",
        currency="CNY",
        tenors=(tenor,),
        method=method,
        nominal_rate=Decimal(draw(st.integers(0, 3600))) / 10_000,
        day_count=draw(st.sampled_from(list(DayCount))),
        facilitation_fee_rate=Decimal(draw(st.integers(0, 300))) / 10_000,
        monthly_service_fee_rate=Decimal(draw(st.integers(0, 50))) / 10_000,
        late_fee_daily_rate=Decimal(draw(st.integers(0, 100))) / 100_000,
        late_fee_cap_rate=Decimal(draw(st.integers(0, 1000))) / 10_000,
        grace_days=draw(st.integers(0, 5)),
        prepayment_fee_rate=Decimal(draw(st.integers(0, 300))) / 10_000,
        write_off_dpd=draw(st.sampled_from([30, 90, 180])),
        non_accrual_dpd=draw(st.sampled_from([0, 20, 90])),
        guarantee_expected_loss_rate=draw(st.sampled_from([None, Decimal(0), Decimal("0.01"), Decimal("0.2")])),
        guarantee_margin_rate=Decimal(draw(st.integers(0, 50))) / 10_000,
        referral_fee_bps=draw(st.integers(0, 200)),
        referral_fee_flat=draw(st.integers(0, 1000)),
        provision_rates=tuple(
            Decimal(r) / 10_000 for r in sorted(draw(st.lists(st.integers(0, 10_000), min_size=5, max_size=5)))
        ),
    )


operations = st.lists(
    st.tuples(
        st.sampled_from(["eod", "eod", "eod", "repay", "prepay", "prepay_shorten", "payoff", "write_off", "recover"]),
        st.integers(1, 70),
        st.floats(0.01, 1.0),
    ),
    min_size=1,
    max_size=25,
)


def check_invariants(loan: LoanAccount, principal: int, product: LoanProduct) -> None:
    postings = [p for _, _, entry in loan.journal for p in entry]
    books = ledger.net_by_account(postings)
    referral = product.referral_fee(principal) if loan.terms.business_model is BusinessModel.CAPITAL_LIGHT else 0
    assert books.get(ledger.REFERRAL_FEE_RECEIVABLE, 0) == -books.get(ledger.REFERRAL_FEE_INCOME, 0) == referral
    # A provision is held only on a live guarantee, an allowance only on a loan the platform paid out on;
    # both are gone once the loan is closed or written off, and the provision never exceeds the principal.
    provision, allowance = -loan.balance(ledger.GUARANTEE_PROVISION), -loan.balance(ledger.LOAN_LOSS_ALLOWANCE)
    assert provision == 0 or (loan.guarantee_active and loan.status is LoanStatus.ACTIVE)
    assert allowance == 0 or (loan.guarantee_paid and loan.status is LoanStatus.ACTIVE)
    assert provision <= principal and allowance <= principal
    if loan.status is LoanStatus.CLOSED:
        assert books.get(ledger.PROVISION_EXPENSE, 0) == 0, "a repaid loan leaves no provision charge"
    # Non-accrual: what waits in suspense is never more than is still receivable, and nothing waits on a loan that
    # is closed or written off.
    assert -loan.balance(ledger.INTEREST_SUSPENSE) <= loan.balance(ledger.INTEREST_ACCRUED) + loan.balance(
        ledger.INTEREST_RECEIVABLE
    )
    assert -loan.balance(ledger.FEE_SUSPENSE) <= loan.balance(ledger.FEE_RECEIVABLE)
    assert -loan.balance(ledger.PENALTY_SUSPENSE) <= loan.balance(ledger.PENALTY_RECEIVABLE)
    if loan.status is not LoanStatus.ACTIVE:
        assert all(loan.balance(a) == 0 for a in ledger.SUSPENSE_ACCOUNTS)
        assert loan.balance(ledger.DEFERRED_FEE) == 0, "an upfront fee is all earned (or dropped) once the loan ends"
    # Deferred and earned add up to the upfront fee (until a write-off drops what was still deferred); only a loan on
    # the platform's balance sheet defers it.
    if loan.status is not LoanStatus.WRITTEN_OFF:
        upfront = round_half_up(Decimal(principal) * product.facilitation_fee_rate)
        assert -books.get(ledger.DEFERRED_FEE, 0) - books.get(ledger.FACILITATION_FEE_INCOME, 0) == upfront
    assert loan.balance(ledger.DEFERRED_FEE) == 0 or loan.terms.business_model is BusinessModel.ON_BALANCE_SHEET
    if loan.status is LoanStatus.WRITTEN_OFF:  # provision charged + credit loss + suspense dropped = written off
        written = -sum(
            p.amount
            for _, kind, entry in loan.journal
            if kind == "write_off"
            for p in entry
            if p.account in ledger.RECEIVABLE_ACCOUNTS
        )
        dropped = sum(
            p.amount
            for _, kind, entry in loan.journal
            if kind == "write_off"
            for p in entry
            if p.account in (*ledger.SUSPENSE_ACCOUNTS, ledger.DEFERRED_FEE)
        )
        loss = ledger.CREDIT_LOSS if loan.platform_bears_loss else ledger.INSTITUTION_CREDIT_LOSS
        assert books.get(ledger.PROVISION_EXPENSE, 0) + books.get(loss, 0) + dropped == written
        # Each loss is its bearer's alone: the platform books none of an institution's, and the other way round.
        assert not books.get(ledger.INSTITUTION_CREDIT_LOSS if loss == ledger.CREDIT_LOSS else ledger.CREDIT_LOSS, 0)
        assert loan.written_off == written and 0 <= loan.recovered <= written
        assert (
            -books.get(ledger.RECOVERY_INCOME, 0) - books.get(ledger.INSTITUTION_RECOVERY_INCOME, 0) == loan.recovered
        )
        # A guaranteed loan is always paid out before it is written off: the institution never bears the loss.
        assert loan.guarantee_paid or not loan.terms.guaranteed
    # The guarantee is priced at its share of the fees: what it holds and has released never exceeds them.
    guarantee = sum(loan.terms.guarantee_fee(i.fee) for i in loan.installments)
    assert -books.get(ledger.GUARANTEE_RELEASE_INCOME, 0) <= guarantee or not loan.terms.guaranteed
    assert sum(p.amount for p in postings) == 0, "trial balance"
    assert ledger.net_by_account(postings) == {k: v for k, v in loan.balances.items() if v}, "snapshot = ledger"
    repaid = sum(a for _, _, _, c, a in loan.allocation_log if c in ("principal", "principal_prepaid"))
    written_off = -sum(
        p.amount
        for on, kind, entry in loan.journal
        if kind == "write_off"
        for p in entry
        if p.account == ledger.LOAN_PRINCIPAL
    )
    assert repaid + loan.balance(ledger.LOAN_PRINCIPAL) + written_off == principal
    for account in ledger.SNAPSHOT_ACCOUNTS:
        value = loan.balance(account)
        assert (value <= 0) if account in ledger.CREDIT_SNAPSHOT_ACCOUNTS else (value >= 0), account
    for i in loan.installments:
        assert 0 <= i.principal_paid <= i.principal and 0 <= i.interest_paid <= i.interest and 0 <= i.fee_paid <= i.fee


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    product=products(),
    principal=st.integers(1, 5_000_000),
    model=st.sampled_from(list(BusinessModel)),
    ops=operations,
    funder_share=st.sampled_from([None, 0, 1, 2]),
)
def test_random_histories_keep_the_books(
    product: LoanProduct, principal: int, model: BusinessModel, ops, funder_share: int | None
) -> None:
    tenor = product.tenors[0]
    payout = min(60, product.write_off_dpd) if model is BusinessModel.CAPITAL_HEAVY else None

    def originate() -> LoanAccount:
        return LoanAccount.originate(1, product, principal, tenor, START, "bank-a", model, None, payout, funder_rate)

    # The funder earns all, none or about half of the borrower's rate; the platform books the rest as its spread.
    rate_ppm = int(product.nominal_rate * 1_000_000)
    funder_rate = None if funder_share is None else Decimal(rate_ppm * funder_share // 2) / 1_000_000

    try:
        loan = originate()
    except OpeniceError:
        return  # e.g. a zero-rate bullet has no IRR: refused at origination, nothing to check
    day = START
    txns: list[Transaction] = []
    for kind, days, fraction in ops:
        if loan.status is LoanStatus.WRITTEN_OFF and kind == "recover":
            left = loan.written_off - loan.recovered
            with pytest.raises(ValidationError):  # more than is still written off is refused, changing nothing
                loan.recover(left + 1, day)
            if left:
                amount = max(1, int(left * fraction))
                loan.current_txn = len(txns) + 1
                loan.recover(amount, day)
                txns.append(Transaction(len(txns) + 1, "recovery", day, amount))
            check_invariants(loan, principal, product)
            continue
        if loan.status is not LoanStatus.ACTIVE:
            continue
        amount = None
        if kind == "write_off":
            loan.current_txn = len(txns) + 1
            loan.write_off_now(day)
            txns.append(Transaction(len(txns) + 1, "write_off", day, 0))
        elif kind == "eod":
            for _ in range(days):
                loan.close_day(day)
                day += timedelta(days=1)
                if day.day == 1 and loan.status is LoanStatus.ACTIVE and loan.guarantee_active:
                    assert -loan.balance(ledger.GUARANTEE_PROVISION) == loan.provision_target(), "month-end true-up"
        elif kind == "repay" and loan.total_due():
            amount = max(1, int(loan.total_due() * fraction))
            loan.current_txn = len(txns) + 1
            loan.repay(amount, day)
            txns.append(Transaction(len(txns) + 1, "repayment", day, amount))
        elif kind in ("prepay", "prepay_shorten", "payoff"):
            payoff = loan.payoff_amount(day)
            amount = payoff if kind == "payoff" else max(1, int(payoff * fraction * 0.5))
            mode = PrepaymentMode.SHORTEN if kind == "prepay_shorten" else PrepaymentMode.REAMORTISE
            loan.current_txn = len(txns) + 1
            try:
                loan.prepay(amount, day, mode)
            except OpeniceError:
                continue  # a prepayment that would not leave principal outstanding is refused, changing nothing
            txns.append(Transaction(len(txns) + 1, "prepayment", day, amount, mode))
        check_invariants(loan, principal, product)
    event(f"status {loan.status.value}")
    event(f"late fees charged: {loan.late_fees_charged > 0}")
    event(f"provision charged: {any(kind == 'provision' for _, kind, _ in loan.journal)}")
    event(f"guarantee paid out: {loan.guarantee_paid}")
    event(f"days simulated > 60: {(day - START).days > 60}")
    # Replaying the same history from scratch gives the same loan and the same books.
    again = replay(originate, txns, day)
    assert {k: v for k, v in again.balances.items() if v} == {k: v for k, v in loan.balances.items() if v}
    assert again.status == loan.status and again.days_past_due == loan.days_past_due
    assert (again.written_off, again.recovered) == (loan.written_off, loan.recovered)
