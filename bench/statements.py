"""CPU per statement of the per-request paths on PostgreSQL: `storage.direct.execute` against `Connection.execute`.

    .venv/bin/python -m bench.statements                 # 2,000 calls per round, 6 rounds
    .venv/bin/python -m bench.statements --calls 300     # a quick run

A fresh schema on the loopback PostgreSQL with one originated loan. Each round times, one after the other in the
same process and transaction, the same statement through SQLAlchemy Core (`Connection.execute`, the baseline) and
through `direct.execute`: the 50-column loan row by key, the business date (one small row), and an INSERT of three
journal lines (SQLAlchemy: psycopg's executemany; direct: one multi-row VALUES). The figures are medians over the
rounds of the client's CPU per call (`time.process_time`) and PostgreSQL's backend CPU per call (from /proc); the
ratio is baseline ÷ direct. Nothing is committed: the round's inserts are rolled back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from bench.load_profile import backend_cpu
from bench.machine import describe, machine_facts
from openice.servicing import repository
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage import direct
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

ROOT = Path(__file__).resolve().parents[1]

PG = os.environ.get("OPENICE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def timed(conn: Any, call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Client and PostgreSQL CPU microseconds per call, after a warm-up (psycopg prepares after a few runs)."""
    for _ in range(max(50, calls // 10)):
        call()
    backend = {conn.connection.dbapi_connection.info.backend_pid}
    cpu0, pg0 = time.process_time(), backend_cpu(backend)
    for _ in range(calls):
        call()
    return 1e6 * (time.process_time() - cpu0) / calls, 1e6 * (backend_cpu(backend) - pg0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        parser.error("the benchmark runs against loopback only")
    if not 1 <= args.calls <= 1_000_000 or not 1 <= args.rounds <= 100:
        parser.error("keep --calls in 1..1000000 and --rounds in 1..100")
    schema = f"bench_statements_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(args.pg)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET search_path TO {schema}")
        dbapi_conn.commit()

    try:
        migrate(engine, date(2026, 1, 15))
        servicing = Servicing(EngineUnits(engine))
        for product in demo_products():
            servicing.create_product(product)
        loan = servicing.originate(
            product_code="CASH-EI",
            principal=1_200_000,
            tenor=12,
            funder="BANK-A",
            business_model="capital-light",
            idempotency_key="bench",
            borrower_id="b",
        )["loan_id"]
        lines = [dict(entry_id=1, loan_id=loan, account=a, amount=v) for a, v in (("x", 5), ("y", -3), ("z", -2))]
        cases = {
            "loan_row_by_key": (repository._LOAN, {"loan_id": loan}, lambda r: r.first()),
            "business_date": (repository._CALENDAR, None, lambda r: r.first()),
            "insert_three_journal_lines": (repository._INSERT_LINES, lines, lambda r: r.rowcount),
        }
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {k: {"sqlalchemy": [], "direct": []} for k in cases}
        with engine.connect() as conn, conn.begin():
            for _ in range(args.rounds):
                for name, (statement, params, use) in cases.items():
                    samples[name]["sqlalchemy"].append(
                        timed(conn, lambda s=statement, p=params, f=use: f(conn.execute(s, p)), args.calls)
                    )
                    samples[name]["direct"].append(
                        timed(conn, lambda s=statement, p=params, f=use: f(direct.execute(conn, s, p)), args.calls)
                    )
            conn.rollback()
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    results = []
    for name, by in samples.items():
        for side, label in ((0, "client_cpu"), (1, "postgres_cpu")):
            base = statistics.median(s[side] for s in by["sqlalchemy"])
            mine = statistics.median(s[side] for s in by["direct"])
            results.append(
                dict(
                    metric=f"{name}_{label}_per_call",
                    value=round(mine, 1),
                    unit="us",
                    target=None,
                    baseline="Connection.execute, same statement, same run",
                    baseline_value=round(base, 1),
                    ratio=round(base / mine, 2) if mine else None,
                )
            )
    doc = {
        "name": "statements",
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "sizes": {"calls": args.calls, "rounds": args.rounds},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "statements.json").write_text(json.dumps(doc, indent=2) + "\n")
    table = ["| metric | value | unit | baseline | baseline value | ratio |", "|---|---|---|---|---|---|"]
    table += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['baseline']} | {r['baseline_value']} | {r['ratio']} |"
        for r in results
    ]
    header = (
        f"# statements benchmark, {doc['date']}\n\n{describe(doc['machine'])} at the end, sizes "
        f"{doc['sizes']}, `{' '.join(['python -m bench.statements'] + sys.argv[1:])}`. Medians over "
        "the rounds; the two sides alternate within each round.\n\n"
    )
    (args.out / "statements.md").write_text(header + "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
