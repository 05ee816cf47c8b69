"""The model report: HTML (charts embedded as base64 PNG, no CDN) and the same facts as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from sklearn.metrics import roc_curve

from openice.charts import figure, png
from openice.scoring.metrics import calibration_table, summary
from openice.scoring.monitor import status
from openice.scoring.package import read_json, verify

__all__ = ["build_report", "template", "write_report"]
DPI = 80
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("openice.scoring"), autoescape=True, undefined=jinja2.StrictUndefined
)


def template(name: str) -> jinja2.Template:
    """One of the scoring reports' templates (the model report, the monitoring report)."""
    return _TEMPLATES.get_template(name)


def _charts(y: np.ndarray, p: np.ndarray, scores: np.ndarray, score_y: np.ndarray) -> dict[str, str]:
    charts = {}
    fpr, tpr, _ = roc_curve(y, p)
    fig = figure(5, 4)
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUC {summary(y, p)['auc']:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (out-of-fold)")
    ax.legend()
    charts["roc"] = png(fig, DPI)
    order = np.argsort(-p)
    cum_bad = np.cumsum(y[order]) / max(y.sum(), 1)
    cum_good = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    fig = figure(5, 4)
    ax = fig.subplots()
    ax.plot(share, cum_bad, label="bad")
    ax.plot(share, cum_good, label="good")
    ax.set(xlabel="share of applicants, riskiest first", ylabel="cumulative share", title="KS (out-of-fold)")
    ax.legend()
    charts["ks"] = png(fig, DPI)
    cal = calibration_table(y, p)
    fig = figure(5, 4)
    ax = fig.subplots()
    mp, br = [c["mean_pd"] for c in cal], [c["bad_rate"] for c in cal]
    ax.plot(mp, br, "o-")
    top = max(mp + br) * 1.05
    ax.plot([0, top], [0, top], "--", color="grey")
    ax.set(xlabel="mean PD", ylabel="observed bad rate", title="Calibration by decile (out-of-fold)")
    charts["calibration"] = png(fig, DPI)
    fig = figure(5, 4)
    ax = fig.subplots()
    bins = np.linspace(scores.min(), scores.max(), 40).tolist()
    ax.hist(scores[score_y == 0], bins=bins, alpha=0.6, label="good", density=True)
    ax.hist(scores[score_y == 1], bins=bins, alpha=0.6, label="bad", density=True)
    ax.set(xlabel="score", ylabel="density", title="Score distribution (training)")
    ax.legend()
    charts["scores"] = png(fig, DPI)
    return charts


def build_report(package: str | Path, *, charts: bool = True) -> dict[str, Any]:
    """Everything the report shows, from a verified package."""
    package = Path(package)
    package_hash = verify(package)
    meta = read_json(package / "metadata.json")
    card = read_json(package / "scorecard.json")
    ev = read_json(package / "evaluation.json")
    m = meta["metrics"]
    in_card = {c["name"]: c for c in card["cards"]}
    features = [
        {
            "name": f["name"],
            "iv": card["ivs"].get(f["name"], 0.0),
            "in_card": f["name"] in in_card,
            "trend": in_card.get(f["name"], {}).get("trend", ""),
            "note": card["notes"].get(f["name"], ""),
        }
        for f in meta["features"]
    ]
    cards = [
        {
            "name": c["name"],
            "iv": c["iv"],
            "in_card": c["name"] in in_card,
            "bins": [
                {
                    "label": lab,
                    "count": n,
                    "bad": b,
                    "bad_rate": b / n if n else 0.0,
                    "woe": w,
                    "points": pt,
                    "code": code,
                }
                for lab, n, b, w, pt, code in zip(
                    c["labels"],
                    c["counts"],
                    c["bads"],
                    c["woe"],
                    c["points"] or [0.0] * len(c["labels"]),
                    [code if w > 0 else "" for code, w in zip(c["codes"], c["woe"], strict=False)]
                    or [""] * len(c["labels"]),
                    strict=False,
                )
            ],
        }
        for c in card["cards"] + card.get("excluded", [])
    ]
    psi = m.get("psi_train_test")
    report = {
        "package_hash": package_hash,
        "created_at": meta["created_at"],
        "rows": meta["rows"],
        "refit": meta.get("refit", False),
        "screening": meta.get("screening", []),
        "champion": f"{meta['champion']['candidate']} ({meta['champion']['calibration']})",
        "training_data_sha256": meta["training_data_sha256"],
        "performance": {"out-of-fold": m["oof"], **({"test": m["test"]} if "test" in m else {})},
        "candidates": meta["selection"]["candidates"],
        "calibration": m["oof_calibration"],
        "psi": {**psi, "score_status": status(psi["score_psi"])} if psi else None,
        "scaling": card["scaling"],
        "features": features,
        "cards": cards,
    }
    if charts:
        y, p = np.asarray(ev["oof"]["y"]), np.asarray(ev["oof"]["pd"])
        sy, sc = np.asarray(ev["train_scores"]["y"]), np.asarray(ev["train_scores"]["pd"])
        report["charts"] = _charts(y, p, sc, sy)
    return report


def write_report(package: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write report.html and report.json into ``out`` (default: beside the package, ``<package>-report``)."""
    package = Path(package)
    out = Path(out) if out else package.with_name(package.name + "-report")
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(package)
    html_path, json_path = out / "report.html", out / "report.json"
    html_path.write_text(template("report.html").render(r=report))
    json_path.write_text(json.dumps({k: v for k, v in report.items() if k != "charts"}, indent=1))
    return html_path, json_path
