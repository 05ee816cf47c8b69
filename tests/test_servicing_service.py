"""Servicing operations through the storage seam, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.errors import Conflict, Forbidden, NotFound, ValidationError
from openice.servicing import ledger
from openice.servicing.products import LoanProduct
from openice.servicing.repository import servicing_unit
from openice.servicing.service import Servicing
from openice.storage import idempotency_tables, servicing_tables
from openice.storage.days import to_day
from tests.conftest import START


def trial_balance(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(servicing_tables.journal_lines.c.amount), 0))).scalar_one()


def counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                servicing_tables.journal_lines,
                servicing_tables.transactions,
                idempotency_tables.idempotency_keys,
            )
        )


def new_loan(servicing: Servicing, key: str = "o1", **kw: Any) -> int:
    args = dict(
        product_code="CASH-EI",
        principal=1_200_000,
        tenor=12,
        funder="bank-a",
        business_model="capital-light",
        idempotency_key=key,
    )
    args.update(kw)
    return servicing.originate(**args)["loan_id"]


def test_same_key_replays_and_other_payload_is_refused(servicing, engine) -> None:
    loan_id = new_loan(servicing)
    assert new_loan(servicing) == loan_id  # replay: no second loan
    with pytest.raises(Conflict) as err:
        new_loan(servicing, principal=999_900)
    assert err.value.field == "idempotency_key"
    run_until(engine, START + timedelta(days=31))
    due = servicing.loan(loan_id).total_due()
    first = servicing.repay(loan_id, due, "pay-1")
    before = counts(engine)
    assert servicing.repay(loan_id, due, "pay-1") == first
    assert counts(engine) == before
    with pytest.raises(Conflict):
        servicing.repay(loan_id, due - 1, "pay-1")
    assert trial_balance(engine) == 0


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda s, loan: s.repay(loan, 0, "k"), "amount"),
        (lambda s, loan: s.repay(loan, -5, "k"), "amount"),
        (lambda s, loan: s.repay(loan, 10**9, "k"), "amount"),
        (lambda s, loan: s.repay(loan, 100, None), "idempotency_key"),
        (lambda s, loan: s.repay(999_999, 100, "k"), "loan_id"),
        (lambda s, loan: s.repay(loan, 100, "k", value_date=date(2025, 1, 1), reason="statement"), "value_date"),
        (lambda s, loan: s.repay(loan, 100, "k", value_date=date(2030, 1, 1)), "value_date"),
        (lambda s, loan: s.prepay(loan, 100, "k", mode="sideways"), "mode"),
        (lambda s, loan: s.repay(loan, 100, "k", currency="USD"), "currency"),
        (
            lambda s, loan: s.originate(
                product_code="NOPE",
                principal=100,
                tenor=12,
                funder="b",
                business_model="capital-light",
                idempotency_key="k",
            ),
            "product_code",
        ),
        (
            lambda s, loan: s.originate(
                product_code="CASH-EI",
                principal=100_000,
                tenor=7,
                funder="b",
                business_model="capital-light",
                idempotency_key="k",
            ),
            "tenor",
        ),
        (
            lambda s, loan: s.originate(
                product_code="CASH-EI",
                principal=100_000,
                tenor=12,
                funder="b",
                business_model="capital-heavy",
                idempotency_key="k",
            ),
            "guarantee_payout_dpd",
        ),
        (
            lambda s, loan: s.originate(
                product_code="CASH-EI",
                principal=100_000,
                tenor=12,
                funder="b",
                business_model="charity",
                idempotency_key="k",
            ),
            "business_model",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(servicing, engine, call, field) -> None:
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=31))
    before = counts(engine)
    with pytest.raises((ValidationError, NotFound, Conflict)) as err:
        call(servicing, loan_id)
    assert err.value.field == field
    assert counts(engine) == before


def test_closed_loan_refuses_payment(servicing, engine) -> None:
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=10))
    loan = servicing.loan(loan_id)
    servicing.prepay(loan_id, loan.payoff_amount(START + timedelta(days=10)), "payoff")
    assert servicing.loan(loan_id).status.value == "closed"
    with pytest.raises(Conflict) as err:
        servicing.repay(loan_id, 100, "after-close")
    assert err.value.field == "loan_id"


def test_reversal_replays_later_payments(servicing, engine) -> None:
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=31))
    first = servicing.repay(loan_id, servicing.loan(loan_id).total_due(), "p1")
    run_until(engine, START + timedelta(days=62))
    servicing.repay(loan_id, servicing.loan(loan_id).total_due(), "p2")
    run_until(engine, START + timedelta(days=70))
    clean = servicing.loan(loan_id)
    assert clean.days_past_due == 0
    servicing.reverse(first["transaction_id"], "rev-1")
    after = servicing.loan(loan_id)
    # Without the first payment, installment 1 ran a month late and drew late fees; the second payment
    # went to those fees first, then to installment 1, so installment 1 is still short and 2 untouched.
    assert after.late_fees_charged > 0
    assert 0 < after.installments[0].unpaid < after.installments[0].total
    assert after.installments[1].principal_paid == 0
    assert after.days_past_due == (START + timedelta(days=70) - after.installments[0].due_date).days
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(loan_id)
    assert {a: books.get(a, 0) for a in ledger.SNAPSHOT_ACCOUNTS} == {
        a: after.balance(a) for a in ledger.SNAPSHOT_ACCOUNTS
    }
    with pytest.raises(Conflict):
        servicing.reverse(first["transaction_id"], "rev-2")
    assert servicing.reverse(first["transaction_id"], "rev-1")["transaction_id"] == first["transaction_id"]
    assert trial_balance(engine) == 0


def test_backdated_payment_is_placed_in_history(servicing, engine) -> None:
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=40))
    late = servicing.loan(loan_id)
    assert late.days_past_due == 9 and late.late_fees_charged > 0
    due_day = late.installments[0].due_date
    amount = late.installments[0].total
    servicing.repay(loan_id, amount, "backdated", value_date=due_day, reason="bank statement: paid on the due date")
    fixed = servicing.loan(loan_id)
    assert fixed.days_past_due == 0 and fixed.late_fees_charged == 0
    with engine.connect() as conn:
        assert (
            conn.execute(select(servicing_tables.transactions.c.reason)).scalar_one()
            == "bank statement: paid on the due date"
        )
    assert trial_balance(engine) == 0


def test_backdating_is_an_operator_action_with_a_reason_in_open_books(servicing, engine) -> None:
    """A payment dated on its due date after the fact erases the late fee, the days past due and the bucket: only an
    operator may do it, with a reason, and never into a month whose books are closed."""
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=40))  # business date 2026-02-24; January is closed
    due_day = servicing.loan(loan_id).installments[0].due_date  # 2026-02-15
    amount = servicing.loan(loan_id).installments[0].total
    before = counts(engine)
    with pytest.raises(Forbidden) as err:
        servicing.repay(loan_id, amount, "b1", value_date=due_day, reason="x", may_backdate=False)
    assert err.value.field == "value_date"
    with pytest.raises(ValidationError) as err:
        servicing.repay(loan_id, amount, "b2", value_date=due_day)
    assert err.value.field == "reason"
    with pytest.raises(ValidationError) as err:
        servicing.repay(loan_id, amount, "b3", value_date=date(2026, 1, 31), reason="statement")
    assert err.value.field == "value_date" and "closed through 2026-01-31" in err.value.message
    with pytest.raises(ValidationError) as err:
        servicing.repay(loan_id, amount, "b4", value_date=due_day, reason="   ")
    assert err.value.field == "reason"
    assert counts(engine) == before and servicing.loan(loan_id).days_past_due == 9
    # Today's value date needs neither: a borrower pays what is due now, late fee included.
    servicing.repay(
        loan_id, servicing.loan(loan_id).total_due(), "b5", value_date=servicing.business_date(), may_backdate=False
    )
    assert servicing.loan(loan_id).late_fees_charged > 0 and servicing.loan(loan_id).days_past_due == 0


def test_write_off_recovery_and_guarantee_payout(servicing, engine) -> None:
    light = new_loan(servicing, "light")
    heavy = new_loan(servicing, "heavy", business_model="capital-heavy", funder="trust-b", guarantee_payout_dpd=80)
    run_until(engine, START + timedelta(days=31 + 81))
    paid_out = servicing.loan(heavy)
    assert paid_out.guarantee_paid and paid_out.funder == "platform"
    assert paid_out.balance(ledger.GUARANTEE_CONTRACT_ASSET) == 0
    run_until(engine, START + timedelta(days=31 + 182))
    gone = servicing.loan(light)
    assert gone.status.value == "written_off" and gone.balance(ledger.LOAN_PRINCIPAL) == 0
    with pytest.raises(Conflict):
        servicing.repay(light, 100, "too-late")
    servicing.recover(light, 50_000, "recovery-1")
    assert servicing.loan(light).recovered == 50_000
    with engine.connect() as conn:
        kinds = {r.event_type for r in conn.execute(select(servicing_tables.outbox.c.event_type).distinct())}
    assert {
        "loan.originated",
        "loan.guarantee_payout",
        "loan.written_off",
        "loan.bucket_changed",
        "loan.recovery",
    } <= kinds
    assert trial_balance(engine) == 0


def test_manual_write_off_of_a_guaranteed_loan_pays_the_guarantee_first(servicing, engine) -> None:
    """Written off by hand at 41 DPD (payout DPD 80): the institution is paid principal and interest due, exactly as
    at the payout DPD; the provision becomes the allowance and absorbs its part of the loss; nothing is released."""
    heavy = new_loan(servicing, "heavy", business_model="capital-heavy", funder="trust-b", guarantee_payout_dpd=80)
    run_until(engine, date(2026, 3, 28))  # the 2026-02-15 installment is 41 days past due; February's provision
    loan = servicing.loan(heavy)
    assert loan.days_past_due == 41 and not loan.guarantee_paid
    provision = -loan.balance(ledger.GUARANTEE_PROVISION)
    owed_to_funder = loan.balance(ledger.LOAN_PRINCIPAL) + loan.balance(ledger.INTEREST_RECEIVABLE)
    receivables = sum(loan.balance(a) for a in ledger.RECEIVABLE_ACCOUNTS)
    assert provision > 0
    servicing.write_off(heavy, "wo-heavy")
    gone = servicing.loan(heavy)
    assert gone.status.value == "written_off" and gone.guarantee_paid and gone.funder == "platform"
    assert gone.written_off == receivables
    with engine.connect() as conn:
        by_kind = {
            (r.kind, r.account): r.amount
            for r in conn.execute(
                select(
                    servicing_tables.journal_entries.c.kind,
                    servicing_tables.journal_lines.c.account,
                    func.sum(servicing_tables.journal_lines.c.amount).label("amount"),
                )
                .join(
                    servicing_tables.journal_entries,
                    servicing_tables.journal_entries.c.id == servicing_tables.journal_lines.c.entry_id,
                )
                .where(servicing_tables.journal_lines.c.loan_id == heavy)
                .group_by(servicing_tables.journal_entries.c.kind, servicing_tables.journal_lines.c.account)
            )
        }
    assert by_kind[("guarantee_payout", ledger.FUNDING_CASH)] == owed_to_funder  # the institution is made whole
    assert by_kind[("guarantee_payout", ledger.LOAN_LOSS_ALLOWANCE)] == -provision
    assert (
        by_kind[("write_off", ledger.CREDIT_LOSS)] == receivables - provision
    )  # the platform's loss, net of the allowance
    assert ("write_off", ledger.PROVISION_EXPENSE) not in by_kind  # no provision released as if the funder bore it
    assert trial_balance(engine) == 0


def test_recoveries_are_capped_at_what_is_still_written_off(servicing, engine) -> None:
    """A loan written off on its first day, not past due, needs a reason; 12,000.00 CNY is written off, and the
    recoveries on it add up to that at most."""
    light = new_loan(servicing, "light")
    with pytest.raises(ValidationError) as err:
        servicing.write_off(light, "wo-1")
    assert err.value.field == "reason"
    servicing.write_off(light, "wo-2", reason="identity fraud confirmed")
    assert servicing.loan(light).written_off == 1_200_000
    servicing.recover(light, 1_000_000, "r1")
    before = counts(engine)
    for amount in (200_001, 999_999_999_999_999):
        with pytest.raises(ValidationError) as err:
            servicing.recover(light, amount, f"r-{amount}")
        assert err.value.field == "amount" and "2,000.00 CNY still written off" in err.value.message
    assert counts(engine) == before
    servicing.recover(light, 200_000, "r2")
    with pytest.raises(ValidationError):
        servicing.recover(light, 1, "r3")
    assert servicing.loan(light).recovered == 1_200_000
    # The institution funded it and bears the loss: the loss and the recoveries are its own, none the platform's.
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(light)
    assert books.get(ledger.INSTITUTION_CREDIT_LOSS) == 1_200_000
    assert books.get(ledger.INSTITUTION_RECOVERY_INCOME) == -1_200_000
    assert ledger.CREDIT_LOSS not in books and ledger.RECOVERY_INCOME not in books
    assert trial_balance(engine) == 0


def test_the_platforms_interest_spread_is_booked_apart(servicing, engine) -> None:
    """12,000.00 CNY over 12 months at 18% (30/360) from 2026-01-15: the first month's interest is 180.00. The funder
    agreed to earn 12%, two thirds of it; the platform keeps the rest as its spread, split per posting half-up:
    - January's month end accrues 17/31 of 180.00 = 98.71: funder 98.71 x 2/3 = 65.81, spread 32.90;
    - the due date books the other 81.29: funder 54.19, spread 27.10;
    - in all the funder earns 120.00 and the platform 60.00 on the first installment."""
    loan_id = new_loan(servicing, "spread", funder_rate=Decimal("0.12"))
    run_until(engine, date(2026, 2, 16))
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                servicing_tables.journal_entries.c.kind,
                servicing_tables.journal_lines.c.account,
                servicing_tables.journal_lines.c.amount,
            )
            .join(
                servicing_tables.journal_entries,
                servicing_tables.journal_entries.c.id == servicing_tables.journal_lines.c.entry_id,
            )
            .where(
                servicing_tables.journal_lines.c.loan_id == loan_id,
                servicing_tables.journal_lines.c.account.in_([ledger.INTEREST_INCOME, ledger.INTEREST_SPREAD_INCOME]),
            )
        ).all()
    assert sorted((r.kind, r.account, r.amount) for r in rows) == [
        ("accrual", ledger.INTEREST_INCOME, -6581),
        ("accrual", ledger.INTEREST_SPREAD_INCOME, -3290),
        ("installment_due", ledger.INTEREST_INCOME, -5419),
        ("installment_due", ledger.INTEREST_SPREAD_INCOME, -2710),
    ]
    with pytest.raises(ValidationError) as err:  # the platform does not pay a funder more than the borrower does
        new_loan(servicing, "too-rich", funder_rate=Decimal("0.19"))
    assert err.value.field == "funder_rate"
    assert trial_balance(engine) == 0


def test_a_guaranteed_loans_fees_pay_the_guarantee_first_and_servicing_with_the_rest(servicing, engine) -> None:
    """12,000.00 CNY over 12 months on CASH-EI: a 0.2% monthly fee, 24.00 an installment, 288.00 in all. The
    product prices the guarantee at 1.5% expected loss + 0.4% margin of principal = 228.00, its share of the fees
    228/288 = 791,667 ppm: 19.00 of each fee is the guarantee's (released to income as it falls due) and 5.00 pays
    for servicing."""
    heavy = new_loan(servicing, "split", business_model="capital-heavy", funder="trust-b", guarantee_payout_dpd=80)
    assert servicing.loan(heavy).terms.guarantee_share_ppm == 791_667
    with servicing_unit(servicing.units, readonly=True) as uow:
        assert uow.loans.ledger_balances(heavy)[ledger.GUARANTEE_LIABILITY] == -22_800
    run_until(engine, date(2026, 2, 16))
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(heavy)
    assert books[ledger.GUARANTEE_RELEASE_INCOME] == -1_900 and books[ledger.FEE_INCOME] == -500
    assert (
        books[ledger.GUARANTEE_CONTRACT_ASSET] == 22_800 - 1_900
        and books[ledger.GUARANTEE_LIABILITY] == -22_800 + 1_900
    )
    assert trial_balance(engine) == 0


def test_an_on_balance_sheet_loans_upfront_fee_is_earned_over_its_life(servicing, engine) -> None:
    """12,000.00 CNY over 12 months at 18% on CASH-EI, on the platform's own balance sheet, with a 1% upfront fee of
    120.00: the loan's carrying amount is 11,880.00, and the rate per period that discounts its installments
    (principal + interest: 1,100.16, 1,100.16, ...) to it is 1.661747%. The first period earns
    11,880.00 x 1.661747% = 197.42 against 180.00 of contractual interest: 17.42 of the fee, rounded on the running
    total to 17.42; the parts fall as the carrying amount does (17.42, 16.21, 14.97, ... 1.72) and add up to 120.00.
    Paid off after the first installment, what is left (102.58) is earned that day."""
    loan_id = new_loan(servicing, "obs", business_model="on-balance-sheet", funder="platform")
    loan = servicing.loan(loan_id)
    assert [i.fee_amortisation for i in loan.installments] == [
        1742,
        1621,
        1497,
        1369,
        1236,
        1098,
        957,
        809,
        658,
        501,
        340,
        172,
    ]
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(loan_id)
    assert (
        books[ledger.DEFERRED_FEE] == -12_000 and ledger.FACILITATION_FEE_INCOME not in books
    )  # nothing earned on day one
    run_until(engine, date(2026, 2, 16))
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(loan_id)
    assert books[ledger.FACILITATION_FEE_INCOME] == -1_742 and books[ledger.DEFERRED_FEE] == -12_000 + 1_742
    today = servicing.business_date()
    servicing.prepay(loan_id, servicing.loan(loan_id).payoff_amount(today), "payoff")
    with servicing_unit(servicing.units, readonly=True) as uow:
        books = uow.loans.ledger_balances(loan_id)
    assert books[ledger.FACILITATION_FEE_INCOME] == -12_000 and not books.get(ledger.DEFERRED_FEE)
    assert trial_balance(engine) == 0


INCOME = (ledger.INTEREST_INCOME, ledger.INTEREST_SPREAD_INCOME, ledger.FEE_INCOME, ledger.PENALTY_INCOME)


def test_a_loan_past_90_dpd_earns_nothing_until_it_pays(servicing, engine) -> None:
    """A 12,000.00 CNY loan never paid from its first due date, 2026-02-15: it reaches 91 DPD when 2026-05-16
    closes. From then on its interest, service fees and late fees are billed into suspense, not income; at 169 DPD
    (2026-08-03) it has earned nothing since. Paid in full, what waited in suspense becomes income that day."""
    loan_id = new_loan(servicing, "na")
    run_until(engine, date(2026, 8, 3))
    loan = servicing.loan(loan_id)
    assert loan.days_past_due == 169 and loan.non_accrual

    def income(since: date) -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(servicing_tables.journal_lines.c.account, func.sum(servicing_tables.journal_lines.c.amount))
                .join(
                    servicing_tables.journal_entries,
                    servicing_tables.journal_entries.c.id == servicing_tables.journal_lines.c.entry_id,
                )
                .where(
                    servicing_tables.journal_lines.c.loan_id == loan_id,
                    servicing_tables.journal_entries.c.business_day >= to_day(since),
                    servicing_tables.journal_lines.c.account.in_(INCOME),
                )
                .group_by(servicing_tables.journal_lines.c.account)
            ).all()
        return {account: -amount for account, amount in rows if amount}

    assert income(date(2026, 5, 16)) == {}
    assert income(date(2026, 5, 15)) == {
        ledger.PENALTY_INCOME: income(date(2026, 5, 15))[ledger.PENALTY_INCOME]
    }  # 90 DPD
    held = {account: -loan.balance(account) for account in ledger.SUSPENSE_ACCOUNTS}
    assert all(held.values())  # the installments of 06-15 and 07-15 and the late fees since 05-16
    assert held[ledger.INTEREST_SUSPENSE] <= loan.balance(ledger.INTEREST_ACCRUED) + loan.balance(
        ledger.INTEREST_RECEIVABLE
    )
    servicing.repay(loan_id, loan.total_due(), "catch-up")
    cured = servicing.loan(loan_id)
    # Everything billed is collected; July's month-end accrual (interest earned, not yet due) still waits.
    accrued = cured.balance(ledger.INTEREST_ACCRUED)
    assert accrued > 0 and cured.balance(ledger.INTEREST_SUSPENSE) == -accrued
    assert cured.balance(ledger.FEE_SUSPENSE) == cured.balance(ledger.PENALTY_SUSPENSE) == 0
    assert income(date(2026, 8, 3)) == {
        ledger.INTEREST_INCOME: held[ledger.INTEREST_SUSPENSE] - accrued,
        ledger.FEE_INCOME: held[ledger.FEE_SUSPENSE],
        ledger.PENALTY_INCOME: held[ledger.PENALTY_SUSPENSE],
    }
    assert trial_balance(engine) == 0


def test_concurrent_duplicates_apply_once(servicing, engine) -> None:
    loan_id = new_loan(servicing)
    run_until(engine, START + timedelta(days=31))
    due = servicing.loan(loan_id).total_due()
    results: list[object] = []

    def pay() -> None:
        try:
            results.append(servicing.repay(loan_id, due, "same-key"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=pay) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    repaid = [r for r in results if isinstance(r, dict)]
    assert len(repaid) == len(results), [r for r in results if not isinstance(r, dict)]
    assert len({r["transaction_id"] for r in repaid}) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(servicing_tables.transactions)).scalar_one() == 1
    assert trial_balance(engine) == 0


def referral_owed(engine: Engine) -> dict[int, int]:
    lines = servicing_tables.journal_lines.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(lines.loan_id, func.sum(lines.amount))
            .where(lines.account == ledger.REFERRAL_FEE_RECEIVABLE)
            .group_by(lines.loan_id)
        )
        return {loan_id: int(owed) for loan_id, owed in rows}


def test_referral_fees_are_settled_oldest_loan_first_and_survive_a_replay(servicing, engine) -> None:
    """Two capital-light loans of 12,000.00 at 50 bp + 3.00: each owes 60.00 + 3.00 = 6,300 minor units."""
    cash = next(p for p in servicing.products() if p.code == "CASH-EI")
    servicing.create_product(
        LoanProduct.from_dict({**cash.to_dict(), "code": "REF", "referral_fee_bps": 50, "referral_fee_flat": 300})
    )
    first, second = (new_loan(servicing, key, product_code="REF") for key in ("r1", "r2"))
    new_loan(servicing, "r3", product_code="REF", funder="bank-b")  # another institution's fee stays
    assert referral_owed(engine) == {first: 6_300, second: 6_300, first + 2: 6_300}
    with pytest.raises(ValidationError) as err:
        servicing.settle_referral_fees("bank-a", 12_601, "CNY", "s0")
    assert err.value.field == "amount" and "owes 126.00 CNY" in err.value.message
    done = servicing.settle_referral_fees("bank-a", 8_000, "CNY", "s1")
    assert (done["settled"], done["loans"], done["still_owed"]) == (8_000, 2, 4_600)
    assert servicing.settle_referral_fees("bank-a", 8_000, "CNY", "s1") == done  # the same key replays
    assert referral_owed(engine) == {first: 0, second: 4_600, first + 2: 6_300}
    run_until(engine, START + timedelta(days=31))
    paid = servicing.repay(first, servicing.loan(first).total_due(), "p1")
    servicing.reverse(paid["transaction_id"], "rev-1")  # replays the loan; the settlement is not its history
    assert referral_owed(engine)[first] == 0
    with pytest.raises(ValidationError):
        servicing.settle_referral_fees("bank-a", 4_600, "USD", "s2")  # nothing is owed in USD
    assert trial_balance(engine) == 0
