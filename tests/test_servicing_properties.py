"""Random sequences of money movements and end-of-day runs through the service, on both stores.

After every step the trial balance is zero and the loan snapshot equals its ledger; at the end,
running every accepted call again with the same idempotency keys changes nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.errors import OpeniceError
from openice.servicing import ledger
from openice.servicing.repository import servicing_unit
from openice.storage import servicing_tables

steps = st.lists(
    st.tuples(
        st.sampled_from(["eod", "eod", "repay", "prepay", "reverse", "backdate"]),
        st.integers(1, 35),
        st.floats(0.05, 1.0),
    ),
    min_size=3,
    max_size=8,
)
counter = itertools.count()


def snapshot(engine: Engine) -> tuple[tuple[Any, ...], int, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        lines = conn.execute(
            select(func.count(), func.coalesce(func.sum(servicing_tables.journal_lines.c.amount), 0)).select_from(
                servicing_tables.journal_lines
            )
        ).one()
        txns = conn.execute(select(func.count()).select_from(servicing_tables.transactions)).scalar_one()
        loans = conn.execute(
            select(
                servicing_tables.loans.c.id,
                servicing_tables.loans.c.status,
                servicing_tables.loans.c.bal_loan_principal,
                servicing_tables.loans.c.dpd,
            ).order_by(servicing_tables.loans.c.id)
        ).all()
    return tuple(lines), txns, [tuple(r) for r in loans]


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    plan=steps,
    product=st.sampled_from(["CASH-EI", "CASH-EP", "SME-IO", "BNPL-BULLET"]),
    model=st.sampled_from(["capital-light", "capital-heavy", "on-balance-sheet"]),
)
def test_random_money_movements_keep_the_books(servicing, engine, plan, product, model) -> None:
    run = next(counter)
    tenor = {"CASH-EI": 6, "CASH-EP": 6, "SME-IO": 6, "BNPL-BULLET": 3}[product]
    calls = []

    def call(kind: str, key: str, *args: Any, **kw: Any) -> Any:
        result = (
            getattr(servicing, kind)(*args, idempotency_key=key, **kw)
            if kind == "originate"
            else getattr(servicing, kind)(*args, key, **kw)
        )
        # Only accepted calls are kept under their key: a refused one may be accepted later, as a new request.
        calls.append((kind, key, args, kw))
        return result

    loan_id = call(
        "originate",
        f"{run}-o",
        product_code=product,
        principal=800_000,
        tenor=tenor,
        funder="bank-a",
        business_model=model,
        guarantee_payout_dpd=30 if model == "capital-heavy" else None,
    )["loan_id"]
    paid: list[int] = []
    for n, (kind, days, fraction) in enumerate(plan):
        today = servicing.business_date()
        loan = servicing.loan(loan_id)
        key = f"{run}-{n}"
        try:
            if kind == "eod":
                run_until(engine, today + timedelta(days=days))
            elif kind == "repay" and loan.total_due():
                paid.append(call("repay", key, loan_id, max(1, int(loan.total_due() * fraction)))["transaction_id"])
            elif kind == "prepay":
                amount = max(1, int(loan.payoff_amount(today) * fraction))
                paid.append(call("prepay", key, loan_id, amount)["transaction_id"])
            elif kind == "reverse" and paid:
                call("reverse", key, paid.pop(0))
            elif kind == "backdate" and loan.total_due() and loan.overdue_since:
                value_date = loan.overdue_since + timedelta(days=min(days, (today - loan.overdue_since).days))
                paid.append(
                    call("repay", key, loan_id, 100, value_date=value_date, reason="bank statement")["transaction_id"]
                )
        except OpeniceError:
            pass  # refused requests change nothing; the checks below hold either way
        with servicing_unit(servicing.units, readonly=True) as uow:
            books = uow.loans.ledger_balances(loan_id)
            stored = uow.loans.get(loan_id)
            assert uow.conn.execute(select(func.sum(servicing_tables.journal_lines.c.amount))).scalar_one() == 0
        assert {a: books.get(a, 0) for a in ledger.SNAPSHOT_ACCOUNTS} == {
            a: stored.balance(a) for a in ledger.SNAPSHOT_ACCOUNTS
        }
        assert all(stored.balance(a) >= 0 for a in ledger.RECEIVABLE_ACCOUNTS)
    before = snapshot(engine)
    for kind, key, args, kw in list(calls):
        try:
            call(kind, key, *args, **kw)
        except OpeniceError:
            pass
    assert snapshot(engine) == before
