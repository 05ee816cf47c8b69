"""Benchmark: one end-of-day over a large book, against a plain per-loan Python loop.

    .venv/bin/python -m bench.eod                      # 1,000,000 loans on PostgreSQL and SQLite
    .venv/bin/python -m bench.eod --quick              # 20,000 loans, for a quick look

The book is generated vectorised (numpy) straight into the tables: mixed products and tenors,
loans mid-life, about 10% delinquent by 1-6 installments. Installment amounts are the product
schedules of a template principal, scaled to each loan (the benchmark measures speed, not
schedules). The measured day is closed by `close_business_day` in a child process whose peak
RSS (VmHWM) is reported. The baseline closes the same kind of day on a 10,000-loan book the plain way:
for each active loan, load it through the repository, run `LoanAccount.close_day`, save it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, insert, select, text

from bench.machine import machine_facts
from openice.servicing.buckets import LADDER, LAST
from openice.servicing.loan import BusinessModel, LoanAccount
from openice.servicing.products import PPM, demo_products, to_ppm
from openice.servicing.repository import servicing_unit
from openice.storage import servicing_tables
from openice.storage.days import to_day
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

ROOT = Path(__file__).resolve().parents[1]

PG_URL = os.environ.get("OPENICE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BUSINESS_DATE = date(2026, 6, 10)  # a normal day; --month-end closes 2026-06-30 instead
TEMPLATE_PRINCIPAL = 1_000_000
LOAN_COLUMNS = [c.name for c in servicing_tables.loans.columns]
INSTALLMENT_COLUMNS = [c.name for c in servicing_tables.installments.columns]


def generate(n: int, seed: int, business_date: date) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Loans and installments as column arrays, consistent with a book serviced up to `business_date`."""
    rng = np.random.default_rng(seed)
    today = to_day(business_date)
    products = demo_products()
    templates = []  # (product, tenor, template installments)
    for p in products:
        for tenor in p.tenors:
            loan = LoanAccount.originate(
                0, p, TEMPLATE_PRINCIPAL, tenor, business_date, "x", BusinessModel.CAPITAL_LIGHT
            )
            templates.append((p, tenor, loan.installments))
    choice = rng.integers(0, len(templates), n)
    principal = rng.integers(50, 5_000, n) * 1_000
    counts = np.array([len(templates[c][2]) for c in choice])
    span = np.array([(tp[2][-1].due_date - business_date).days for tp in templates])[choice]
    age = (rng.random(n) * (span - 1)).astype(np.int64)  # days since disbursement, before maturity
    disbursed = today - age
    model_pick = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    models = np.array(["capital-light", "capital-heavy", "on-balance-sheet"])[model_pick]
    delinquent = rng.random(n) < 0.10
    missed = np.where(delinquent, rng.integers(1, 7, n), 0)

    loan_id = np.repeat(np.arange(1, n + 1), counts)
    seq = np.concatenate([np.arange(1, c + 1) for c in counts]) if n else np.array([], dtype=np.int64)
    owner = np.repeat(np.arange(n), counts)
    flat_tpl = {
        k: np.array([[getattr(i, k) for i in tp[2]] + [0] * (40 - len(tp[2])) for tp in templates])
        for k in ("principal", "interest", "fee")
    }
    offsets = np.array(
        [[(i.due_date - business_date).days for i in tp[2]] + [0] * (40 - len(tp[2])) for tp in templates]
    )
    starts = np.array(
        [[(i.period_start - business_date).days for i in tp[2]] + [0] * (40 - len(tp[2])) for tp in templates]
    )
    tpl_row = choice[owner]
    scale = principal[owner] / TEMPLATE_PRINCIPAL
    inst_principal = np.floor(flat_tpl["principal"][tpl_row, seq - 1] * scale).astype(np.int64)
    last = seq == counts[owner]
    residual = principal - np.bincount(owner, weights=inst_principal, minlength=n).astype(np.int64)
    inst_principal[last] += residual[owner[last]]
    inst_interest = np.floor(flat_tpl["interest"][tpl_row, seq - 1] * scale).astype(np.int64)
    inst_fee = np.floor(flat_tpl["fee"][tpl_row, seq - 1] * scale).astype(np.int64)
    due = disbursed[owner] + offsets[tpl_row, seq - 1]
    period_start = disbursed[owner] + starts[tpl_row, seq - 1]
    booked = due <= today
    booked_count = np.bincount(owner, weights=booked, minlength=n).astype(np.int64)
    missed = np.minimum(missed, booked_count)
    unpaid = booked & (seq > (booked_count - missed)[owner])
    paid = booked & ~unpaid
    inst = {
        "loan_id": loan_id,
        "seq": seq,
        "period_start_day": period_start,
        "due_day": due,
        "principal": inst_principal,
        "interest": inst_interest,
        "fee": inst_fee,
        "principal_paid": np.where(paid, inst_principal, 0),
        "interest_paid": np.where(paid, inst_interest, 0),
        "fee_paid": np.where(paid, inst_fee, 0),
        "booked": booked,
        "fee_amortisation": np.zeros(len(loan_id), dtype=np.int64),  # no upfront fees deferred in the book
    }

    def per_loan(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values, minlength=n).astype(np.int64)

    first_unpaid_due = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_unpaid_due, owner[unpaid], due[unpaid])
    overdue = first_unpaid_due < today
    dpd = np.where(overdue, today - np.where(overdue, first_unpaid_due, today), 0)
    paid_out = (models == "capital-heavy") & (dpd >= 80)  # their guarantee was paid on an earlier day
    heavy = (models == "capital-heavy") & ~paid_out
    future_fees = per_loan(np.where(~booked, inst_fee, 0))
    next_seq = booked_count + 1
    loans = {
        "id": np.arange(1, n + 1),
        "borrower_id": np.array([f"B{i}" for i in range(n)]),
        "product_code": np.array([templates[c][0].code for c in choice]),
        "currency": np.full(n, "CNY"),
        "principal": principal,
        "tenor": np.array([templates[c][1] for c in choice]),
        "rate_ppm": np.array([to_ppm(templates[c][0].nominal_rate, "rate") for c in choice]),
        "funder_rate_ppm": np.array([to_ppm(templates[c][0].nominal_rate, "rate") for c in choice]),
        "guarantee_share_ppm": np.full(n, PPM),  # the generated contract assets hold all future fees
        "method": np.array([templates[c][0].method.value for c in choice]),
        "day_count": np.array([templates[c][0].day_count.value for c in choice]),
        "disbursed_day": disbursed,
        "maturity_day": disbursed + span,
        "funder": np.where((models == "on-balance-sheet") | paid_out, "platform", "bank-a"),
        "original_funder": np.where(models == "on-balance-sheet", "platform", "bank-a"),
        "business_model": models,
        "channel": np.full(n, "direct"),
        "upfront_fee": np.zeros(n, dtype=np.int64),
        "monthly_fee": inst_fee[seq == 1],
        "grace_days": np.array([templates[c][0].grace_days for c in choice]),
        "late_fee_ppm": np.array([to_ppm(templates[c][0].late_fee_daily_rate, "x") for c in choice]),
        "late_fee_cap": principal * np.array([to_ppm(templates[c][0].late_fee_cap_rate, "x") for c in choice]) // PPM,
        "write_off_dpd": np.full(n, 180),
        "non_accrual_dpd": np.full(n, 90),
        "prepayment_allowed": np.ones(n, dtype=bool),
        "prepayment_fee_ppm": np.zeros(n, dtype=np.int64),
        "component_order": np.full(n, "penalty,fee,interest,principal"),
        "allocation": np.full(n, "by-installment"),
        "guarantee_payout_dpd": np.where(models == "capital-heavy", 80, -1),
        "guarantee_paid": paid_out,
        "status": np.full(n, "active"),
        "closed_day": np.full(n, -1),
        "current_seq": np.where(next_seq <= counts, next_seq, -1),
        "overdue_since": np.where(overdue, first_unpaid_due, -1),
        "dpd": dpd,
        "bucket": np.select([dpd <= upper for _, upper in LADDER], [name for name, _ in LADDER], LAST),
        "late_fees_charged": np.zeros(n, dtype=np.int64),
        "recovered": np.zeros(n, dtype=np.int64),
        "bal_loan_principal": principal - per_loan(np.where(paid, inst_principal, 0)),
        "bal_interest_accrued": np.zeros(n, dtype=np.int64),
        "bal_interest_receivable": per_loan(np.where(unpaid, inst_interest, 0)),
        "bal_fee_receivable": per_loan(np.where(unpaid, inst_fee, 0)),
        "bal_penalty_receivable": np.zeros(n, dtype=np.int64),
        "bal_guarantee_contract_asset": np.where(heavy, future_fees, 0),
        "bal_guarantee_liability": np.where(heavy, -future_fees, 0),
        "bal_guarantee_provision": np.zeros(n, dtype=np.int64),
        "bal_loan_loss_allowance": np.zeros(n, dtype=np.int64),
        "written_off": np.zeros(n, dtype=np.int64),
        "version": np.ones(n, dtype=np.int64),
    }
    # Nothing starts in suspense or deferred: the generated receivables of loans already past the non-accrual DPD
    # were recognised before they crossed it, and the book has no upfront fees.
    for column in ("bal_interest_suspense", "bal_fee_suspense", "bal_penalty_suspense", "bal_deferred_origination_fee"):
        loans[column] = np.zeros(n, dtype=np.int64)
    for k, column in enumerate(servicing_tables.PROVISION_RATE_COLUMNS):
        loans[column] = np.array([to_ppm(templates[c][0].provision_rates[k], "x") for c in choice])
    return loans, inst


NULLABLE_NEG = {"guarantee_payout_dpd", "closed_day", "current_seq", "overdue_since"}


def rows_of(columns: dict[str, np.ndarray], names: list[str], start: int, stop: int) -> list[tuple]:
    cols = []
    for name in names:
        values = columns[name][start:stop].tolist()
        if name in NULLABLE_NEG:
            values = [None if v == -1 else v for v in values]
        cols.append(values)
    return list(zip(*cols, strict=True))


def load_postgres(url: str, loans: dict, inst: dict) -> None:
    engine = create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, columns, names in (("loans", loans, LOAN_COLUMNS), ("installments", inst, INSTALLMENT_COLUMNS)):
            size = len(columns[names[0]])
            for start in range(0, size, 500_000):
                buf = io.StringIO()
                for row in rows_of(columns, names, start, min(size, start + 500_000)):
                    buf.write(
                        "\t".join(
                            "\\N" if v is None else ("t" if v is True else "f" if v is False else str(v)) for v in row
                        )
                        + "\n"
                    )
                buf.seek(0)
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    while chunk := buf.read(1 << 20):
                        copy.write(chunk)
            raw.commit()
        raw.commit()
    finally:
        raw.close()
    # A long-lived book is vacuumed: without this the first end of day pays for setting hint bits
    # on 13M freshly copied rows and races autovacuum's insert-triggered pass.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) loans"))
        conn.execute(text("VACUUM (ANALYZE) installments"))
    engine.dispose()


def load_sqlite(url: str, loans: dict, inst: dict) -> None:
    engine = make_engine(url)
    for table, columns, names in (
        (servicing_tables.loans, loans, LOAN_COLUMNS),
        (servicing_tables.installments, inst, INSTALLMENT_COLUMNS),
    ):
        size = len(columns[names[0]])
        for start in range(0, size, 200_000):
            rows = rows_of(columns, names, start, min(size, start + 200_000))
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows
                )
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def opening_balances(url: str) -> None:
    """One opening entry so the trial balance starts at zero: the generated balances against funding cash."""
    engine = make_engine(url)
    with engine.begin() as conn:
        sums = {
            a: conn.execute(
                select(func.coalesce(func.sum(getattr(servicing_tables.loans.c, f"bal_{a}")), 0))
            ).scalar_one()
            for a in (
                "loan_principal",
                "interest_receivable",
                "fee_receivable",
                "guarantee_contract_asset",
                "guarantee_liability",
            )
        }
        entry_id = conn.execute(
            insert(servicing_tables.journal_entries)
            .values(loan_id=None, business_day=to_day(BUSINESS_DATE), kind="opening_balance", created_at="bench")
            .returning(servicing_tables.journal_entries.c.id)
        ).scalar_one()
        lines = [dict(entry_id=entry_id, loan_id=0, account=a, amount=int(v)) for a, v in sums.items()]
        lines.append(dict(entry_id=entry_id, loan_id=0, account="funding_cash", amount=-int(sum(sums.values()))))
        conn.execute(insert(servicing_tables.journal_lines), lines)
    engine.dispose()


def build(url: str, n: int, seed: int, business_date: date) -> float:
    t0 = time.perf_counter()
    engine = make_engine(url)
    migrate(engine, business_date)
    with engine.begin() as conn:
        conn.execute(text("UPDATE business_calendar SET business_day = :d"), {"d": to_day(business_date)})
        for p in demo_products():
            conn.execute(
                insert(servicing_tables.products).values(
                    code=p.code, currency=p.currency, definition=json.dumps(p.to_dict()), created_at="bench"
                )
            )
    engine.dispose()
    loans, inst = generate(n, seed, business_date)
    (load_postgres if url.startswith("postgresql") else load_sqlite)(url, loans, inst)
    opening_balances(url)
    return time.perf_counter() - t0


def set_based_day(url: str) -> tuple[float, float, dict, dict]:
    """Close one day in a child process; returns seconds, its peak RSS in MiB, rows and seconds per step."""
    # The child reads its own high-water mark (VmHWM): getrusage would carry over the parent's
    # peak from before exec.
    code = (
        "import json, sys, time; from openice.storage.engine import make_engine; "
        "from openice.close_of_day import close_business_day; e = make_engine(sys.argv[1]); "
        "marks = [('start', time.perf_counter())]; "
        "r = close_business_day(e, lambda step: marks.append((step, time.perf_counter()))); "
        "s = time.perf_counter() - marks[0][1]; "
        "steps = {b[0]: round(b[1] - a[1], 3) for a, b in zip(marks, marks[1:])}; "
        "hwm = [int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0]; "
        "print(json.dumps({'seconds': s, 'rows': r.rows, 'steps': steps, 'peak_kib': hwm}))"
    )
    out = subprocess.run([sys.executable, "-c", code, url], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["peak_kib"] / 1024, result["rows"], result["steps"]


def per_loan_loop_day(url: str) -> tuple[float, int]:
    """The baseline: every active loan loaded, closed and saved one at a time."""
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                select(servicing_tables.loans.c.id).where(servicing_tables.loans.c.status == "active")
            )
        ]
        day = conn.execute(select(servicing_tables.business_calendar.c.business_day)).scalar_one()
    t0 = time.perf_counter()
    with servicing_unit(EngineUnits(engine)) as uow:
        for loan_id in ids:
            loan = uow.loans.get(loan_id)
            loan.close_day(date(1970, 1, 1) + timedelta(days=day))
            uow.loans.save(loan)
        uow.conn.execute(text("UPDATE business_calendar SET business_day = business_day + 1"))
    seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds, len(ids)


def fresh_url(engine_name: str, tmp: Path) -> tuple[str, object]:
    if engine_name == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: [Path(str(path) + s).unlink(missing_ok=True) for s in ("", "-wal", "-shm")]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--baseline-loans", type=int, default=10_000)
    parser.add_argument("--engines", default="postgres,sqlite")
    parser.add_argument("--month-end", action="store_true", help="close a month's last day (accrual for all loans)")
    parser.add_argument("--quick", action="store_true", help="20,000 loans and a 2,000-loan baseline")
    parser.add_argument(
        "--warmup-days",
        type=int,
        default=0,
        help="close this many days first, untimed (the timed day is then a steady-state one)",
    )
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "eod.json"))
    args = parser.parse_args()
    if args.quick:
        args.loans, args.baseline_loans = 20_000, 2_000
    business_date = date(2026, 6, 30) - timedelta(days=args.warmup_days) if args.month_end else BUSINESS_DATE
    results = []
    table = []
    for engine_name in args.engines.split(","):
        url, drop = fresh_url(engine_name, Path(args.tmp))
        try:
            build_s = build(url, args.loans, 1, business_date)
            for _ in range(args.warmup_days):  # not timed: e.g. the day the delinquent book's collection cases open
                set_based_day(url)
            seconds, peak_mib, rows, steps = set_based_day(url)
        finally:
            drop()
        url, drop = fresh_url(engine_name, Path(args.tmp))
        try:
            build(url, args.baseline_loans, 2, business_date)
            loop_s, loop_n = per_loan_loop_day(url)
        finally:
            drop()
        rate, loop_rate = args.loans / seconds, loop_n / loop_s
        table.append(
            (
                engine_name,
                args.loans,
                build_s,
                seconds,
                rate,
                peak_mib,
                loop_n,
                loop_s,
                loop_rate,
                {"rows": rows, "seconds": steps},
            )
        )
        day_kind = "month_end" if args.month_end else "day"
        results += [
            {
                "metric": f"eod_{day_kind}_{engine_name}_{args.loans}_loans_seconds",
                "value": round(seconds, 2),
                "unit": "s",
                "target": 60 if engine_name == "postgres" else None,
            },
            {
                "metric": f"eod_{day_kind}_{engine_name}_loans_per_second",
                "value": round(rate),
                "unit": "loans/s",
                "target": None,
                "baseline": "per-loan python loop (load, close_day, save)",
                "baseline_value": round(loop_rate, 1),
                "ratio": round(rate / loop_rate, 1),
            },
            {
                "metric": f"eod_{day_kind}_{engine_name}_peak_rss_mib",
                "value": round(peak_mib),
                "unit": "MiB",
                "target": 4096,
            },
            {
                "metric": f"eod_{day_kind}_{engine_name}_collections_step_seconds",
                "value": steps.get("collections"),
                "unit": "s",
                "target": None,
                "baseline": "the whole end of day",
                "baseline_value": round(seconds, 2),
                "ratio": round(steps["collections"] / seconds, 3) if "collections" in steps else None,
            },
        ]
    print(f"\nEnd of day {business_date} ({'month end' if args.month_end else 'a normal day'})")
    print(
        f"{'engine':9} {'loans':>10} {'build s':>8} {'EOD s':>7} {'loans/s':>10} {'peak MiB':>9} "
        f"{'loop loans':>10} {'loop s':>7} {'loop/s':>8} {'ratio':>7}"
    )
    for e, n, b, s, r, m, ln, ls, lr, _ in table:
        print(
            f"{e:9} {n:>10,} {b:>8.1f} {s:>7.2f} {r:>10,.0f} {m:>9.0f} {ln:>10,} {ls:>7.2f} {lr:>8,.0f} {r / lr:>7.1f}"
        )
    for e, *_, per_step in table:
        print(f"  {e} rows per step: {per_step['rows']}")
        print(f"  {e} seconds per step: {per_step['seconds']}")
    out = {"name": "eod", "date": date.today().isoformat(), "machine": machine_facts(), "results": results}
    path = Path(args.out)
    previous = json.loads(path.read_text()) if path.exists() and args.out.endswith("eod.json") else None
    if previous and previous.get("date") == out["date"]:
        kept = [r for r in previous["results"] if r["metric"] not in {x["metric"] for x in results}]
        out["results"] = kept + results
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
