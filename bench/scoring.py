"""Scoring benchmark: `.venv/bin/python bench/scoring.py [--quick] [--repeats 3 --folds 5]`.

Writes bench/results/scoring.json and bench/results/scoring.md (see docs/scoring.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openice.scoring.benchmark import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 x 3 folds and smaller latency/batch samples")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="measure speed only; keep the accuracy tables of the last run in --out",
    )
    args = parser.parse_args()
    run(
        repeats=args.repeats,
        folds=args.folds,
        quick=args.quick,
        out=args.out,
        command=" ".join(["python", "bench/scoring.py", *sys.argv[1:]]),
        speed_only=args.speed_only,
    )
