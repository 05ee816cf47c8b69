"""Refit benchmark: the AUC of the package that scores, refit on every row after evaluation or not.

    .venv/bin/python -m bench.refit            # both bundled data sets and a 1,000-row sample of each, seeds 0-2
    .venv/bin/python -m bench.refit --quick    # the 1,000-row samples only, seed 0

Each seed holds out an outer 20% (stratified) that no model trains on. `train_package` runs on the rest
twice with the same seed and a 20% test sample: with refit the package's model is trained on the whole
inner set, without refit on its 80% training part. Both packages score the outer part through `Scorer`.
Writes bench/results/refit.json and bench/results/refit.md (see docs/scoring.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from bench.machine import describe, machine_facts
from openice.datasets import load
from openice.scoring.loaded_model import Scorer
from openice.scoring.metrics import auc
from openice.scoring.model import TrainConfig
from openice.scoring.train import train_package

RESULTS = Path(__file__).parent / "results"
SAMPLE = 1000
OUTER = 0.2


def _one(name: str, rows: int | None, seed: int, work: Path) -> dict[str, Any]:
    data = load(name)
    frame, y = data.frame, data.target.to_numpy()
    if rows:
        frame = frame.sample(rows, random_state=seed)
        y = data.target.loc[frame.index].to_numpy()
        frame = frame.reset_index(drop=True)
    inner, outer = train_test_split(np.arange(len(y)), test_size=OUTER, stratify=y, random_state=seed)
    row: dict[str, Any] = {"dataset": name, "rows": len(y), "seed": seed, "outer_rows": len(outer)}
    for refit in (False, True):
        out = work / f"{name}-{rows}-{seed}-{refit}"
        started = time.perf_counter()
        trained = train_package(
            frame.iloc[inner], y[inner], out, cfg=TrainConfig(seed=seed), test_size=0.2, refit=refit
        )
        pd_ = Scorer.load(out).score_frame(frame.iloc[outer], reasons=False)["pd"].to_numpy()
        key = "refit" if refit else "no_refit"
        row[key] = {
            "outer_auc": round(auc(y[outer], pd_), 4),
            "fitted_rows": trained.rows["final"],
            "test_auc": round(trained.metrics["test"]["auc"], 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
    row["gain"] = round(row["refit"]["outer_auc"] - row["no_refit"]["outer_auc"], 4)
    print(
        f"{name:>12} rows {len(y):>5} seed {seed}: outer AUC {row['no_refit']['outer_auc']:.4f} without refit, "
        f"{row['refit']['outer_auc']:.4f} with ({row['gain']:+.4f})",
        file=sys.stderr,
    )
    return row


def _markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Refit on every row: outer held-out AUC ({doc['date']})",
        "",
        f"Command: `{doc['command']}`. Machine: {describe(doc['machine'])}.",
        "",
        "| data set | rows | seeds | fitted rows without / with refit | AUC without refit | AUC with refit | change |",
        "|---|---|---|---|---|---|---|",
    ]
    for (name, rows), group in _groups(doc["runs"]).items():
        mean = {k: float(np.mean([r[k]["outer_auc"] for r in group])) for k in ("no_refit", "refit")}
        fitted = f"{group[0]['no_refit']['fitted_rows']} / {group[0]['refit']['fitted_rows']}"
        seeds = ", ".join(str(r["seed"]) for r in group)
        lines.append(
            f"| {name} | {rows} | {seeds} | {fitted} | {mean['no_refit']:.4f} | {mean['refit']:.4f} | "
            f"{mean['refit'] - mean['no_refit']:+.4f} |"
        )
    lines += ["", "Per seed:", "", "| data set | rows | seed | without refit | with refit |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['dataset']} | {r['rows']} | {r['seed']} | {r['no_refit']['outer_auc']:.4f} | "
        f"{r['refit']['outer_auc']:.4f} |"
        for r in doc["runs"]
    ]
    return "\n".join(lines) + "\n"


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["rows"]), []).append(r)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the 1,000-row samples only, seed 0")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    args = parser.parse_args()
    seeds = range(1 if args.quick else args.seeds)
    sizes = (SAMPLE,) if args.quick else (None, SAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            _one(name, rows, seed, Path(tmp))
            for name in ("credit_data", "lending_club")
            for rows in sizes
            for seed in seeds
        ]
    doc = {
        "date": date.today().isoformat(),
        "command": "python -m bench.refit" + (" --quick" if args.quick else f" --seeds {args.seeds}"),
        "machine": machine_facts(),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "refit.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = _markdown(doc)
    (RESULTS / "refit.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
