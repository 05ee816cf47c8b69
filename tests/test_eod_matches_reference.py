"""The set-based end of day gives, loan by loan, exactly what the per-loan reference rules give: the loans, their
ledger, and the collection cases the collections strategy keeps for them."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.collections.strategy import STAGES
from openice.servicing import ledger
from openice.servicing.buckets import WRITTEN_OFF
from openice.servicing.loan import BusinessModel, LoanAccount, LoanStatus, replay
from openice.servicing.products import demo_products
from openice.servicing.repository import ServicingUnit, servicing_unit
from openice.servicing.service import Servicing
from openice.storage import collections_tables, servicing_tables
from openice.storage.days import from_day, opt_date
from tests.conftest import START

MODELS = ("capital-light", "capital-heavy", "on-balance-sheet")
DEFAULTERS = 3  # the first loans, one of each model, are never paid: each is paid out (if guaranteed), written off


def originate_mix(servicing: Servicing, count: int, seed: int) -> list[int]:
    rnd = random.Random(seed)
    products = demo_products()
    ids = []
    for k in range(count):
        product = rnd.choice(products)
        model = MODELS[k] if k < DEFAULTERS else rnd.choice(MODELS)
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


@dataclass
class Case:
    stage: str
    dpd: int
    overdue_amount: int
    opened: date
    next_contact: date


@dataclass
class Collections:
    """A loan's collection case as the collections strategy keeps it, followed one closed day at a time: a case
    opens when the loan falls overdue (or is written off), follows its bucket (a worse stage is an escalation, due
    for contact the next day) and closes when the loan is cured, repaid or recovered."""

    case: Case | None = None
    actions: list[tuple[date, str, str, int | None]] = field(default_factory=list)  # (day, kind, detail, amount)

    def close_day(self, loan: LoanAccount, day: date) -> None:
        nxt = day + timedelta(days=1)
        stage: str | None = None
        if loan.status is LoanStatus.ACTIVE and loan.overdue_since is not None and loan.days_past_due >= 1:
            stage = loan.bucket
            due = sum(i.unpaid for i in loan.installments if i.booked and i.due_date <= day)
            amount = due + loan.balance(ledger.PENALTY_RECEIVABLE)
        elif loan.status is LoanStatus.WRITTEN_OFF and (loan.closed_on == day or self.case is not None):
            stage, amount = WRITTEN_OFF, loan.written_off - loan.recovered
        if self.case is not None and (stage is None or (stage == WRITTEN_OFF and amount <= 0)):
            how = {LoanStatus.CLOSED: "repaid", LoanStatus.WRITTEN_OFF: "recovered"}.get(loan.status, "cured")
            self.actions.append((day, "closed", how, None))
            self.case = None
        if stage is None:
            return
        if self.case is not None:
            if STAGES.index(stage) > STAGES.index(self.case.stage):
                self.actions.append((day, "escalated", stage, None))
                self.case.next_contact = nxt
            self.case.stage, self.case.dpd, self.case.overdue_amount = stage, loan.days_past_due, amount
        elif amount > 0:
            self.case = Case(stage, loan.days_past_due, amount, day, nxt)
            self.actions.append((day, "opened", stage, amount))


def reference(
    uow: ServicingUnit, loan_id: int, business_date: date, collections: Collections | None = None
) -> LoanAccount:
    """The loan as the per-loan rules alone make it, from origination and its payments (and its collection case,
    when given one to follow)."""
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
        collections.close_day if collections else None,
    )


def paid(loan: LoanAccount) -> list[tuple]:
    return [(i.due_date, i.principal_paid, i.interest_paid, i.fee_paid, i.booked) for i in loan.installments]


def test_eod_equals_per_loan_rules_with_payments(servicing: Servicing, engine: Engine) -> None:
    ids = originate_mix(servicing, 60, seed=7)
    rnd = random.Random(3)
    target = date(2026, 10, 20)
    day = START
    while day < target:
        day = day + timedelta(days=rnd.randint(10, 25))
        day = min(day, target)
        run_until(engine, day)
        for loan_id in rnd.sample(ids[DEFAULTERS:], 15):
            loan = servicing.loan(loan_id)
            if loan.status.value != "active":
                continue
            due = loan.total_due()
            if due and rnd.random() < 0.7:
                servicing.repay(loan_id, due if rnd.random() < 0.8 else max(1, due // 2), f"r-{loan_id}-{day}")
            elif rnd.random() < 0.1:
                servicing.prepay(loan_id, max(1, loan.payoff_amount(day) // 3), f"p-{loan_id}-{day}")
    with servicing_unit(servicing.units, readonly=True) as uow:
        cases, actions = stored_collections(uow)
        for loan_id in ids:
            row = uow.loans.row(loan_id)
            stored = uow.loans.load(row)
            followed = Collections()
            ref = reference(uow, loan_id, target, followed)
            assert stored.status == ref.status, loan_id
            assert stored.days_past_due == ref.days_past_due, loan_id
            assert stored.late_fees_charged == ref.late_fees_charged, loan_id
            assert row.bucket == ref.bucket, loan_id
            assert (row.funder, row.guarantee_paid) == (ref.funder, ref.guarantee_paid), loan_id
            assert opt_date(row.overdue_since) == ref.overdue_since, loan_id
            assert actions[loan_id] == followed.actions, loan_id
            assert cases.get(loan_id) == followed.case, loan_id
            for account in ledger.SNAPSHOT_ACCOUNTS:
                assert stored.balance(account) == ref.balance(account), (loan_id, account)
            books = uow.loans.ledger_balances(loan_id)
            expected = ledger.net_by_account(p for _, _, postings in ref.journal for p in postings)
            assert books == expected, loan_id
            assert paid(stored) == paid(ref), loan_id
        assert uow.conn.execute(select(func.sum(servicing_tables.journal_lines.c.amount))).scalar_one() == 0
        statuses = {uow.loans.row(loan_id).status for loan_id in ids[:DEFAULTERS]}
        paid_out = {uow.loans.row(loan_id).guarantee_paid for loan_id in ids[:DEFAULTERS]}
        assert statuses == {LoanStatus.WRITTEN_OFF.value} and True in paid_out
        kinds = {kind for loan_actions in actions.values() for _, kind, _, _ in loan_actions}
        assert {"opened", "escalated", "closed"} <= kinds
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
            ledger.CREDIT_LOSS,
            ledger.INSTITUTION_CREDIT_LOSS,
        } <= accounts


Action = tuple[date, str, str, int | None]  # (day, kind, detail, amount)


def stored_collections(uow: ServicingUnit) -> tuple[dict[int, Case], dict[int, list[Action]]]:
    """The open case of each loan, and each loan's case openings, escalations and closings in order."""
    c, a = collections_tables.collection_cases.c, collections_tables.collection_actions.c
    cases = {
        r.loan_id: Case(r.stage, r.dpd, r.overdue_amount, from_day(r.opened_day), from_day(r.next_contact_day))
        for r in uow.conn.execute(select(collections_tables.collection_cases).where(c.status == "open"))
    }
    actions: dict[int, list[tuple]] = defaultdict(list)
    query = (
        select(a.loan_id, a.business_day, a.kind, a.detail, a.amount)
        .where(a.kind.in_(("opened", "escalated", "closed")))
        .order_by(a.id)
    )
    for r in uow.conn.execute(query):
        actions[r.loan_id].append((from_day(r.business_day), r.kind, r.detail, r.amount))
    return cases, actions
