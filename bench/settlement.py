"""Benchmark: an institution's settlement statements and what it still owes, on a serviced book.

    .venv/bin/python -m bench.settlement               # 2,000 loans serviced for three months, SQLite
    .venv/bin/python -m bench.settlement --quick       # 400 loans
    .venv/bin/python -m bench.settlement --db postgresql+psycopg://postgres@127.0.0.1:5432/bench   # PostgreSQL

The book: loans originated on the first day for two institutions (one capital-light, one capital-heavy with a
payout at 30 days past due), repaid in full on each due date except one loan in seven, closed day by day by end of
day. Measured, best of `--rounds`: INST-A's month statements over the book's months, its daily statements for the
second month, and its outstanding (its whole history). The baseline, in the same run, is the journal read each of
them is made of (`SettlementRepository.movements`, no rules applied): the least any statement must read. The ratio
is the statement's CPU over its read's; CPU per loan of the institution is the figure to watch as books grow.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.machine import describe, machine_facts
from openice.close_of_day import run_until
from openice.servicing import queries, settlement
from openice.servicing.products import demo_products
from openice.servicing.repository import SettlementRepository
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from openice.tenancy import PLATFORM, Principal, Role, Scope

RESULTS = Path(__file__).resolve().parent / "results"
START = date(2026, 1, 15)
OPERATOR = Principal("bench", Role.OPERATOR, PLATFORM)


def build(engine: Engine, loans: int, months: int) -> Servicing:
    migrate(engine, START)
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    ids = [
        servicing.originate(
            product_code="CASH-EI",
            principal=500_000 + 1_000 * (n % 97),
            tenor=12,
            funder=("INST-A", "INST-B")[n % 2],
            business_model=("capital-light", "capital-heavy")[n % 2],
            idempotency_key=f"o{n}",
            funder_rate=Decimal("0.09"),
            guarantee_payout_dpd=30 if n % 2 else None,
        )["loan_id"]
        for n in range(loans)
    ]
    for month in range(1, months + 1):
        print(f"servicing month {month} of {months}", file=sys.stderr)
        run_until(engine, START.replace(month=START.month + month))
        for n, loan_id in enumerate(ids):
            if n % 7 and (due := servicing.loan(loan_id).total_due()):
                servicing.repay(loan_id, due, f"r{loan_id}-{month}")
    run_until(engine, START.replace(month=START.month + months, day=START.day + 1))
    return servicing


def best(call: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """The fastest of `rounds` runs: (wall seconds, CPU seconds of this process)."""
    runs = []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        call()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs, key=lambda r: r[1])


def measure(engine: Engine, months: int, rounds: int) -> list[dict[str, Any]]:
    first, last = START.replace(day=1), START.replace(month=START.month + months, day=1) - timedelta(days=1)
    second = START.replace(month=START.month + 1, day=1)
    second_last = START.replace(month=START.month + 2, day=1) - timedelta(days=1)
    with engine.connect() as conn:
        scope, repository = Scope(conn, OPERATOR), SettlementRepository(conn)
        institution_loans = conn.execute(
            text("SELECT COUNT(*) FROM loans WHERE original_funder = 'INST-A'")
        ).scalar_one()
        cases = {
            "month statements": (
                lambda: queries.settlement_statements(scope, "INST-A", settlement.Period.MONTH, first, last),
                lambda: repository.movements("INST-A", "CNY", first, last),
            ),
            "daily statements, one month": (
                lambda: queries.settlement_statements(scope, "INST-A", settlement.Period.DAY, second, second_last),
                lambda: repository.movements("INST-A", "CNY", second, second_last),
            ),
            "outstanding": (
                lambda: queries.settlement_outstanding(scope, "INST-A"),
                lambda: repository.movements("INST-A", "CNY", None, None),
            ),
        }
        results = []
        for name, (statement, read) in cases.items():
            wall, cpu = best(statement, rounds)
            read_wall, read_cpu = best(read, rounds)
            results.append(
                {
                    "metric": name,
                    "value": round(wall, 4),
                    "unit": "s",
                    "cpu_s": round(cpu, 4),
                    "cpu_us_per_loan": round(cpu / institution_loans * 1e6, 1),
                    "baseline": "the journal read alone",
                    "baseline_value": round(read_wall, 4),
                    "baseline_cpu_s": round(read_cpu, 4),
                    "ratio": round(cpu / read_cpu, 2) if read_cpu else None,
                    "loans": institution_loans,
                }
            )
            print(f"{name}: {wall:.3f} s wall, {cpu:.3f} s CPU; read alone {read_cpu:.3f} s CPU", file=sys.stderr)
    return results


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Settlement statements ({doc['date']})",
        "",
        f"Command: `{doc['command']}`. Machine: {describe(doc['machine'])}. Book: {doc['loans']:,} loans over "
        f"{doc['months']} months on {doc['engine']}; INST-A holds {doc['results'][0]['loans']:,} of them.",
        "",
        "| what | wall (s) | CPU (s) | CPU per loan (µs) | journal read alone, CPU (s) | ratio (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['cpu_s']} | {r['cpu_us_per_loan']} | {r['baseline_cpu_s']} | "
        f"{r['ratio']} |"
        for r in doc["results"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="400 loans")
    parser.add_argument("--db", help="a PostgreSQL URL (an empty database); default a temporary SQLite file")
    args = parser.parse_args()
    loans = 400 if args.quick else args.loans
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.db or f"sqlite:///{Path(tmp) / 'bench.db'}")
        build(engine, loans, args.months)
        results = measure(engine, args.months, args.rounds)
        engine.dispose()
    doc = {
        "name": "settlement",
        "date": date.today().isoformat(),
        "command": "python -m bench.settlement"
        + (" --quick" if args.quick else f" --loans {loans}")
        + (" --db postgresql+psycopg://..." if args.db else ""),
        "machine": machine_facts(),
        "engine": "PostgreSQL" if args.db else "SQLite",
        "loans": loans,
        "months": args.months,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "settlement" + (".quick" if args.quick else "") + (".postgres" if args.db else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    (RESULTS / f"{name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
