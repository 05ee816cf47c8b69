"""Benchmark: the quarterly report's metrics from one build of the fact tables, against two whole `compute` runs.

    .venv/bin/python -m bench.report --loans 4000000 --dir /tmp/oc/d4m   # the recorded run
    .venv/bin/python -m bench.report --quick                              # 200,000 loans, 1 round

The report needs every metric twice, unsplit and by business model. `quarterly` gets both from
`compute_splits`, which builds the per-loan fact tables once; the baseline is what it did before, `compute`
twice (the facts built twice). Both run on DuckDB over the portfolio `bench/analytics.py` generates, each run in
a process of its own, alternating over `--rounds` rounds; they must give the same numbers. The shared run also
times rendering the HTML, PDF and JSON (`write_report`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.analytics import DUCKDB_MEMORY, QUARTER, child_run, peak_gib, portfolio, row
from bench.machine import describe, machine_facts
from openice.analytics.backends import DuckDBBackend
from openice.analytics.metrics import compute
from openice.analytics.report import SPLIT, quarterly, write_report

ROOT = Path(__file__).resolve().parents[1]

WAYS = ("shared facts", "two computes")


def child(way: str, directory: Path) -> None:
    """One run of the report's metrics in this process: prints wall and CPU seconds, peak RSS and the metrics."""
    cpu, t = time.process_time(), time.perf_counter()
    backend = DuckDBBackend.from_parquet(directory, memory_limit=DUCKDB_MEMORY)
    if way == "shared facts":
        report = quarterly(backend, QUARTER, compare=False)  # the two splits alone, as the baseline computes
        total, by_model = report.total, report.by_model
    else:
        total, by_model = compute(backend, QUARTER), compute(backend, QUARTER, by=(SPLIT,))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    render = None
    if way == "shared facts":
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            write_report(report, Path(out))
        render = time.perf_counter() - start
    backend.close()
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "peak_gib": peak_gib(),
                "render": render,
                "metrics": [total.to_dict()["metrics"], by_model.to_dict()["metrics"]],
            },
            default=str,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way, alternating (default 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the generated Parquet here, and reuse it when it is already there"
    )
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.dir)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    loans, count = (200_000, 1) if args.quick else (args.loans, args.rounds)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="openice-report-"))
    portfolio(loans, directory)
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    for k in range(count):
        print(f"round {k + 1} of {count}", flush=True)
        for way in WAYS[k % 2 :] + WAYS[: k % 2]:
            runs[way].append(child_run("bench.report", way, "--dir", str(directory)))
    same = all(r["metrics"] == runs[WAYS[0]][0]["metrics"] for records in runs.values() for r in records)
    median = {
        way: {k: statistics.median(r[k] for r in records) for k in ("wall", "cpu")} for way, records in runs.items()
    }
    shared, separate = median["shared facts"], median["two computes"]
    results = [
        row(
            f"report_metrics_{loans}_loans_seconds",
            shared["wall"],
            "s",
            baseline="compute twice (the facts built twice), same run",
            baseline_value=separate["wall"],
            same_numbers=same,
        ),
        row(
            f"report_metrics_{loans}_loans_cpu_seconds",
            shared["cpu"],
            "s",
            baseline="compute twice, same run (CPU)",
            baseline_value=separate["cpu"],
        ),
        row(f"report_render_{loans}_loans_seconds", statistics.median(r["render"] for r in runs["shared facts"]), "s"),
    ]
    command, machine = " ".join(sys.argv[1:]), machine_facts()
    lines = [
        f"# report benchmark, {date.today().isoformat()}",
        "",
        f"`.venv/bin/python -m bench.report {command}` on {describe(machine)} at the end (a shared machine: "
        "compare the ratio within the run). Every run is a process of its own, alternating; values are "
        f"medians; same numbers: {same}.",
        "",
        "| metric | value | unit | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['baseline'] or ''} | "
        f"{'' if r['baseline_value'] is None else r['baseline_value']} | {r['ratio'] or ''} |"
        for r in results
    ]
    lines += ["", "Each run (wall / CPU seconds / peak RSS GiB):", ""]
    lines += [
        f"- {way}: " + "; ".join(f"{r['wall']:.2f} / {r['cpu']:.2f} / {r['peak_gib']:.2f}" for r in records)
        for way, records in runs.items()
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        (ROOT / "bench" / "results" / "report.md").write_text(text)
        (ROOT / "bench" / "results" / "report.json").write_text(
            json.dumps(
                {
                    "date": date.today().isoformat(),
                    "command": command,
                    "machine": machine,
                    "results": results,
                    "runs": {
                        way: [{k: r[k] for k in ("wall", "cpu", "peak_gib", "render")} for r in records]
                        for way, records in runs.items()
                    },
                },
                indent=2,
            )
            + "\n"
        )
    if not same:
        raise SystemExit("the two ways gave different numbers")


if __name__ == "__main__":
    main()
