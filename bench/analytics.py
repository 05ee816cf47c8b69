"""Benchmark: all disclosure metrics for one quarter on DuckDB, against pandas, and on Spark.

    .venv/bin/python bench/analytics.py --loans 10000000        # the full run (~80 million installments)
    .venv/bin/python bench/analytics.py --quick                 # 200,000 loans, for CI

The portfolio is generated directly as Parquet with numpy (not through servicing): loans disbursed over
the 12 months to 2026-09-30, 3-12 monthly installments, 6% of loans stop paying at a random
installment (they become delinquent and, past 180 DPD, written off), the others pay each installment
on its due date or up to 40 days late. Allocations carry principal and interest per installment paid;
the ledger carries the quarter's interest income; month-end snapshots come from the same behaviour.
DuckDB runs `openice.analytics.metrics.compute` (every metric); the pandas baseline computes the
installment-level metrics (Day-1 delinquency, 30-day collection, FPD, outstanding balance, 90+ DPD)
the straightforward way, on `--pandas-loans` loans (all of them when memory allows) and is scaled
linearly to the full size when smaller — the table says so. Spark runs the same SQL on the same Parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openice.analytics.backends import DuckDBBackend, SparkBackend  # noqa: E402
from openice.analytics.metrics import MetricSet, Period, compute  # noqa: E402
from openice.storage.days import to_day  # noqa: E402

QUARTER = Period.quarter("2026Q3")
AS_OF = to_day(QUARTER.end)
MODELS = np.array(["capital-light", "capital-heavy", "on-balance-sheet", "technology"])
CHUNK = 1_000_000


def generate(loans: int, out: Path, seed: int = 7) -> int:
    """Write loans, installments, allocations, journal, snapshots and institutions; returns installments."""
    rng = np.random.default_rng(seed)
    for name in ("loans", "installments", "allocations", "journal_lines", "portfolio_snapshots"):
        (out / name).mkdir(parents=True, exist_ok=True)
    month_ends = [to_day(date(2026, m, 1)) - 1 for m in (7, 8, 9, 10)]  # June..September month-ends
    total_inst = 0
    for part, lo in enumerate(range(0, loans, CHUNK)):
        n = min(CHUNK, loans - lo)
        ids = np.arange(lo + 1, lo + n + 1, dtype=np.int64)
        disbursed = rng.integers(AS_OF - 364, AS_OF + 1, n)
        tenor = rng.choice(np.array([3, 6, 9, 12]), n)
        principal = rng.integers(500, 50_000, n) * 100
        bad = rng.random(n) < 0.06
        stop = np.where(bad, rng.integers(1, 13, n), 99)  # first installment a bad loan leaves unpaid
        loan_idx = np.repeat(np.arange(n), tenor)
        seq = np.arange(loan_idx.size) - np.repeat(np.cumsum(tenor) - tenor, tenor) + 1
        due = disbursed[loan_idx] + 30 * seq
        per = principal // tenor
        inst_principal = np.where(seq == tenor[loan_idx], (principal - per * (tenor - 1))[loan_idx], per[loan_idx])
        interest = inst_principal // 100
        total_inst += seq.size
        overdue_since = np.full(n, -1, dtype=np.int64)
        first_bad = (seq == stop[loan_idx]) & (due <= AS_OF)
        overdue_since[loan_idx[first_bad]] = due[first_bad]
        written_off = (overdue_since >= 0) & (AS_OF - overdue_since + 1 > 180)
        status = np.where(written_off, "written_off", "active")
        closed = np.where(written_off, overdue_since + 180, -1)
        pq.write_table(pa.table({
            "id": ids, "borrower_id": pa.array((rng.integers(0, int(loans * 0.6) + 1, n)).astype(str)),
            "product_code": rng.choice(np.array(["CASH-EI", "CASH-EP", "SME-IO", "BNPL"]), n),
            "principal": principal, "tenor": tenor.astype(np.int64), "disbursed_day": disbursed,
            "original_funder": np.char.add("bank-", rng.integers(0, 20, n).astype(str)),
            "business_model": rng.choice(MODELS, n, p=[0.5, 0.3, 0.15, 0.05]),
            "channel": rng.choice(np.array(["direct", "partner", "app"]), n),
            "status": status, "closed_day": pa.array(closed, mask=closed < 0)}), out / "loans" / f"{part}.parquet")
        pq.write_table(pa.table({"loan_id": ids[loan_idx], "seq": seq.astype(np.int64), "due_day": due,
                                 "principal": inst_principal, "interest": interest, "fee": np.zeros_like(due)}),
                       out / "installments" / f"{part}.parquet")
        paid = (due <= AS_OF) & (seq < stop[loan_idx])
        late = np.where(rng.random(seq.size) < 0.8, 0, rng.integers(1, 41, seq.size))
        value = due + late
        paid &= value <= AS_OF
        k = np.flatnonzero(paid)
        pq.write_table(pa.table({
            "loan_id": np.tile(ids[loan_idx[k]], 2), "seq": np.tile(seq[k], 2).astype(np.int64),
            "value_day": np.tile(value[k], 2),
            "component": pa.array(np.repeat(np.array(["principal", "interest"]), k.size)).dictionary_encode(),
            "amount": np.concatenate([inst_principal[k], interest[k]])}), out / "allocations" / f"{part}.parquet")
        q = np.flatnonzero((due >= to_day(QUARTER.start)) & (due <= AS_OF))
        pq.write_table(pa.table({"entry_id": due[q], "loan_id": ids[loan_idx[q]],
                                 "account": pa.array(np.repeat("interest_income", q.size)).dictionary_encode(),
                                 "amount": -interest[q]}), out / "journal_lines" / f"{part}.parquet")
        snaps = []
        for m in month_ends:
            paid_by = np.bincount(loan_idx, weights=np.where(paid & (value <= m), inst_principal, 0), minlength=n)
            live = (disbursed <= m) & ~(written_off & (closed <= m))
            dpd = np.where((overdue_since >= 0) & (overdue_since <= m), m + 1 - overdue_since, 0)
            snaps.append(pa.table({"as_of_day": np.full(live.sum(), m, dtype=np.int64), "loan_id": ids[live],
                                   "status": np.repeat("active", live.sum()), "dpd": dpd[live].astype(np.int64),
                                   "principal_outstanding": (principal - paid_by.astype(np.int64))[live]}))
        pq.write_table(pa.concat_tables(snaps), out / "portfolio_snapshots" / f"{part}.parquet")
    days = np.arange(to_day(QUARTER.start), AS_OF + 1, dtype=np.int64)
    pq.write_table(pa.table({"id": days, "business_day": days, "kind": np.repeat("installment_due", days.size)}),
                   out / "journal_entries.parquet")
    institutions = {"code": [f"bank-{k}" for k in range(20)],
                    "funding_cost_ppm": [40_000 + 1_000 * k for k in range(20)]}
    pq.write_table(pa.table(institutions), out / "institutions.parquet")
    return total_inst


def pandas_metrics(out: Path, loans: int) -> dict[str, float]:
    """The straightforward way: load into pandas, merge, group."""
    filt = [("loan_id", "<=", loans)]
    ln = pd.read_parquet(out / "loans", filters=[("id", "<=", loans)])
    inst = pd.read_parquet(out / "installments", filters=filt)
    alloc = pd.read_parquet(out / "allocations", filters=filt)
    alloc["component"] = alloc["component"].astype(str)
    m = inst.merge(alloc, on=["loan_id", "seq"], how="left")
    m["amount"] = m["amount"].fillna(0)
    prin = m["component"] == "principal"
    m["by_due"] = np.where(prin & (m.value_day <= m.due_day), m.amount, 0)
    m["next30"] = np.where(prin & (m.value_day > m.due_day) & (m.value_day <= m.due_day + 30)
                           & (m.value_day <= AS_OF), m.amount, 0)
    m["paid_asof"] = np.where(m.value_day <= AS_OF, m.amount, 0)
    m["paid_fpd"] = np.where(m.value_day <= m.due_day, m.amount, 0)
    f = m.groupby(["loan_id", "seq", "due_day", "principal", "interest", "fee"], as_index=False)[
        ["by_due", "next30", "paid_asof", "paid_fpd"]].sum()
    ln = ln.set_index("id")
    after_wo = (ln.status == "written_off").reindex(f.loan_id).to_numpy() & (
        ln.closed_day.reindex(f.loan_id).to_numpy() < f.due_day.to_numpy())
    f = f[(f.due_day <= AS_OF) & ~after_wo]
    f["owed"] = f.principal + f.interest + f.fee
    q = f[(f.due_day >= to_day(QUARTER.start))]
    over = q.principal - q.by_due
    first = q[q.seq == 1]
    unpaid = f[f.owed - f.paid_asof > 0].groupby("loan_id").due_day.min()
    paid = alloc[(alloc.component == "principal") & (alloc.value_day <= AS_OF)]
    paid_principal = paid.groupby("loan_id").amount.sum()
    ln = ln[ln.disbursed_day <= AS_OF]
    wo = (ln.status == "written_off") & (ln.closed_day <= AS_OF)
    outstanding = (ln.principal - paid_principal.reindex(ln.index).fillna(0)).where(~wo, 0)
    dpd = (AS_OF + 1 - unpaid.reindex(ln.index)).where(~wo).fillna(0)
    return {"day1": over.sum() / q.principal.sum(), "coll30": q.next30[over > 0].sum() / over.sum(),
            "fpd": (first.owed - first.paid_fpd > 0).sum() / len(first), "outstanding": float(outstanding.sum()),
            "dpd90": outstanding[dpd > 90].sum() / outstanding.sum()}


def portfolio(loans: int, out: Path) -> None:
    """Generate the portfolio unless `out` already holds one of this size (generation is not timed)."""
    marker = out / f"LOANS-{loans}"
    if marker.exists():
        print(f"reusing {loans:,} loans at {out}")
        return
    t = time.perf_counter()
    installments = generate(loans, out)
    marker.touch()
    print(f"generated {loans:,} loans, {installments:,} installments in {time.perf_counter() - t:.1f}s at {out}")


def timed_duckdb(out: Path) -> tuple[MetricSet, float, float]:
    """Every metric on DuckDB: the result, wall seconds and CPU seconds (all threads; the machine is shared)."""
    cpu, t = time.process_time(), time.perf_counter()
    backend = DuckDBBackend.from_parquet(out, memory_limit="6GB")
    result = compute(backend, QUARTER)
    wall = time.perf_counter() - t
    backend.close()
    return result, wall, time.process_time() - cpu


def peak_gib() -> float:
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20


def markdown(report: dict, args: str) -> str:
    """The same results as a table, with the command that produced them."""
    m = report["machine"]
    lines = [f"# analytics benchmark, {report['date']}", "",
             f"`.venv/bin/python bench/analytics.py {args}` on {m['cpus']} CPUs, {m['memory_gib']} GiB, "
             f"Python {m['python']} (a shared machine: wall times are noisy, compare the ratios within the run).", "",
             "| metric | value | unit | target | baseline | baseline value | ratio |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target'] if r['target'] is not None else ''} | "
              f"{r['baseline'] or ''} | {r['baseline_value'] if r['baseline_value'] is not None else ''} | "
              f"{r['ratio'] if r['ratio'] is not None else ''} |" for r in report["results"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=10_000_000)
    parser.add_argument("--pandas-loans", type=int, default=None, help="pandas slice (default: all, max 2M)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--spark-loans", type=int, default=None,
                        help="run Spark (and DuckDB again, as its baseline) on a portfolio of this size (default: all)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the generated Parquet here, and reuse it when it is already there")
    args = parser.parse_args()
    loans = 200_000 if args.quick else args.loans
    pandas_loans = min(args.pandas_loans or loans, loans, 2_000_000)
    spark_loans = min(args.spark_loans or loans, loans)
    out = args.dir or Path(tempfile.mkdtemp(prefix="openice-analytics-"))
    portfolio(loans, out)

    result, duck_s, duck_cpu = timed_duckdb(out)
    duck_peak = peak_gib()
    print(f"duckdb: all metrics in {duck_s:.1f}s wall, {duck_cpu:.1f}s CPU, peak RSS {duck_peak:.2f} GiB")

    cpu, t = time.process_time(), time.perf_counter()
    pandas = pandas_metrics(out, pandas_loans)
    pandas_s, pandas_cpu = time.perf_counter() - t, time.process_time() - cpu
    scaled, scaled_cpu = pandas_s * loans / pandas_loans, pandas_cpu * loans / pandas_loans
    print(f"pandas: 5 installment-level metrics on {pandas_loans:,} loans in {pandas_s:.1f}s wall, {pandas_cpu:.1f}s "
          f"CPU (scaled to {loans:,}: {scaled:.1f}s wall, {scaled_cpu:.1f}s CPU)")
    if pandas_loans == loans:
        assert abs(pandas["day1"] - result["day1_delinquency_rate"].total()) < 1e-12
        assert abs(pandas["coll30"] - result["collection_rate_30d"].total()) < 1e-12
        assert abs(pandas["fpd"] - result["fpd_rate"].total()) < 1e-12
        assert pandas["outstanding"] == result["outstanding_balance"].total()
        assert abs(pandas["dpd90"] - result["delinquency_90_plus_rate"].total()) < 1e-12
        print("pandas and DuckDB agree on the shared metrics")

    baseline = f"pandas, 5 installment-level metrics only, {pandas_loans:,} loans" + (
        " scaled linearly" if pandas_loans < loans else "")
    results = [
        {"metric": f"duckdb_quarter_metrics_{loans}_loans_seconds", "value": round(duck_s, 2), "unit": "s",
         "target": 60, "baseline": baseline, "baseline_value": round(scaled, 2), "ratio": round(scaled / duck_s, 2)},
        {"metric": f"duckdb_quarter_metrics_{loans}_loans_cpu_seconds", "value": round(duck_cpu, 2), "unit": "s",
         "target": None, "baseline": baseline + " (CPU)", "baseline_value": round(scaled_cpu, 2),
         "ratio": round(scaled_cpu / duck_cpu, 2)},
        {"metric": "duckdb_peak_rss_gib", "value": round(duck_peak, 2), "unit": "GiB", "target": 8,
         "baseline": None, "baseline_value": None, "ratio": None},
    ]
    if not args.no_spark:
        spark_dir, spark_duck_s = out, duck_s
        if spark_loans < loans:
            spark_dir = out / f"spark-{spark_loans}"
            portfolio(spark_loans, spark_dir)
            result, spark_duck_s, _ = timed_duckdb(spark_dir)
        t = time.perf_counter()
        spark = SparkBackend.from_parquet(spark_dir, "local[2]")
        spark_result = compute(spark, QUARTER)
        spark_s = time.perf_counter() - t
        same = spark_result.to_dict()["metrics"] == result.to_dict()["metrics"]
        spark.close()
        spark.spark.stop()
        print(f"spark local[2], {spark_loans:,} loans: all metrics in {spark_s:.1f}s (session start included), "
              f"duckdb {spark_duck_s:.1f}s; same numbers: {same}")
        results.append({"metric": f"spark_local2_quarter_metrics_{spark_loans}_loans_seconds",
                        "value": round(spark_s, 2), "unit": "s", "target": None,
                        "baseline": f"duckdb, {spark_loans:,} loans, same run",
                        "baseline_value": round(spark_duck_s, 2),
                        "ratio": round(spark_s / spark_duck_s, 2), "same_numbers": same})
    report = {"name": "analytics", "date": date.today().isoformat(),
              "machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                                                      * os.sysconf("SC_PHYS_PAGES") / 2**30),
                          "python": platform.python_version()},
              "results": results}
    if not args.quick:
        (ROOT / "bench" / "results" / "analytics.json").write_text(json.dumps(report, indent=2) + "\n")
        (ROOT / "bench" / "results" / "analytics.md").write_text(markdown(report, " ".join(sys.argv[1:])))
    print(json.dumps(report, indent=2))
    if not args.dir:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
