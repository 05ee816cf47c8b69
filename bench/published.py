"""What the benchmarks against PostgreSQL on the loopback share (`bench.gateway`, `bench.metrics_burst`): their
`--pg` and `--out` options, the refusal of a database elsewhere, and writing a run as bench/results/NAME.json (the
one shape of DESIGN.md) with its table as NAME.md, printed too."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from bench.load import PG
from bench.machine import describe

RESULTS = Path(__file__).resolve().parent / "results"


def loopback_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg", default=os.environ.get("OPENICE_TEST_PG_URL", PG))
    parser.add_argument("--out", type=Path, default=RESULTS)


def check_loopback(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A benchmark creates and drops schemas: never against a database on another machine."""
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        parser.error("the benchmark runs against loopback only")


def publish(out: Path, doc: dict[str, Any], title: str) -> None:
    """Write `doc` (name, date, machine, sizes, load_average_before, results, and the command if it names one) as
    NAME.json and its table as NAME.md under `out`, and print the table."""
    command = f"`{doc['command']}`. " if "command" in doc else ""
    lines = [
        f"# {title}, {doc['date']}",
        "",
        f"{command}{describe(doc['machine'])}. Sizes: {doc['sizes']}. "
        f"Load average before: {doc['load_average_before']}.",
        "",
        "| metric | value | unit | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target'] or ''} | {r['baseline'] or ''} | "
        f"{'' if r['baseline_value'] is None else r['baseline_value']} | "
        f"{'' if r['ratio'] is None else r['ratio']} |"
        for r in doc["results"]
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{doc['name']}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / f"{doc['name']}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
