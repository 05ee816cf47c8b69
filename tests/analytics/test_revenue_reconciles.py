"""Revenue by line adds up, to the cent, to the income the ledger recognised in the period."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from openice.analytics.backends import DuckDBBackend, snapshot
from openice.analytics.definitions import INCOME_ACCOUNTS
from openice.analytics.metrics import Period, compute
from openice.close_of_day import run_until
from openice.servicing.products import demo_products
from openice.storage import servicing_tables
from openice.storage.days import to_day
from tests.analytics.portfolio import seeded
from tests.conftest import START


def test_revenue_lines_reconcile_to_the_ledger(tmp_path: Path) -> None:
    from openice.storage.engine import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'rev.db'}")
    migrate(engine, START)
    servicing = seeded(engine)
    rnd = random.Random(11)
    ids = []
    for k in range(24):
        product = rnd.choice(demo_products())
        model = ("capital-light", "capital-heavy", "on-balance-sheet", "technology")[k % 4]
        ids.append(
            servicing.originate(
                product_code=product.code,
                principal=rnd.randint(500, 5000) * 100,
                tenor=min(product.tenors),
                funder="bank-a",
                business_model=model,
                guarantee_payout_dpd=30 if model == "capital-heavy" else None,
                borrower_id=f"b{k % 9}",
                idempotency_key=f"o{k}",
            )["loan_id"]
        )
    day = START
    while day < date(2026, 7, 20):
        day += timedelta(days=rnd.randint(5, 20))
        run_until(engine, day)
        for loan_id in rnd.sample(ids, 8):
            loan = servicing.loan(loan_id)
            if loan.status.value == "active" and loan.total_due():
                servicing.repay(loan_id, loan.total_due(), f"r{loan_id}-{day}")
    backend = DuckDBBackend.from_arrow(snapshot(engine))
    for quarter in ("2026Q1", "2026Q2"):
        period = Period.quarter(quarter)
        with engine.connect() as conn:
            ledger = -conn.execute(
                select(func.sum(servicing_tables.journal_lines.c.amount))
                .join(
                    servicing_tables.journal_entries,
                    servicing_tables.journal_entries.c.id == servicing_tables.journal_lines.c.entry_id,
                )
                .where(
                    servicing_tables.journal_lines.c.account.in_(INCOME_ACCOUNTS),
                    servicing_tables.journal_entries.c.business_day.between(to_day(period.start), to_day(period.end)),
                )
            ).scalar_one()
        total = compute(backend, period)
        lines = {r["group"]["line"]: r["value"] for r in total["revenue"].rows}
        assert ledger > 0 and sum(lines.values()) == ledger, quarter
        assert lines["credit_driven.guarantee_release"] > 0 and lines["credit_driven.financing_income"] > 0
        assert (lines["platform.referral_fees"] > 0) == (quarter == "2026Q1")  # every loan is originated in Q1
        with engine.connect() as conn:
            provision = conn.execute(
                select(func.sum(servicing_tables.journal_lines.c.amount))
                .join(
                    servicing_tables.journal_entries,
                    servicing_tables.journal_entries.c.id == servicing_tables.journal_lines.c.entry_id,
                )
                .where(
                    servicing_tables.journal_lines.c.account == "provision_expense",
                    servicing_tables.journal_entries.c.business_day.between(to_day(period.start), to_day(period.end)),
                )
            ).scalar_one()
        assert provision and total["provision_for_contingent_liabilities"].total() == provision, quarter
        split = compute(backend, period, by=("business_model",))
        assert sum(r["value"] for r in split["revenue"].rows) == ledger
