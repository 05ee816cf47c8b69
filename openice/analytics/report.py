"""The quarterly disclosure report: the metrics of one quarter as HTML, PDF and JSON.

The numbers come straight from `compute_splits` (unsplit and by `model_group`, the disclosures'
capital-light / capital-heavy / technology split, from one build of the fact tables); the report
only selects, formats and charts them, so the JSON equals what `compute` returns and the PDF shows
the same values. Charts are matplotlib PNGs embedded as base64 and WeasyPrint may fetch only
`data:` URLs, so rendering never touches the network.
"""

from __future__ import annotations

import base64
import io
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openice.analytics.backends import Backend
from openice.analytics.definitions import CollectionWindow
from openice.analytics.metrics import MetricSet, Period, compute_splits

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
SPLIT = "model_group"

# (metric, label): the headline metrics, in the order the CLI table and the report show them.
HEADLINE = (
    ("loans_originated", "Loans originated"),
    ("volume", "Facilitation and origination volume"),
    ("facilitation_volume", "  facilitation (capital-light, capital-heavy)"),
    ("origination_volume", "  origination (on balance sheet)"),
    ("technology_volume", "  technology solutions"),
    ("outstanding_balance", "Outstanding balance"),
    ("day1_delinquency_rate", "Day-1 delinquency rate"),
    ("collection_rate_30d", "30-day collection rate"),
    ("delinquency_90_plus_rate", "90 day+ delinquency rate"),
    ("balance_over_180", "Balance more than 180 DPD (outside the above)"),
    ("fpd_rate", "First-payment default"),
    ("wa_contractual_tenor_months", "Weighted average contractual tenor"),
    ("repeat_borrower_contribution", "Repeat borrower contribution"),
    ("cumulative_registered_users", "Cumulative registered users"),
    ("cumulative_approved_users", "Cumulative users with approved credit lines"),
    ("cumulative_borrowers", "Cumulative borrowers"),
    ("blended_funding_cost", "Blended funding cost"),
    ("provision_for_contingent_liabilities", "Provision for contingent liabilities"),
)
LABELS = dict(HEADLINE) | {"loans_outstanding": "Loans outstanding"}
HIGHLIGHTS = (
    "cumulative_registered_users",
    "cumulative_approved_users",
    "cumulative_borrowers",
    "loans_originated",
    "volume",
    "facilitation_volume",
    "origination_volume",
    "technology_volume",
    "outstanding_balance",
    "loans_outstanding",
    "wa_contractual_tenor_months",
    "repeat_borrower_contribution",
    "blended_funding_cost",
)
RISK = (
    "day1_delinquency_rate",
    "collection_rate_30d",
    "delinquency_90_plus_rate",
    "balance_over_180",
    "fpd_rate",
    "provision_for_contingent_liabilities",
)


def fmt_value(value: Any, unit: str) -> str:
    """Money in major units, ratios as percentages: how a reader of a disclosure expects them."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "money":
        return f"{value / 100:,.2f}"
    if unit == "months":
        return f"{value:.2f} months"
    return f"{value:,}"


@dataclass(frozen=True)
class Quarterly:
    """One quarter's metrics, unsplit and by business model, computed on one backend."""

    total: MetricSet
    by_model: MetricSet

    @property
    def models(self) -> list[str]:
        rows = (r for m in self.by_model.metrics.values() for r in m.rows)
        return sorted({r["group"][SPLIT] for r in rows if SPLIT in r["group"]})


def quarterly(
    backend: Backend,
    period: Period,
    as_of: date | None = None,
    on_step: Callable[[str], None] | None = None,
    collection_window: CollectionWindow | str = CollectionWindow.CALENDAR_MONTH,
    last_closed_day: date | None = None,
) -> Quarterly:
    """The report's two metric sets, totals and split by business model, from one build of the fact tables
    (`compute_splits`), so that they agree and the facts are built once. A quarter after the book's last closed
    day is refused; one running past it is reported up to it, marked partly closed."""
    return Quarterly(
        *compute_splits(
            backend,
            period,
            as_of,
            [(), (SPLIT,)],
            on_step=on_step,
            collection_window=collection_window,
            last_closed_day=last_closed_day,
        )
    )


def _table(q: Quarterly, names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of (metric, total, value per business model) for the report's tables."""
    rows = []
    for name in names:
        metric, split = q.total[name], q.by_model[name]
        per_model = {r["group"][SPLIT]: r["value"] for r in split.rows if SPLIT in r["group"]}
        rows.append(
            {
                "metric": name,
                "label": LABELS[name].strip(),
                "unit": metric.unit,
                "total": metric.total(),
                "by_model": {m: per_model.get(m) for m in q.models} if per_model else None,
                "note": metric.note,
            }
        )
    return rows


def report_data(q: Quarterly) -> dict[str, Any]:
    """The JSON of the report: its tables, and every metric exactly as `compute` returned it."""
    total = q.total.to_dict()
    return {
        "report": "quarterly",
        **{
            k: total[k]
            for k in (
                "period",
                "as_of",
                "engine",
                "collection_window",
                "last_closed_day",
                "partly_closed",
                "closed_range",
            )
        },
        "split": SPLIT,
        "models": q.models,
        "business_highlights": _table(q, HIGHLIGHTS),
        "risk_indicators": _table(q, RISK),
        "revenue": {r["group"]["line"]: r["value"] for r in q.total["revenue"].rows},
        "metrics": total["metrics"],
        f"metrics_by_{SPLIT}": q.by_model.to_dict()["metrics"],
    }


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def charts(q: Quarterly) -> dict[str, str]:
    """Vintage curves, the delinquency trend and the volume mix, as base64 PNGs."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    out = {}
    fig = Figure(figsize=(9, 3.4))
    for ax, n in zip(fig.subplots(1, 2), (30, 90), strict=True):
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in q.total[f"vintage_{n}_plus"].rows:
            curves[r["group"]["origination_month"]].append((r["group"]["mob"], r["value"] or 0.0))
        for month, points in sorted(curves.items()):
            ax.plot(*zip(*points, strict=True), marker=".", label=month)
        ax.set(title=f"Vintage {n}+ DPD", xlabel="month on book")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if 0 < len(curves) <= 12:
            ax.legend(fontsize=6, ncols=2)
    out["vintage"] = _png(fig)

    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    for n in (30, 90):
        rows = q.total[f"delinquency_trend_{n}_plus"].rows
        ax.plot([r["group"]["month"] for r in rows], [r["value"] or 0.0 for r in rows], marker="o", label=f"{n}+ DPD")
    ax.set(title="Delinquency trend (month-end balance share)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend()
    out["delinquency_trend"] = _png(fig)

    fig = Figure(figsize=(9, 3))
    for ax, name in zip(fig.subplots(1, 2), ("volume", "outstanding_balance"), strict=True):
        rows = q.by_model[name].rows
        ax.bar(
            [r["group"][SPLIT] for r in rows],
            [(r["value"] or 0) / 100 for r in rows],
            color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(rows)],
        )
        ax.set(title=f"{LABELS[name]} by business model")
    out["volume_mix"] = _png(fig)
    return out


def render_html(q: Quarterly, data: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page."""
    data = data or report_data(q)
    return _ENV.get_template("quarterly.html").render(
        d=data, charts=charts(q), fmt=fmt_value, quarter=_quarter_label(q.total.period)
    )


def _quarter_label(period: Period) -> str:
    return f"{period.start.year}Q{(period.start.month - 1) // 3 + 1}"


def write_pdf(html: str, path: Path) -> Path:
    """WeasyPrint, allowed to read only the `data:` URLs the HTML embeds."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)).write_pdf(path)
    return path


def write_report(q: Quarterly, out: Path) -> dict[str, Path]:
    """Write `quarterly-<quarter>.{html,pdf,json}` into `out`; returns the paths by format."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"quarterly-{_quarter_label(q.total.period)}"
    data = report_data(q)
    html = render_html(q, data)
    paths = {"html": stem.with_suffix(".html"), "pdf": stem.with_suffix(".pdf"), "json": stem.with_suffix(".json")}
    paths["html"].write_text(html, encoding="utf-8")
    write_pdf(html, paths["pdf"])
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return paths
