"""Benchmark: wall time of `openice demo` (a fresh database, model training, a simulated year) by size.

    .venv/bin/python -m bench.demo                  # the default size and 10x
    .venv/bin/python -m bench.demo --scales 1,3     # what fits when 10x does not

Each size runs the real command in a child process, as a user would, on a fresh SQLite file; the wall time
includes start-up, training, the simulated days, the metrics and the quarterly report. A larger size is compared
with the default size of the same run: the ratio is its time over the default's (linear scaling would equal the
scale factor; less means the fixed costs, such as training, are amortised).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.machine import describe, machine_facts

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_BORROWERS = 800
TARGET_SECONDS = 300  # the README's first command must finish within five minutes on a 2-core machine


def run(borrowers: int, months: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="openice-bench-demo-") as tmp:
        clock = time.perf_counter()
        out = subprocess.run(
            [
                str(ROOT / ".venv/bin/openice"),
                "demo",
                "--borrowers",
                str(borrowers),
                "--months",
                str(months),
                "--workdir",
                str(Path(tmp) / "demo"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            check=True,
        ).stdout
        wall = time.perf_counter() - clock
    stages = dict((k, float(v)) for k, v in re.findall(r"(\w+) ([\d.]+)", out.split("timings (s):")[1].split("\n")[0]))
    loans = int(re.search(r"([\d,]+) loans funded", out)[1].replace(",", ""))
    return {"wall": wall, "simulate": stages["simulate"], "train": stages["train"], "loans": loans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10", help="multiples of the default size, comma-separated")
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    results, base = [], None
    for scale in scales:
        n = DEFAULT_BORROWERS * scale
        print(f"openice demo --borrowers {n} --months {args.months} ...", flush=True)
        got = run(n, args.months)
        print(
            f"  {got['wall']:.1f} s wall ({got['simulate']:.1f} s simulating, {got['train']:.1f} s training), "
            f"{got['loans']:,} loans",
            flush=True,
        )
        if base is None:
            base = got
        results += [
            {
                "metric": f"demo_{n}_borrowers_wall_seconds",
                "value": round(got["wall"], 1),
                "unit": "s",
                "target": TARGET_SECONDS if scale == 1 else None,
                "baseline": None if scale == scales[0] else f"demo at {DEFAULT_BORROWERS * scales[0]} borrowers",
                "baseline_value": None if scale == scales[0] else round(base["wall"], 1),
                "ratio": None if scale == scales[0] else round(got["wall"] / base["wall"], 2),
            },
            {
                "metric": f"demo_{n}_borrowers_loans",
                "value": got["loans"],
                "unit": "loans",
                "target": None,
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
            },
            {
                "metric": f"demo_{n}_borrowers_ms_per_simulated_loan",
                "value": round(1000 * got["simulate"] / got["loans"], 1),
                "unit": "ms",
                "target": None,
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
            },
        ]
    machine = machine_facts()
    doc = {"name": "demo", "date": date.today().isoformat(), "machine": machine, "results": results}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# demo benchmark",
        "",
        f"{date.today()}, {describe(machine)} at the end; months {args.months}, scales {args.scales}.",
        "",
        "| metric | value | unit | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            "| "
            + " | ".join(
                "" if r[k] is None else str(r[k])
                for k in ("metric", "value", "unit", "target", "baseline", "baseline_value", "ratio")
            )
            + " |"
        )
    (out / "demo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
