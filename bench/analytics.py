"""Benchmark: all disclosure metrics for one quarter on DuckDB, against pandas, and on Spark.

    .venv/bin/python -m bench.analytics --loans 10000000        # the full run (~80 million installments)
    .venv/bin/python -m bench.analytics --quick                 # 200,000 loans, for CI

The portfolio is generated directly as Parquet with numpy (not through servicing): loans disbursed over
the 12 months to 2026-09-30, 3-12 monthly installments, 6% of loans stop paying at a random
installment (they become delinquent and, past 180 DPD, written off), the others pay each installment
on its due date or up to 40 days late. Allocations carry principal and interest per installment paid;
the ledger carries the quarter's interest income; month-end snapshots come from the same behaviour.
DuckDB runs `openice.analytics.metrics.compute` (every metric). The baseline is the same `compute` on
`bench.pandas_baseline.PandasBackend` (every metric, vectorised pandas), on the same portfolio
when `--pandas-loans` is not given, else on a generated portfolio of that size with DuckDB re-timed on it,
on two threads and on one (each core's work, apart from the second core); they must give the same numbers.
Spark runs the same SQL on the same Parquet (`--spark-loans` likewise).

Every run is a process of its own (what one engine leaves in memory does not slow the next), and the runs on
one portfolio alternate over `--rounds` rounds, in a rotating order; the figures are the medians, each
round's are kept in the JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.machine import describe, machine_facts
from bench.pandas_baseline import PandasBackend
from openice.analytics.backends import DuckDBBackend, SparkBackend
from openice.analytics.metrics import STEPS, Period, compute
from openice.storage.days import to_day

ROOT = Path(__file__).resolve().parents[1]

QUARTER = Period.quarter("2026Q3")
AS_OF = to_day(QUARTER.end)
MODELS = np.array(["capital-light", "capital-heavy", "on-balance-sheet", "technology"])
CHUNK = 1_000_000


def with_funder(loans: pa.Table) -> pa.Table:
    """The loans' funder today: the platform's on its own balance sheet, the original funder's otherwise."""
    own = pc.equal(loans.column("business_model"), "on-balance-sheet")
    return loans.append_column("funder", pc.if_else(own, "platform", loans.column("original_funder")))


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
        pq.write_table(
            with_funder(
                pa.table(
                    {
                        "id": ids,
                        "borrower_id": pa.array((rng.integers(0, int(loans * 0.6) + 1, n)).astype(str)),
                        "product_code": rng.choice(np.array(["CASH-EI", "CASH-EP", "SME-IO", "BNPL"]), n),
                        "principal": principal,
                        "tenor": tenor.astype(np.int64),
                        "disbursed_day": disbursed,
                        "original_funder": np.char.add("bank-", rng.integers(0, 20, n).astype(str)),
                        "business_model": rng.choice(MODELS, n, p=[0.5, 0.3, 0.15, 0.05]),
                        "channel": rng.choice(np.array(["direct", "partner", "app"]), n),
                        "status": status,
                        "closed_day": pa.array(closed, mask=closed < 0),
                    }
                )
            ),
            out / "loans" / f"{part}.parquet",
        )
        pq.write_table(
            pa.table(
                {
                    "loan_id": ids[loan_idx],
                    "seq": seq.astype(np.int64),
                    "due_day": due,
                    "principal": inst_principal,
                    "interest": interest,
                    "fee": np.zeros_like(due),
                }
            ),
            out / "installments" / f"{part}.parquet",
        )
        paid = (due <= AS_OF) & (seq < stop[loan_idx])
        late = np.where(rng.random(seq.size) < 0.8, 0, rng.integers(1, 41, seq.size))
        value = due + late
        paid &= value <= AS_OF
        k = np.flatnonzero(paid)
        # In (loan_id, seq) order, an installment's principal and interest rows together: the snapshot's layout
        # (`write_parquet`), as a payment's allocations are written.
        pq.write_table(
            pa.table(
                {
                    "loan_id": np.repeat(ids[loan_idx[k]], 2),
                    "seq": np.repeat(seq[k], 2).astype(np.int64),
                    "value_day": np.repeat(value[k], 2),
                    "component": pa.array(np.tile(np.array(["principal", "interest"]), k.size)).dictionary_encode(),
                    "amount": np.column_stack([inst_principal[k], interest[k]]).ravel(),
                }
            ),
            out / "allocations" / f"{part}.parquet",
        )
        q = np.flatnonzero((due >= to_day(QUARTER.start)) & (due <= AS_OF))
        pq.write_table(
            pa.table(
                {
                    "entry_id": due[q],
                    "loan_id": ids[loan_idx[q]],
                    "account": pa.array(np.repeat("interest_income", q.size)).dictionary_encode(),
                    "amount": -interest[q],
                }
            ),
            out / "journal_lines" / f"{part}.parquet",
        )
        snaps = []
        for m in month_ends:
            paid_by = np.bincount(loan_idx, weights=np.where(paid & (value <= m), inst_principal, 0), minlength=n)
            live = (disbursed <= m) & ~(written_off & (closed <= m))
            dpd = np.where((overdue_since >= 0) & (overdue_since <= m), m + 1 - overdue_since, 0)
            snaps.append(
                pa.table(
                    {
                        "as_of_day": np.full(live.sum(), m, dtype=np.int64),
                        "loan_id": ids[live],
                        "status": np.repeat("active", live.sum()),
                        "dpd": dpd[live].astype(np.int64),
                        "principal_outstanding": (principal - paid_by.astype(np.int64))[live],
                    }
                )
            )
        pq.write_table(pa.concat_tables(snaps), out / "portfolio_snapshots" / f"{part}.parquet")
    days = np.arange(to_day(QUARTER.start), AS_OF + 1, dtype=np.int64)
    pq.write_table(
        pa.table({"id": days, "business_day": days, "kind": np.repeat("installment_due", days.size)}),
        out / "journal_entries.parquet",
    )
    write_institutions(out)
    return total_inst


def write_institutions(out: Path) -> None:
    """The 20 funders, every fifth a trust (funding through its trust plans)."""
    institutions = {
        "code": [f"bank-{k}" for k in range(20)],
        "funding_cost_ppm": [40_000 + 1_000 * k for k in range(20)],
        "kind": ["trust" if k % 5 == 4 else "bank" for k in range(20)],
    }
    pq.write_table(pa.table(institutions), out / "institutions.parquet")


def portfolio(loans: int, out: Path) -> None:
    """Generate the portfolio unless `out` already holds one of this size (generation is not timed)."""
    marker = out / f"LOANS-{loans}"
    if marker.exists():
        write_institutions(out)  # small: a portfolio generated before institutions had a kind gets the column
        print(f"reusing {loans:,} loans at {out}")
        return
    t = time.perf_counter()
    installments = generate(loans, out)
    marker.touch()
    print(f"generated {loans:,} loans, {installments:,} installments in {time.perf_counter() - t:.1f}s at {out}")


# At 6GB the 10M-loan run took 6.5x the wall time of the 4M-loan one (3x the CPU): its fact tables are about
# that size, so the limit is raised, within the 8 GiB target.
DUCKDB_MEMORY = "7GB"
ENGINES = ("duckdb", "duckdb 1 thread", "pandas", "spark local[2]")


def open_backend(engine: str, directory: Path, spark_memory: str) -> Any:
    if engine == "duckdb":
        return DuckDBBackend.from_parquet(directory, memory_limit=DUCKDB_MEMORY)
    if engine == "duckdb 1 thread":
        return DuckDBBackend.from_parquet(directory, memory_limit=DUCKDB_MEMORY, threads=1)
    if engine == "pandas":
        return PandasBackend.from_parquet(directory, QUARTER)
    return SparkBackend.from_parquet(directory, spark=spark_session(spark_memory))


def child(engine: str, directory: Path, spark_memory: str) -> None:
    """One engine's run of every metric, in this process: prints wall and CPU seconds (all this process's
    threads; the machine is shared), peak RSS, the same two per step of `compute`, and the metrics."""
    steps: dict[str, dict[str, float]] = {}
    if engine.startswith("spark"):
        spark_session(spark_memory).range(1).count()  # the JVM's start is not timed
    cpu, t = time.process_time(), time.perf_counter()
    last = [cpu, t]

    def on_step(name: str) -> None:
        now = [time.process_time(), time.perf_counter()]
        steps[name] = {"wall": round(now[1] - last[1], 3), "cpu": round(now[0] - last[0], 3)}
        last[:] = now

    backend = open_backend(engine, directory, spark_memory)  # opening the files counts towards the first step
    result = compute(backend, QUARTER, on_step=on_step)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    backend.close()
    print(
        json.dumps(
            {"wall": wall, "cpu": cpu, "peak_gib": peak_gib(), "steps": steps, "metrics": result.to_dict()["metrics"]},
            default=str,
        )
    )


def child_run(module: str, label: str, *args: str) -> dict[str, Any]:
    """Run `python -m module --child label ARGS` in a process of its own and return the JSON record it prints
    last."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", label, *args], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode:
        raise SystemExit(f"{label} ({' '.join(args)}) failed:\n{out.stderr[-3000:]}")
    record = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"  {label}: {record['wall']:.1f}s wall, {record['cpu']:.1f}s CPU, peak RSS {record['peak_gib']:.2f} GiB",
        flush=True,
    )
    return record


def run(engine: str, directory: Path, spark_memory: str) -> dict[str, Any]:
    return child_run("bench.analytics", engine, "--dir", str(directory), "--spark-memory", spark_memory)


def rounds(engines: list[str], directory: Path, count: int, spark_memory: str) -> dict[str, list[dict[str, Any]]]:
    """Each engine `count` times on one portfolio, alternating, the order rotated every round."""
    runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in engines}
    for k in range(count):
        print(f"round {k + 1} of {count} on {directory}", flush=True)
        for engine in engines[k % len(engines) :] + engines[: k % len(engines)]:
            runs[engine].append(run(engine, directory, spark_memory))
    return runs


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs (and each run's wall, CPU and peak), per step too."""
    return {
        "wall": statistics.median(r["wall"] for r in records),
        "cpu": statistics.median(r["cpu"] for r in records),
        "peak_gib": max(r["peak_gib"] for r in records),
        "runs": [{k: round(r[k], 2) for k in ("wall", "cpu", "peak_gib")} for r in records],
        "steps": {
            step: {k: round(statistics.median(r["steps"][step][k] for r in records), 2) for k in ("wall", "cpu")}
            for step in STEPS
        },
    }


def same_numbers(*groups: list[dict[str, Any]]) -> bool:
    first = groups[0][0]["metrics"]
    return all(r["metrics"] == first for records in groups for r in records)


def spark_session(memory: str) -> Any:
    """local[2] with room for the 10M-loan fact tables (they spill to disk beyond it)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("openice-analytics-bench")
        .config("spark.driver.memory", memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "16")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def peak_gib() -> float:
    return (
        max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        / 2**20
    )


def row(
    metric: str,
    value: float,
    unit: str,
    target: float | None = None,
    baseline: str | None = None,
    baseline_value: float | None = None,
    ratio: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result; the ratio is the baseline's over the value's unless given."""
    if ratio is None and baseline_value is not None:
        ratio = round(baseline_value / value, 2)
    return {
        "metric": metric,
        "value": round(value, 2),
        "unit": unit,
        "target": target,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 2),
        "ratio": ratio,
        **extra,
    }


def markdown(report: dict, args: str) -> str:
    """The same results as tables, with the command that produced them: the medians, each run, then wall seconds
    per step of `compute` (medians) with the per-step ratios of runs on the same portfolio."""
    m = report["machine"]
    lines = [
        f"# analytics benchmark, {report['date']}",
        "",
        f"`.venv/bin/python -m bench.analytics {args}` on {describe(m)} when the results were written (a shared "
        "machine: wall times are noisy, compare the ratios within the run). Every run is a process of its "
        "own; runs on one portfolio alternate; values are medians.",
        "",
        "| metric | value | unit | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target'] if r['target'] is not None else ''} | "
        f"{r['baseline'] or ''} | {r['baseline_value'] if r['baseline_value'] is not None else ''} | "
        f"{r['ratio'] if r['ratio'] is not None else ''} |"
        for r in report["results"]
    ]
    runs, pairs = report["runs"], report["step_ratios"]
    lines += ["", "Each run (wall / CPU seconds / peak RSS GiB):", ""]
    lines += [
        f"- {name}: " + "; ".join(f"{r['wall']} / {r['cpu']} / {r['peak_gib']}" for r in run["runs"])
        for name, run in runs.items()
    ]
    names = list(runs)
    lines += [
        "",
        "Wall seconds per step of `compute` (medians; CPU seconds in the JSON; the first step includes "
        "opening the files), and per-step ratios of runs on the same portfolio:",
        "",
        "| step | " + " | ".join(names + [f"{a} ÷ {b}" for a, b in pairs]) + " |",
        "|---" * (len(names) + len(pairs) + 1) + "|",
    ]
    for step in STEPS:
        wall = {n: runs[n]["steps"][step]["wall"] for n in names}
        ratios = [f"{wall[a] / wall[b]:.2f}" if wall[b] >= 0.05 else "" for a, b in pairs]
        lines.append(f"| {step} | " + " | ".join([f"{wall[n]:.2f}" for n in names] + ratios) + " |")
    return "\n".join(lines) + "\n"


def save(
    results: list[dict], args: argparse.Namespace, runs: dict[str, dict[str, Any]], step_ratios: list[tuple[str, str]]
) -> None:
    """Write (and print) the results so far: a long Spark stage that is stopped leaves the rest recorded."""
    report = {
        "name": args.name,
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "results": results,
        "runs": runs,
        "step_ratios": step_ratios,
    }
    if not args.quick:
        (ROOT / "bench" / "results" / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (ROOT / "bench" / "results" / f"{args.name}.md").write_text(markdown(report, " ".join(sys.argv[1:])))
    print(markdown(report, " ".join(sys.argv[1:])), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=10_000_000)
    parser.add_argument(
        "--pandas-loans",
        type=int,
        default=None,
        help="run pandas (and DuckDB again, as the pair) on a portfolio of this size (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each engine, alternating (default 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--name", default="analytics", help="results file stem under bench/results")
    parser.add_argument(
        "--spark-loans",
        type=int,
        default=None,
        help="run Spark (and DuckDB again, as its baseline) on a portfolio of this size (default: all)",
    )
    parser.add_argument("--spark-memory", default="8g", help="Spark driver memory (local mode)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the generated Parquet here, and reuse it when it is already there"
    )
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.dir, args.spark_memory)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    loans = 200_000 if args.quick else args.loans
    count = 1 if args.quick else args.rounds
    out = args.dir or Path(tempfile.mkdtemp(prefix="openice-analytics-"))
    portfolio(loans, out)

    def directory(size: int | None) -> tuple[int, Path]:
        size = min(size or loans, loans)
        if size == loans:
            return size, out
        portfolio(size, out / f"part-{size}")
        return size, out / f"part-{size}"

    pandas_loans, pandas_dir = directory(args.pandas_loans)
    engines = ["duckdb"] + ([] if args.no_pandas else ["duckdb 1 thread", "pandas"])
    records = rounds(engines if pandas_dir == out else ["duckdb"], out, count, args.spark_memory)
    if pandas_dir != out and not args.no_pandas:
        records |= {
            f"{e}, {pandas_loans:,} loans": r for e, r in rounds(engines, pandas_dir, count, args.spark_memory).items()
        }
    main_run = summary(records["duckdb"])
    results = [
        row(f"duckdb_quarter_metrics_{loans}_loans_seconds", main_run["wall"], "s", target=60),
        row(f"duckdb_quarter_metrics_{loans}_loans_cpu_seconds", main_run["cpu"], "s"),
        row("duckdb_peak_rss_gib", main_run["peak_gib"], "GiB", target=8),
    ]
    runs = {f"duckdb, {loans:,} loans": main_run}
    step_ratios: list[tuple[str, str]] = []
    if not args.no_pandas:
        key = "" if pandas_dir == out else f", {pandas_loans:,} loans"
        pair, single, pandas = (records[e + key] for e in ("duckdb", "duckdb 1 thread", "pandas"))
        same = same_numbers(pair, single, pandas)
        names = [f"{e}, {pandas_loans:,} loans" for e in ("duckdb", "duckdb 1 thread", "pandas")]
        runs |= dict(zip(names, map(summary, (pair, single, pandas)), strict=True))
        p, d2, d1 = runs[names[2]], runs[names[0]], runs[names[1]]
        baseline = f"pandas, every metric, {pandas_loans:,} loans, same run"
        per_round = [round(pd_["wall"] / dk["wall"], 2) for pd_, dk in zip(pandas, pair, strict=True)]
        results += [
            row(
                f"duckdb_vs_pandas_{pandas_loans}_loans_seconds",
                d2["wall"],
                "s",
                baseline=baseline,
                baseline_value=p["wall"],
                ratio_target=5,
                same_numbers=same,
                ratio_per_round=per_round,
            ),
            row(
                f"duckdb_vs_pandas_{pandas_loans}_loans_cpu_seconds",
                d2["cpu"],
                "s",
                baseline=baseline + " (CPU)",
                baseline_value=p["cpu"],
            ),
            row(
                f"duckdb_1_thread_vs_pandas_{pandas_loans}_loans_seconds",
                d1["wall"],
                "s",
                baseline=baseline,
                baseline_value=p["wall"],
                same_numbers=same,
            ),
        ]
        step_ratios += [(names[2], names[0]), (names[2], names[1])]
        print(f"same numbers on every engine: {same}")
    save(results, args, runs, step_ratios)
    if not args.no_spark:
        spark_loans, spark_dir = directory(args.spark_loans)
        spark = [run("spark local[2]", spark_dir, args.spark_memory)]
        pair = records["duckdb"] if spark_dir == out else [run("duckdb", spark_dir, args.spark_memory)]
        runs[f"spark local[2], {spark_loans:,} loans"] = summary(spark)
        if spark_dir != out:
            runs[f"duckdb, {spark_loans:,} loans (Spark's pair)"] = summary(pair)
        duck_wall = summary(pair)["wall"]
        results.append(
            row(
                f"spark_local2_quarter_metrics_{spark_loans}_loans_seconds",
                spark[0]["wall"],
                "s",
                baseline=f"duckdb, {spark_loans:,} loans, same run",
                baseline_value=duck_wall,
                ratio=round(spark[0]["wall"] / duck_wall, 2),
                same_numbers=same_numbers(pair, spark),
            )
        )
    save(results, args, runs, step_ratios)
    if not args.dir:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
