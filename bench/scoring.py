"""Scoring benchmark: accuracy on the bundled data sets against scorecard and ML anchors, and scoring speed.

    .venv/bin/python -m bench.scoring --quick         # 1 x 3 folds, 2,000 latency samples, 200,000 batch rows
    .venv/bin/python -m bench.scoring                 # the full run: 3 x 5 folds, 10,000 samples, 1,000,000 rows
    .venv/bin/python -m bench.scoring --speed-only    # speed only; keeps the last run's accuracy tables

Every model sees the same repeated stratified folds (fixed seeds). Metrics are computed on each
repeat's pooled out-of-fold PDs and averaged over repeats. toad is imported here only (``bench`` extra).
Writes bench/results/scoring.json and bench/results/scoring.md (see docs/scoring.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench.machine import describe, machine_facts
from openice.datasets import load
from openice.scoring.loaded_model import Scorer
from openice.scoring.metrics import summary
from openice.scoring.model import TrainConfig, fit_model
from openice.scoring.package import save_model

RESULTS = Path(__file__).parent / "results"
DATASETS = (("lending_club", False), ("lending_club", True), ("credit_data", False))
OURS = "openice champion"


def _cats(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]


def _pandas_cat(frame: pd.DataFrame, cats: dict[str, list[str]]) -> pd.DataFrame:
    out = frame.copy()
    for c, levels in cats.items():
        out[c] = pd.Categorical(out[c], categories=levels)
    return out


class _Anchor:
    """A baseline with fit / predict_pd, and a one-applicant path for the latency table."""

    name = ""

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> _Anchor:
        raise NotImplementedError

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


class OptbinningScorecard(_Anchor):
    name = "optbinning Scorecard"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> OptbinningScorecard:
        from optbinning import BinningProcess, Scorecard

        bp = BinningProcess(list(x.columns), categorical_variables=_cats(x))
        self.model = Scorecard(
            bp,
            LogisticRegression(max_iter=1000),
            scaling_method="min_max",
            scaling_method_params={"min": 300, "max": 850},
        )
        self.model.fit(x, y)
        return self

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x)[:, 1]

    def one(self, row: pd.DataFrame) -> Any:
        return self.model.score(row)


class ToadScorecard(_Anchor):
    name = "toad scorecard"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> ToadScorecard:
        from toad.scorecard import ScoreCard
        from toad.transform import Combiner, WOETransformer

        data = x.assign(_y=y)
        self.combiner = Combiner().fit(data, y="_y", method="chi", min_samples=0.05, empty_separate=True)
        woe = WOETransformer()
        xw = woe.fit_transform(self.combiner.transform(data.drop(columns="_y")), y)
        self.card = ScoreCard(combiner=self.combiner, transer=woe).fit(xw, y)
        return self

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        return self.card.predict_proba(x)[:, 1]

    def one(self, row: pd.DataFrame) -> Any:
        return self.card.predict(row), self.card.get_reason(row)


class OneHotLogistic(_Anchor):
    name = "one-hot logistic regression"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> OneHotLogistic:
        cats = _cats(x)
        nums = [c for c in x.columns if c not in cats]
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="(missing)"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    cats,
                ),
            ]
        )
        self.model = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(x, y)
        return self

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x)[:, 1]


class LightGBMDefault(_Anchor):
    name = "LightGBM default"

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> LightGBMDefault:
        self.levels = {c: sorted(x[c].dropna().unique()) for c in _cats(x)}
        self.model = lgb.LGBMClassifier(verbose=-1, n_jobs=2, random_state=0).fit(_pandas_cat(x, self.levels), y)
        return self

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(_pandas_cat(x, self.levels))[:, 1]

    def one(self, row: pd.DataFrame) -> Any:
        return self.model.predict_proba(_pandas_cat(row, self.levels))


class Openice(_Anchor):
    name = OURS

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> Openice:
        self.model = fit_model(x, y, TrainConfig())
        return self

    def predict_pd(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_pd(x)


ANCHORS: tuple[type[_Anchor], ...] = (OptbinningScorecard, ToadScorecard, OneHotLogistic, LightGBMDefault, Openice)
SINGLE_ANCHORS: dict[str, type[_Anchor]] = {
    "toad predict + get_reason": ToadScorecard,
    "optbinning Scorecard.score": OptbinningScorecard,
    "LightGBM predict_proba (pandas row)": LightGBMDefault,
}


def _accuracy(frame: pd.DataFrame, y: np.ndarray, repeats: int, folds: int) -> dict[str, dict[str, float]]:
    preds = {a.name: np.zeros((repeats, len(y))) for a in ANCHORS}
    fit_s: dict[str, list[float]] = {a.name: [] for a in ANCHORS}
    for r in range(repeats):
        for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=r).split(frame, y)):
            for cls in ANCHORS:
                t0 = time.perf_counter()
                model = cls().fit(frame.iloc[tr], y[tr])
                fit_s[cls.name].append(time.perf_counter() - t0)
                preds[cls.name][r, te] = model.predict_pd(frame.iloc[te])
            print(f"  repeat {r + 1}/{repeats} fold {k + 1}/{folds}")
    out = {}
    for name, p in preds.items():
        per = [summary(y, p[r]) for r in range(repeats)]
        out[name] = {m: float(np.mean([s[m] for s in per])) for m in ("auc", "ks", "brier", "ece")}
        out[name]["auc_sd"] = float(np.std([s["auc"] for s in per]))
        out[name]["fit_s"] = float(np.mean(fit_s[name]))
    return out


def _percentiles(fn: Callable[[Any], Any], items: list[Any]) -> dict[str, float]:
    times = np.empty(len(items))
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        fn(item)
        times[i] = time.perf_counter() - t0
    return {"p50_us": float(np.percentile(times, 50) * 1e6), "p99_us": float(np.percentile(times, 99) * 1e6)}


def _speed(frame: pd.DataFrame, y: np.ndarray, n_single: int, n_anchor: int, batch_rows: int) -> dict[str, Any]:
    """Latency of one application and batch throughput, ours against the anchors' one-row paths."""
    model = fit_model(frame, y, TrainConfig())
    load_average = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp) / "pkg", extra={}, files={})
        scorer = Scorer.load(Path(tmp) / "pkg")
    records = frame.to_dict("records")
    apps = [records[i % len(records)] for i in range(n_single)]
    for a in apps[:200]:  # warm up (numba kernels are compiled on first use)
        scorer.score(a)
    gc.collect()
    gc.freeze()  # as a long-running service would after start-up: the collector skips the loaded objects
    lat = {
        "openice score": _percentiles(lambda a: scorer.score(a, reasons=False), apps),
        "openice score + 4 reasons": _percentiles(scorer.score, apps),
    }
    rows = [frame.iloc[[i % len(frame)]] for i in range(n_anchor)]
    lgb_default = None
    for label, cls in SINGLE_ANCHORS.items():
        fitted = cls().fit(frame, y)
        for r in rows[:20]:
            fitted.one(r)
        lat[label] = _percentiles(fitted.one, rows)
        lgb_default = fitted if cls is LightGBMDefault else lgb_default
        print(f"  latency {label}: {lat[label]}")
    big = frame.sample(batch_rows, replace=True, random_state=0).reset_index(drop=True)
    scorer.score_frame(big.iloc[:1000])  # load the compiled batch kernel before timing it
    t0 = time.perf_counter()
    scored = scorer.score_frame(big)
    ours = batch_rows / (time.perf_counter() - t0)
    assert scored["pd"].notna().all()
    booster = lgb_default.model.booster_
    matrix = _pandas_cat(big, lgb_default.levels)
    for c in lgb_default.levels:
        matrix[c] = matrix[c].cat.codes.replace(-1, np.nan)
    matrix = matrix.to_numpy(dtype=np.float64)
    t0 = time.perf_counter()
    booster.predict(matrix)
    base = batch_rows / (time.perf_counter() - t0)
    return {
        "latency": lat,
        "batch": {"rows": batch_rows, "openice_rows_per_s": ours, "booster_predict_rows_per_s": base},
        "champion": model.blend.candidate,
        "rounds": model.selection["rounds"],
        "num_leaves": model.config.num_leaves,
        "load_average": [load_average, os.getloadavg()],
    }


def _results(acc: dict[str, dict[str, dict[str, float]]], speed: dict[str, Any]) -> list[dict[str, Any]]:
    res = []
    for ds, table in acc.items():
        ours = table[OURS]
        best = max((n for n in table if n != OURS), key=lambda n: table[n]["auc"])
        res.append(
            {
                "metric": f"{ds}_auc",
                "value": ours["auc"],
                "unit": "AUC",
                "target": table[best]["auc"],
                "baseline": best,
                "baseline_value": table[best]["auc"],
                "ratio": ours["auc"] / table[best]["auc"],
            }
        )
        res.append(
            {
                "metric": f"{ds}_ece",
                "value": ours["ece"],
                "unit": "ECE",
                "target": 0.02,
                "baseline": best,
                "baseline_value": table[best]["ece"],
                "ratio": table[best]["ece"] / max(ours["ece"], 1e-9),
            }
        )
    lat = speed["latency"]
    pairs = (("single_score", "openice score", 1000), ("single_score_reasons", "openice score + 4 reasons", 2000))
    for key, label, target in pairs:
        for anchor in SINGLE_ANCHORS:
            res.append(
                {
                    "metric": f"{key}_p99_us",
                    "value": lat[label]["p99_us"],
                    "unit": "us",
                    "target": target,
                    "baseline": f"{anchor} p99",
                    "baseline_value": lat[anchor]["p99_us"],
                    "ratio": lat[anchor]["p99_us"] / lat[label]["p99_us"],
                }
            )
    b = speed["batch"]
    res.append(
        {
            "metric": "batch_rows_per_s",
            "value": b["openice_rows_per_s"],
            "unit": "rows/s",
            "target": 500_000,
            "baseline": "LightGBM default Booster.predict (float64 numpy, no reasons)",
            "baseline_value": b["booster_predict_rows_per_s"],
            "ratio": b["openice_rows_per_s"] / b["booster_predict_rows_per_s"],
        }
    )
    return res


def _markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Scoring benchmark ({doc['date']})",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Machine: {describe(doc['machine'])}. Folds: {doc['repeats']} x {doc['folds']} stratified (seeds 0..), "
        "metrics on each repeat's pooled out-of-fold PDs, averaged over repeats; fit time per fold. Accuracy tables "
        f"from the run of {doc['accuracy_run']['date']} (`{doc['accuracy_run']['command']}`).",
        "",
    ]
    for ds, table in doc["accuracy"].items():
        lines += [f"## {ds}", "", "| model | AUC (sd) | KS | Brier | ECE | fit s |", "|---|---|---|---|---|---|"]
        for name, m in table.items():
            lines.append(
                f"| {name} | {m['auc']:.4f} ({m['auc_sd']:.4f}) | {m['ks']:.4f} | {m['brier']:.4f} | "
                f"{m['ece']:.4f} | {m['fit_s']:.2f} |"
            )
        lines.append("")
    sp = doc["speed"]
    (a1, a5, a15), (b1, b5, b15) = sp["load_average"]
    lines += [
        f"## Speed ({doc['speed_dataset']}, champion {sp['champion']}, {sp['rounds']} boosting rounds of at "
        f"most {sp['num_leaves']} leaves, as chosen by the inner folds' early stopping)",
        "",
        f"Load average (1/5/15 min) when the speed part started: {a1:.2f} / {a5:.2f} / {a15:.2f}; when it "
        f"ended: {b1:.2f} / {b5:.2f} / {b15:.2f}.",
        "",
        "| one application | p50 µs | p99 µs |",
        "|---|---|---|",
    ]
    for name, v in sp["latency"].items():
        lines.append(f"| {name} | {v['p50_us']:.1f} | {v['p99_us']:.1f} |")
    b = sp["batch"]
    lines += [
        "",
        f"Batch of {b['rows']:,} rows (validation, PD, score, grade, 4 reason codes, flags): "
        f"{b['openice_rows_per_s']:,.0f} rows/s; LightGBM default `Booster.predict` alone: "
        f"{b['booster_predict_rows_per_s']:,.0f} rows/s.",
        "",
        "## Targets",
        "",
        "| metric | value | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['metric']} | {r['value']:.4g} | {r['target']:.4g} | {r['baseline']} | "
            f"{r['baseline_value']:.4g} | {r['ratio']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def run(
    *,
    repeats: int = 3,
    folds: int = 5,
    quick: bool = False,
    out: Path = RESULTS,
    speed_dataset: str = "lending_club",
    command: str = "python -m bench.scoring",
    speed_only: bool = False,
) -> dict[str, Any]:
    """Run everything, print the tables, write scoring.json and scoring.md into ``out``.

    ``speed_only`` re-measures speed and keeps the accuracy tables of the previous run in ``out``
    (they depend on training only), saying which run they come from.
    """
    if quick:
        repeats, folds = 1, 3
    n_single, n_anchor, batch_rows = (2_000, 200, 200_000) if quick else (10_000, 1_000, 1_000_000)
    warnings.filterwarnings("ignore")
    acc = {}
    accuracy_run = {"date": date.today().isoformat(), "command": command}
    if speed_only:
        previous = json.loads((out / "scoring.json").read_text())
        acc, repeats, folds = previous["accuracy"], previous["repeats"], previous["folds"]
        accuracy_run = previous["accuracy_run"]
    for name, leaky in () if speed_only else DATASETS:
        ds = load(name, include_leaky=leaky)
        key = name + ("_with_grade_and_rate" if leaky else "")
        print(f"{key}: {len(ds.frame)} rows, {ds.frame.shape[1]} features")
        acc[key] = _accuracy(ds.frame, ds.target.to_numpy(), repeats, folds)
    ds = load(speed_dataset)
    speed = _speed(ds.frame, ds.target.to_numpy(), n_single, n_anchor, batch_rows)
    doc = {
        "name": "scoring",
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "repeats": repeats,
        "folds": folds,
        "quick": quick,
        "results": [],
        "accuracy": acc,
        "speed": speed,
        "speed_dataset": speed_dataset,
        "command": command,
        "accuracy_run": accuracy_run,
    }
    doc["results"] = _results(acc, speed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = _markdown(doc)
    (out / "scoring.md").write_text(md)
    print(md)
    return doc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 x 3 folds and smaller latency/batch samples")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
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
        command=" ".join(["python -m bench.scoring", *sys.argv[1:]]),
        speed_only=args.speed_only,
    )
