"""Kill the end-of-day process at random points; the rerun must equal an uninterrupted run."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from openice.close_of_day import run_until
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import PG_URL, START

TARGET = START + timedelta(days=200)  # crosses month ends: accrual, provision and snapshot steps run


def build_book(url: str) -> None:
    """The same loan book, deterministically, with some borrowers already late."""
    engine = make_engine(url)
    migrate(engine, START)
    service = Servicing(EngineUnits(engine))
    for product in demo_products():
        service.create_product(product)
    rnd = random.Random(11)
    for k in range(400):
        product = rnd.choice(demo_products())
        model = rnd.choice(["capital-light", "capital-heavy", "on-balance-sheet"])
        service.originate(
            product_code=product.code,
            principal=rnd.randint(100, 3000) * 1000,
            tenor=rnd.choice(product.tenors),
            funder="bank-a",
            business_model=model,
            guarantee_payout_dpd=10 if model == "capital-heavy" else None,
            idempotency_key=f"o{k}",
        )
    run_until(engine, START + timedelta(days=35))
    engine.dispose()


def state(url: str) -> dict[str, list]:
    engine = make_engine(url)
    queries = {
        "loans": "SELECT id, status, dpd, bucket, overdue_since, late_fees_charged, funder, guarantee_paid, "
        "current_seq, bal_loan_principal, bal_interest_accrued, bal_interest_receivable, bal_fee_receivable, "
        "bal_penalty_receivable, bal_guarantee_contract_asset, bal_guarantee_liability, "
        "bal_guarantee_provision, bal_loan_loss_allowance FROM loans ORDER BY id",
        "installments": "SELECT loan_id, seq, booked FROM installments ORDER BY loan_id, seq",
        "ledger": "SELECT loan_id, account, SUM(amount) FROM journal_lines GROUP BY loan_id, account "
        "ORDER BY loan_id, account",
        "outbox": "SELECT event_type, loan_id, payload FROM outbox ORDER BY event_type, loan_id, payload",
        "collection_cases": "SELECT loan_id, status, resolution, opened_day, closed_day, stage, dpd, overdue_amount, "
        "next_contact_day, promises_kept, promises_broken FROM collection_cases "
        "ORDER BY loan_id, opened_day",
        "collection_actions": "SELECT loan_id, business_day, kind, amount, detail FROM collection_actions "
        "ORDER BY loan_id, business_day, kind, amount, detail",
        "snapshots": "SELECT as_of_day, loan_id, dpd, principal_outstanding FROM portfolio_snapshots "
        "ORDER BY as_of_day, loan_id",
        "calendar": "SELECT business_day, eod_day FROM business_calendar",
        "progress": "SELECT business_day, step, rows FROM eod_progress ORDER BY business_day, step",
    }
    with engine.connect() as conn:
        out = {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in queries.items()}
    engine.dispose()
    return out


EOD_SCRIPT = (
    "import sys; from datetime import date; from openice.storage.engine import make_engine; "
    "from openice.close_of_day import run_until; "
    "run_until(make_engine(sys.argv[1]), date.fromisoformat(sys.argv[2]))"
)


def eod_command(url: str) -> list[str]:
    """The end of day in a process of its own (what `openice eod --to` runs, without the CLI's start-up)."""
    return [sys.executable, "-c", EOD_SCRIPT, url, TARGET.isoformat()]


def crash_and_resume(url: str, kills: int, seed: int) -> int:
    """Start the end of day, let it complete a random 1-4 more steps, SIGKILL it (mid-transaction as
    often as not); repeat, then let a last run finish. Waiting on progress, not on the clock, makes
    the kills land mid-run however fast or loaded the machine is."""
    rnd = random.Random(seed)
    engine = make_engine(url)
    landed = 0

    def steps_done() -> int:
        with engine.connect().execution_options(openice_readonly=True) as conn:  # never take the write lock
            return conn.execute(text("SELECT COUNT(*) FROM eod_progress")).scalar_one()

    for _ in range(kills * 3):
        goal = steps_done() + rnd.randint(1, 4)
        proc = subprocess.Popen(eod_command(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and steps_done() < goal:
            time.sleep(0.002)
        time.sleep(rnd.uniform(0.0, 0.01))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            landed += 1
        if landed >= kills or proc.returncode == 0:
            break
    engine.dispose()
    subprocess.run(eod_command(url), check=True, stdout=subprocess.DEVNULL)
    return landed


def check(url_a: str, url_b: str) -> None:
    build_book(url_a)
    build_book(url_b)
    run_until(make_engine(url_a), TARGET)
    kills = crash_and_resume(url_b, kills=10, seed=5)
    assert kills >= 10, f"only {kills} kills landed mid-run"
    expected, got = state(url_a), state(url_b)
    for name in expected:
        if name == "progress":
            continue  # the rows column is the same; completion times differ
        assert got[name] == expected[name], name
    assert [r[:2] for r in got["progress"]] == [r[:2] for r in expected["progress"]]


@pytest.mark.slow
def test_sqlite_eod_survives_kill_9(tmp_path) -> None:
    check(f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")


@pytest.mark.slow
def test_postgres_eod_survives_kill_9(pg_ok) -> None:
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable")
    admin = create_engine(PG_URL)
    schemas = [f"crash_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        urls = [f"{PG_URL}?options=-csearch_path%3D{schema}" for schema in schemas]
        check(*urls)
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
