"""The monitoring report: what `monitor` computed, as one self-contained HTML page (charts as embedded PNG beside
the tables of their numbers), for whoever decides whether a model still holds."""

from __future__ import annotations

from typing import Any

import numpy as np

from openice.charts import figure, png
from openice.scoring.monitor import ACT, WATCH
from openice.scoring.report import template

__all__ = ["charts", "render_html"]

DPI = 90
STATUS_COLOURS = {"stable": "#55a868", "watch": "#dd8452", "act": "#c44e52"}


def _thresholds(ax: Any) -> None:
    ax.axhline(WATCH, ls="--", color=STATUS_COLOURS["watch"], lw=1, label=f"watch {WATCH}")
    ax.axhline(ACT, ls="--", color=STATUS_COLOURS["act"], lw=1, label=f"act {ACT}")


def _psi_chart(rows: list[dict[str, Any]]) -> str:
    fig = figure(6, 3.2)
    ax = fig.subplots()
    groups = [r["group"] for r in rows]
    ax.bar(groups, [r["score_psi"] for r in rows], color=[STATUS_COLOURS[r["score_status"]] for r in rows])
    _thresholds(ax)
    ax.set(ylabel="score PSI", title="Score stability (PSI) by period")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    return png(fig, DPI)


def _csi_chart(rows: list[dict[str, Any]]) -> str:
    features = sorted(rows[0]["csi"])
    values = np.array([[r["csi"][f] for r in rows] for f in features])
    fig = figure(6, 0.6 + 0.28 * len(features))
    ax = fig.subplots()
    shown = ax.imshow(values, aspect="auto", cmap="Oranges", vmin=0, vmax=2 * ACT)
    ax.set_yticks(range(len(features)), features, fontsize=7)
    ax.set_xticks(range(len(rows)), [r["group"] for r in rows], fontsize=7, rotation=45)
    ax.set_title("Feature stability (CSI) by period")
    fig.colorbar(shown, ax=ax, label="CSI")
    return png(fig, DPI)


def _outcome_chart(rows: list[dict[str, Any]], training: dict[str, Any]) -> str:
    known = [r for r in rows if r.get("outcomes")]
    groups = [r["group"] for r in known]
    fig = figure(9, 3.2)
    for ax, key, label in zip(fig.subplots(1, 3), ("bad_rate", "auc", "ks"), ("bad rate", "AUC", "KS"), strict=True):
        ax.plot(groups, [np.nan if r["outcomes"][key] is None else r["outcomes"][key] for r in known], "o-")
        ax.axhline(training[key], ls="--", color="grey", label="training")
        ax.set_title(f"{label} by period", fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
    return png(fig, DPI)


def _calibration_chart(bands: list[dict[str, Any]]) -> str:
    fig = figure(5, 4)
    ax = fig.subplots()
    filled = [b for b in bands if b["n"]]
    ax.plot([b["training_mean_pd"] for b in bands], [b["training_bad_rate"] for b in bands], "s--", label="training")
    ax.plot([b["mean_pd"] for b in filled], [b["bad_rate"] for b in filled], "o-", label="monitored")
    top = max(
        [b["training_bad_rate"] for b in bands] + [b["bad_rate"] for b in filled] + [bands[-1]["training_mean_pd"]]
    )
    ax.plot([0, top * 1.05], [0, top * 1.05], ":", color="grey")
    ax.set(xlabel="mean predicted PD", ylabel="observed bad rate", title="Calibration by PD band (all rows)")
    ax.legend(fontsize=7)
    return png(fig, DPI)


def charts(rows: list[dict[str, Any]], training: dict[str, Any] | None) -> dict[str, str]:
    """The report's charts, by name; the outcome charts only where outcomes are known."""
    out = {"psi": _psi_chart(rows), "csi": _csi_chart(rows)}
    if training is not None and rows[0].get("outcomes"):
        out["outcomes"] = _outcome_chart(rows, training)
        out["calibration"] = _calibration_chart(rows[0]["outcomes"]["calibration"])
    return out


def render_html(rows: list[dict[str, Any]], about: dict[str, Any], training: dict[str, Any] | None) -> str:
    """The page: ``rows`` as `monitor` returns them (the first is all rows together), ``about`` what was compared
    (package hash, input, grouping, target), ``training`` the figures outcomes are compared with."""
    outcome_rows = [r for r in rows if r.get("outcomes")]
    return template("monitor.html").render(
        rows=rows,
        about=about,
        training=training if outcome_rows else None,
        outcome_rows=outcome_rows,
        features=sorted(rows[0]["csi"]),
        charts=charts(rows, training),
        watch=WATCH,
        act=ACT,
    )
