"""A hand-worked portfolio whose every metric is known exactly (see test_hand_worked.py for the sums).

One product with no interest and no fees, 3 or 6 monthly installments of 1,000.00 principal, so
every balance is a whole number of installments. The capital-light institutions pay a referral fee
of 25 bp (7.50 on 3,000.00); provision rates are the defaults (C 1%, M1 20%, ...).
Disbursed 2026-01-15 (L5 on 2026-02-01); due on the 15th (L5: on the 1st).

L1 capital-light bank-a, b1: pays on the due date, one day late (03-16), on the due date.
L3 on-balance-sheet, b2: prepays in full on 02-10, before anything falls due.
L4 capital-heavy bank-a, b3: never pays; provision 30.00 on 01-31 (C) and 600.00 on 02-28 (14 DPD,
   M1); guarantee payout at 30 DPD (03-16) turns the provision into the allowance; written off beyond
   180 DPD (08-14), credit loss 2,400.00 after the allowance; recovers 500.00 on 09-01.
L5 capital-light bank-a, b1 again (a repeat drawdown): always pays on the due date.
L6 capital-light bank-b, b4, channel partner: pays 02-15; its 03-15 payment is reversed on 03-20,
   and the installment is paid on 04-10 (26 days late); pays 04-15.
L7 on-balance-sheet, b5, 6 installments: always pays on the due date.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest
from sqlalchemy import Engine

from openice.analytics.backends import snapshot
from openice.close_of_day import run_until
from openice.funding.deal import Deal
from openice.funding.service import Funding
from openice.matching.institutions import Institution, InstitutionKind
from openice.matching.repository import InstitutionRepository
from openice.servicing.products import LoanProduct, RepaymentMethod, demo_products
from openice.servicing.service import Servicing
from openice.servicing.sources import ICE_CHANNEL
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import START, pg_schema_engine

FLAT = LoanProduct(
    code="FLAT",
    currency="CNY",
    tenors=(3, 6),
    method=RepaymentMethod.EQUAL_PRINCIPAL,
    nominal_rate=Decimal(0),
    referral_fee_bps=25,
)
K = 100_000  # one installment: 1,000.00
LONG = replace(FLAT, code="LONG", write_off_dpd=365)  # keeps a loan past 180 DPD on the book


@contextmanager
def source_engine(kind: str, tmp: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated SQLite file or PostgreSQL schema that lives as long as a module's fixture."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp.mktemp('src') / 'openice.db'}")
        migrate(engine, START)
        yield engine
        engine.dispose()
        return
    if not request.getfixturevalue("pg_ok"):
        pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
    schema = pg_schema_engine()
    engine = next(schema)
    migrate(engine, START)
    try:
        yield engine
    finally:
        next(schema, None)


def with_decisioning(source: Engine) -> dict[str, pa.Table]:
    """A snapshot of the source, with decisioning rows of known counts and the PDs of the decisions behind the
    loans."""
    tables = snapshot(source)
    tables["borrowers"] = pa.table(
        {
            "id": ["b1", "b2", "b3", "b4", "b5", "b6", "b7"],
            "registered_day": [20_400, 20_450, 20_460, 20_461, 20_462, 20_463, 20_600],
        }
    )
    tables["credit_lines"] = pa.table(
        {
            "id": ["c1", "c1b", "c2", "c3", "c4", "c5"],
            "borrower_id": ["b1", "b1", "b2", "b3", "b4", "b5"],
            "approved_day": [20_450, 20_455, 20_460, 20_461, 20_462, 20_700],
            "pd": [0.02, 0.03, 0.05, 0.2, 0.08, None],
            "grade": ["A", "B", "B", "E", "C", None],
        }
    )
    # Each loan drawn on its borrower's first line; b5's line carries no PD (a decision made without a model).
    lines = {"b1": "c1", "b2": "c2", "b3": "c3", "b4": "c4", "b5": "c5"}
    loans = tables["loans"]
    tables["drawdowns"] = pa.table(
        {
            "loan_id": loans.column("id"),
            "line_id": [lines[b] for b in loans.column("borrower_id").to_pylist()],
        }
    )
    tables["institutions"] = pa.table(
        {
            "code": ["bank-a", "bank-b"],
            "funding_cost_ppm": [50_000, 80_000],
            "kind": pa.array([None, None], pa.string()),
        }
    )
    return tables


def seeded(engine: Engine) -> Servicing:
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    return servicing


def build(servicing: Servicing, engine: Engine) -> dict[str, int]:
    servicing.create_product(FLAT)
    ids: dict[str, int] = {}

    def originate(name: str, model: str, funder: str, borrower: str, tenor: int = 3, channel: str = "direct") -> None:
        ids[name] = servicing.originate(
            product_code="FLAT",
            principal=tenor * K,
            tenor=tenor,
            funder=funder,
            business_model=model,
            borrower_id=borrower,
            channel=channel,
            idempotency_key=f"orig-{name}",
            guarantee_payout_dpd=30 if model == "capital-heavy" else None,
        )["loan_id"]

    def on(day: date, *payments: str) -> None:
        run_until(engine, day)
        for name in payments:
            servicing.repay(ids[name], K, f"pay-{name}-{day}")

    originate("L1", "capital-light", "bank-a", "b1")
    originate("L3", "on-balance-sheet", "platform", "b2")
    originate("L4", "capital-heavy", "bank-a", "b3")
    originate("L6", "capital-light", "bank-b", "b4", channel="partner")
    originate("L7", "on-balance-sheet", "platform", "b5", tenor=6)
    run_until(engine, date(2026, 2, 1))
    originate("L5", "capital-light", "bank-a", "b1")
    run_until(engine, date(2026, 2, 10))
    servicing.prepay(ids["L3"], 3 * K, "prepay-L3")
    on(date(2026, 2, 15), "L1", "L6", "L7")
    on(date(2026, 3, 1), "L5")
    run_until(engine, date(2026, 3, 15))
    reversed_txn = servicing.repay(ids["L6"], K, "pay-L6-reversed")["transaction_id"]
    servicing.repay(ids["L7"], K, "pay-L7-03-15")
    on(date(2026, 3, 16), "L1")
    run_until(engine, date(2026, 3, 20))
    servicing.reverse(reversed_txn, "reverse-L6")
    on(date(2026, 4, 1), "L5")
    on(date(2026, 4, 10), "L6")
    on(date(2026, 4, 15), "L1", "L6", "L7")
    on(date(2026, 5, 1), "L5")
    on(date(2026, 5, 15), "L7")
    on(date(2026, 6, 15), "L7")
    on(date(2026, 7, 15), "L7")
    run_until(engine, date(2026, 9, 1))
    servicing.recover(ids["L4"], 50_000, "recover-L4")
    run_until(engine, date(2026, 10, 1))
    return ids


def build_disclosure(servicing: Servicing, engine: Engine) -> dict[str, int]:
    """The disclosure-convention portfolio (figures worked in test_disclosure_conventions.py): capital-light,
    bank-a, FLAT unless said, 3 monthly installments of 1,000.00 (D6: 2,000.00); the book is closed through
    2026-09-15 (business date 09-16).

    D1 LONG (write-off at 365 DPD), 01-15: never pays (overdue since 02-15: 213 DPD on 09-15, not written off).
    D5 01-15: pays 02-15 on the day; misses 03-15 and pays it on 04-15 (31 days late) with 04-15's on the day.
    D6 01-31 (dues 02-28, 03-31, 04-30): pays 02-28's on 03-30 (30 days late), the others on their due dates.
    D2 04-15: never pays (overdue since 05-15: 124 DPD on 09-15; written off at 180, after the book's end).
    D3 07-15: pays 08-15 and 09-15 on the day.
    """
    for product in (FLAT, LONG):
        servicing.create_product(product)
    ids: dict[str, int] = {}

    def originate(name: str, product: str = "FLAT", installment: int = K) -> None:
        ids[name] = servicing.originate(
            product_code=product,
            principal=3 * installment,
            tenor=3,
            funder="bank-a",
            business_model="capital-light",
            borrower_id=name.lower(),
            channel="direct",
            idempotency_key=f"orig-{name}",
        )["loan_id"]

    def pay(day: date, name: str, amount: int) -> None:
        run_until(engine, day)
        servicing.repay(ids[name], amount, f"pay-{name}-{day}")

    originate("D1", "LONG")
    originate("D5")
    run_until(engine, date(2026, 1, 31))
    originate("D6", installment=2 * K)
    pay(date(2026, 2, 15), "D5", K)
    pay(date(2026, 3, 30), "D6", 2 * K)
    pay(date(2026, 3, 31), "D6", 2 * K)
    pay(date(2026, 4, 15), "D5", 2 * K)
    originate("D2")
    pay(date(2026, 4, 30), "D6", 2 * K)
    run_until(engine, date(2026, 7, 15))
    originate("D3")
    pay(date(2026, 8, 15), "D3", K)
    pay(date(2026, 9, 15), "D3", K)
    run_until(engine, date(2026, 9, 16))
    return ids


FUNDING_COSTS = {"bank-a": Decimal("0.05"), "bank-b": Decimal("0.08")}
FUNDING_KINDS: dict[str, InstitutionKind] = {"bank-a": "bank", "bank-b": "trust"}
DEAL_FUNDER = "ABS:DEAL-1"
DEAL_ISSUED = date(2026, 3, 1)
FLATI = replace(FLAT, code="FLATI", nominal_rate=Decimal("0.12"))  # interest: the platform's, then the trust's


def build_funding(servicing: Servicing, engine: Engine) -> dict[str, int]:
    """The funding-mix portfolio (figures worked in test_funding_mix.py): FLAT, 3 monthly installments of 1,000.00,
    disbursed 2026-01-15, due on the 15th; the book is closed through 2026-03-31. Institutions on file: bank-a, a bank
    at a 5% funding cost, and bank-b, a trust (its loans are the `trust` funding source) at 8%.

    F1 capital-light bank-a, direct: pays 02-15 and 03-15 (1 K left).
    F2 capital-light bank-b, matched by the open platform (ICE): pays 02-15 (2 K left).
    F3 capital-heavy bank-a, payout at 30 DPD: never pays; paid out 03-16, platform capital from then (3 K).
    F4 technology, bank-b: pays 02-15 and 03-15 (1 K).
    F5 on balance sheet: pays 02-15 (2 K).
    F6 on balance sheet, at 12% a year (FLATI): pays 02-15 and 03-15 what is due (1 K left); sold on 03-01 into deal
       DEAL-1 (`DEAL_1`, issued over the book: a true sale, its funder ABS:DEAL-1 from then): pool 2 K, notes
       A 1,200.00 at 4% and B 400.00 at 8%, residual R 400.00.
    """
    with EngineUnits(engine).begin() as conn:
        for code, cost in FUNDING_COSTS.items():
            InstitutionRepository(conn).upsert(
                Institution(
                    code=code,
                    name=code,
                    kind=FUNDING_KINDS[code],
                    business_model="capital-light",
                    funding_cost=cost,
                    rate=cost,
                    daily_quota=10**9,
                    monthly_quota=10**10,
                )
            )
    servicing.create_product(FLAT)
    servicing.create_product(FLATI)
    ids: dict[str, int] = {}
    loans = (
        ("F1", "capital-light", "bank-a", "direct"),
        ("F2", "capital-light", "bank-b", ICE_CHANNEL),
        ("F3", "capital-heavy", "bank-a", "direct"),
        ("F4", "technology", "bank-b", "direct"),
        ("F5", "on-balance-sheet", "platform", "direct"),
        ("F6", "on-balance-sheet", "platform", "direct"),
    )
    run_until(engine, date(2026, 1, 15))
    for name, model, funder, channel in loans:
        ids[name] = servicing.originate(
            product_code="FLATI" if name == "F6" else "FLAT",
            principal=3 * K,
            tenor=3,
            funder=funder,
            business_model=model,
            borrower_id=name.lower(),
            channel=channel,
            idempotency_key=f"orig-{name}",
            guarantee_payout_dpd=30 if model == "capital-heavy" else None,
        )["loan_id"]
    for day, payers in ((date(2026, 2, 15), ("F1", "F2", "F4", "F5", "F6")), (date(2026, 3, 15), ("F1", "F4", "F6"))):
        run_until(engine, day)
        for name in payers:
            due = servicing.loan(ids[name]).total_due() if name == "F6" else K
            servicing.repay(ids[name], due, f"pay-{name}-{day}")
        if day.month == 2:
            run_until(engine, DEAL_ISSUED)
            Funding(EngineUnits(engine)).issue(Deal.from_dict(DEAL_1), DEAL_1, DEAL_ISSUED)
    run_until(engine, date(2026, 4, 1))
    return ids


DEAL_1 = {
    "name": "DEAL-1",
    "currency": "CNY",
    "pool_balance": "2000.00",
    "tranches": [
        {"name": "A", "balance": "1200.00", "coupon": "0.04"},
        {"name": "B", "balance": "400.00", "coupon": "0.08"},
        {"name": "R", "balance": "400.00"},
    ],
    "eligibility": {"products": ["FLATI"]},
    "derecognise": True,
}
