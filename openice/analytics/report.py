"""The quarterly disclosure report: the metrics of one quarter as HTML, PDF and JSON, for a risk committee and
investor relations.

The numbers come straight from `compute_splits` (unsplit and by `model_group`, the disclosures'
capital-light / capital-heavy / technology split, from one build of the fact tables) and from `compute` for the
previous quarter and the same quarter a year before, over the same days of their quarter when this one is partial;
the report only selects, names, formats and charts them, so the JSON's `metrics` equal what `compute` returns and the
PDF shows the same values. Charts are matplotlib PNGs embedded as base64 and WeasyPrint may fetch only `data:` URLs,
so rendering never touches the network.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from openice.analytics.backends import Backend
from openice.analytics.definitions import (
    BUCKETS,
    NOT_REVENUE,
    OVER_M4,
    REVENUE_GROUPS,
    REVENUE_LABELS,
    REVENUE_LINES,
    CollectionWindow,
)
from openice.analytics.metrics import TRANSITIONS, MetricSet, Period, compute, compute_splits
from openice.charts import figure, pdf_of, png, report_environment
from openice.money import format_money, from_minor
from openice.servicing.sources import FundingSource, PlatformModel

TEMPLATES = Path(__file__).parent / "templates"
_ENV = report_environment(TEMPLATES)
SPLIT = "model_group"

# (metric, label): the headline metrics, in the order the CLI table shows them.
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
    ("provision_for_contingent_liabilities", "Provision for contingent liabilities charged"),
    ("charge_offs", "Principal charged off"),
    ("provision_coverage", "Provision coverage of 90 day+ loans at the platform's risk"),
)


def bucket_metric(bucket: str) -> str:
    """The metric holding a delinquency bucket's balance."""
    return "balance_over_180" if bucket == OVER_M4 else f"balance_{bucket}"


BUCKET_LABELS = {
    "C": "Current",
    "M1": "M1 (1-30 DPD)",
    "M2": "M2 (31-60 DPD)",
    "M3": "M3 (61-90 DPD)",
    "M4+": "M4+ (91-180 DPD)",
    OVER_M4: "More than 180 DPD, not written off",
}
LABELS = (
    dict(HEADLINE)
    | {
        "loans_outstanding": "Loans outstanding",
        "recoveries": "Recoveries on written-off loans",
        "provisions_held": "Provisions held (contingent liabilities and allowance)",
        "capital_light_ice_technology_share": "Share of outstanding balance under capital-light, ICE and technology",
    }
    | {bucket_metric(b): BUCKET_LABELS[b] for b in BUCKETS}
)
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
)
LOSSES = (
    "charge_offs",
    "recoveries",
    "provision_for_contingent_liabilities",
    "provisions_held",
    "provision_coverage",
)
COMPARISONS = (("previous", "Previous quarter"), ("year_before", "Same quarter a year before"))
# How a reader names each funding source and platform model (`openice.servicing.sources`).
SOURCE_LABELS = {
    FundingSource.INSTITUTION: "Institutions",
    FundingSource.TRUST: "Trusts",
    FundingSource.PLATFORM_CAPITAL: "Platform capital",
    FundingSource.ABS_DEAL: "Asset-backed securities deals",
}
MODEL_LABELS = {
    PlatformModel.CAPITAL_LIGHT: "Capital-light",
    PlatformModel.ICE: "ICE (matched by the open platform)",
    PlatformModel.TECHNOLOGY: "Technology solutions",
    PlatformModel.CAPITAL_HEAVY: "Capital-heavy, on balance sheet included",
}
RISK_FREE_SHARE = "capital_light_ice_technology_share"
ABS_ISSUED, ABS_ISSUED_LABEL = "abs_issued", "ABS issued in the period"
# (metric, the group key of its rows, the labels of its rows, how the table names the metric): the funding mix.
FUNDING_MIX = (
    ("funding_source_balance", "source", SOURCE_LABELS, "Outstanding balance"),
    ("blended_funding_cost_by_source", "source", SOURCE_LABELS, "Blended funding cost"),
    ("platform_model_share", "platform_model", MODEL_LABELS, "Share of outstanding balance"),
)


def fmt_value(value: Any, unit: str, currency: str | None = None) -> str:
    """Money in major units with its currency, ratios as percentages: how a reader of a disclosure expects them. A
    source that records no single currency leaves its money in minor units, said as such, not guessed at."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "money":
        return format_money(value, currency) if currency else f"{value:,} minor units"
    if unit == "months":
        return f"{value:.2f} months"
    return f"{value:,}"


def change(now: Any, before: Any, unit: str) -> float | None:
    """A rate's change in percentage points (as a fraction: 0.01 is 1 pp); an amount's or a count's relative change.
    None when either side is missing, or an amount grows from nothing."""
    if now is None or before is None:
        return None
    if unit == "ratio":
        return float(now - before)
    return None if before == 0 else (now - before) / before


def fmt_change(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:+.2f} pp"
    return f"{value:+.1%}"


@dataclass(frozen=True)
class Quarterly:
    """One quarter's metrics, unsplit and by business model, and the quarters it is compared with (unsplit)."""

    total: MetricSet
    by_model: MetricSet
    previous: MetricSet | None = None
    year_before: MetricSet | None = None

    @property
    def models(self) -> list[str]:
        rows = (r for m in self.by_model.metrics.values() for r in m.rows)
        return sorted({r["group"][SPLIT] for r in rows if SPLIT in r["group"]})

    @property
    def currency(self) -> str | None:
        """The one currency of the book's money; None if the source does not record it (or records several)."""
        return self.total.currency


def shifted(period: Period, as_of: date, months: int) -> tuple[Period, date]:
    """The quarter `months` before `period`, and its as-of date: as many days into it as `as_of` is into `period`
    (its end if it is shorter), so that a partial quarter is compared with the same span."""
    key = period.start.year * 12 + period.start.month - 1 - months
    earlier = Period.quarter(f"{key // 12}Q{key % 12 // 3 + 1}")
    return earlier, min(earlier.end, date.fromordinal(earlier.start.toordinal() + (as_of - period.start).days))


def quarterly(
    backend: Backend,
    period: Period,
    as_of: date | None = None,
    on_step: Callable[[str], None] | None = None,
    collection_window: CollectionWindow | str = CollectionWindow.CALENDAR_MONTH,
    last_closed_day: date | None = None,
    compare: bool = True,
) -> Quarterly:
    """The report's two metric sets, totals and split by business model, from one build of the fact tables
    (`compute_splits`), so that they agree and the facts are built once; then, with `compare`, the previous quarter
    and the same quarter a year before over the same days of their quarter. A quarter after the book's last closed
    day is refused; one running past it is reported up to it, marked partial."""
    total, by_model = compute_splits(
        backend,
        period,
        as_of,
        [(), (SPLIT,)],
        on_step=on_step,
        collection_window=collection_window,
        last_closed_day=last_closed_day,
    )
    if not compare:
        return Quarterly(total, by_model)
    earlier = {}
    for name, months in (("previous", 3), ("year_before", 12)):
        other, other_as_of = shifted(period, total.as_of, months)
        earlier[name] = compute(
            backend,
            other,
            other_as_of,
            on_step=on_step,
            collection_window=collection_window,
            last_closed_day=last_closed_day,
        )
    return Quarterly(total, by_model, **earlier)


def _compared(q: Quarterly, value_of: Callable[[MetricSet], Any], unit: str) -> dict[str, Any]:
    """One figure of this quarter with the same figure of each comparison quarter and the change to it."""
    now = value_of(q.total)
    row: dict[str, Any] = {"total": now}
    for key, _ in COMPARISONS:
        other = getattr(q, key)
        before = value_of(other) if other is not None else None
        row[key] = before
        row[f"change_vs_{key}"] = change(now, before, unit)
    row["change_basis"] = "percentage points" if unit == "ratio" else "relative"
    return row


def _table(q: Quarterly, names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of (metric, this quarter, the comparison quarters and the changes, value per business model)."""
    rows = []
    for name in names:
        metric, split = q.total[name], q.by_model[name]
        per_model = {r["group"][SPLIT]: r["value"] for r in split.rows if SPLIT in r["group"]}
        rows.append(
            {
                "metric": name,
                "label": LABELS[name].strip(),
                "level": "part" if LABELS[name].startswith(" ") else "line",
                "unit": metric.unit,
                **_compared(q, _total_of(name), metric.unit),
                "by_model": {m: per_model.get(m) for m in q.models} if per_model else None,
                "note": metric.note,
            }
        )
    return rows


def _total_of(name: str) -> Callable[[MetricSet], Any]:
    return lambda m: m[name].total()


def _revenue_of(names: Sequence[str]) -> Callable[[MetricSet], int]:
    """The sum of some revenue lines of a metric set."""

    def value(m: MetricSet) -> int:
        lines = {r["group"]["line"]: r["value"] for r in m["revenue"].rows}
        return sum(lines.get(n, 0) for n in names)

    return value


def _revenue(q: Quarterly) -> dict[str, Any]:
    """Revenue by line under its group (credit-driven, platform, technology), the total, and apart the ledger's
    income that is not the platform's revenue."""

    def line(key: str, label: str, value_of: Callable[[MetricSet], Any], level: str) -> dict[str, Any]:
        return {"line": key, "label": label, "level": level, "unit": "money", **_compared(q, value_of, "money")}

    revenue = [name for name, _ in REVENUE_LINES if name not in NOT_REVENUE]
    rows = []
    for group, label in REVENUE_GROUPS.items():
        names = [n for n in revenue if n.split(".")[0] == group]
        rows += [line(n, REVENUE_LABELS[n], _revenue_of([n]), "line") for n in names]
        rows.append(line(group, f"{label}, total", _revenue_of(names), "subtotal"))
    rows.append(line("total", "Total revenue", _revenue_of(revenue), "total"))
    apart = [line(n, REVENUE_LABELS[n], _revenue_of([n]), "line") for n in NOT_REVENUE]
    return {"lines": rows, "not_revenue": apart}


def _group_value(name: str, key: str, value: str) -> Callable[[MetricSet], Any]:
    """The value of one row of a grouped metric (None if the set has no such row)."""
    return lambda m: next((r["value"] for r in m[name].rows if r["group"].get(key) == value), None)


def _funding_mix_lines(result: MetricSet) -> list[tuple[str, str, str, str | None, Callable[[MetricSet], Any]]]:
    """(metric, unit, label, currency, value of a metric set) of each line of the funding mix, in the order it is
    shown: the currency of a row by currency (ABS issued), None for a line in the book's currency or not money."""
    out: list[tuple[str, str, str, str | None, Callable[[MetricSet], Any]]] = []
    for name, key, labels, title in FUNDING_MIX:
        unit = result[name].unit
        out += [(name, unit, f"{title}: {label}", None, _group_value(name, key, k)) for k, label in labels.items()]
    out.append((RISK_FREE_SHARE, "ratio", LABELS[RISK_FREE_SHARE], None, _total_of(RISK_FREE_SHARE)))
    for row in result[ABS_ISSUED].rows:
        currency = row["group"].get("currency")
        value_of = _group_value(ABS_ISSUED, "currency", currency) if currency else _total_of(ABS_ISSUED)
        out.append((ABS_ISSUED, "money", abs_issued_label(row), currency, value_of))
    return out


def abs_issued_label(row: dict[str, Any]) -> str:
    """How the funding mix names a row of ABS issued: by its currency, when it has one."""
    currency = row["group"].get("currency")
    return f"{ABS_ISSUED_LABEL} ({currency})" if currency else ABS_ISSUED_LABEL


def funding_mix_rows(result: MetricSet) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, unit, row) of every row of the funding mix, split or not, as the command line prints them."""
    out = []
    for name, key, labels, title in FUNDING_MIX:
        metric = result[name]
        out += [(f"{title}: {labels[r['group'][key]]}", metric.unit, r) for r in metric.rows]
    metric = result[RISK_FREE_SHARE]
    out += [(LABELS[RISK_FREE_SHARE], metric.unit, r) for r in metric.rows]
    return out + [(abs_issued_label(r), "money", r) for r in result[ABS_ISSUED].rows]


def _funding_mix(q: Quarterly) -> list[dict[str, Any]]:
    """The funding mix beside the comparison quarters: balance and funding cost by source, shares by model, ABS
    issued by currency (a row by currency carries it)."""
    return [
        {"metric": name, "label": label, "level": "line", "unit": unit, **({"currency": c} if c else {})}
        | _compared(q, value_of, unit)
        for name, unit, label, c, value_of in _funding_mix_lines(q.total)
    ]


def _roll_rates(q: Quarterly) -> dict[str, Any]:
    """Roll rates of the quarter's months, by transition."""
    months = sorted({r["group"]["month"] for r in q.total["roll_rates"].rows})
    in_quarter = [m for m in months if q.total.period.start.isoformat()[:7] <= m <= q.total.as_of.isoformat()[:7]]
    values = {(r["group"]["month"], r["group"]["transition"]): r["value"] for r in q.total["roll_rates"].rows}
    transitions = [f"{a}->{b}" for a, b in TRANSITIONS]
    return {
        "months": in_quarter,
        "rows": [
            {"transition": t, "label": t.replace("->", " to "), "values": {m: values.get((m, t)) for m in in_quarter}}
            for t in transitions
        ],
    }


def _model_monitoring(q: Quarterly) -> list[dict[str, Any]]:
    """Predicted PD against realised default by grade, over every origination month, and in total."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for r in q.total["model_monitoring"].rows:
        for grade in (r["group"]["grade"], "All grades"):
            s = sums[grade]
            s[0] += r["denominator"]
            s[1] += r["numerator"]
            s[2] += (r["predicted_pd"] or 0.0) * r["denominator"]
    return [
        {"grade": g, "loans": int(n), "defaulted": int(d), "realised_default_rate": d / n, "mean_predicted_pd": p / n}
        for g, (n, d, p) in sorted(sums.items(), key=lambda kv: (kv[0] == "All grades", kv[0]))
        if n
    ]


def _json_money(value: Any, currency: str | None) -> Any:
    """The report's tables for the JSON: in every row whose unit is money, amounts as decimal strings in major
    units, as the API gives them."""
    if isinstance(value, list):
        return [_json_money(v, currency) for v in value]
    if not isinstance(value, dict):
        return value
    own = value.get("currency", currency)  # a row by currency (ABS issued) is in its own
    if value.get("unit") == "money" and own is not None:
        amounts = ("total", "by_model", *(key for key, _ in COMPARISONS))
        return {k: (_decimal(v, own) if k in amounts else v) for k, v in value.items()}
    return {k: _json_money(v, currency) for k, v in value.items()}


def _decimal(value: Any, currency: str) -> Any:
    if isinstance(value, dict):
        return {k: _decimal(v, currency) for k, v in value.items()}
    return None if value is None else str(from_minor(value, currency))


def tables(q: Quarterly) -> dict[str, Any]:
    """The report's tables, amounts in minor units."""
    return {
        "business_highlights": _table(q, HIGHLIGHTS),
        "risk_indicators": _table(q, RISK),
        "balances_by_bucket": _table(q, [bucket_metric(b) for b in BUCKETS]),
        "roll_rates": _roll_rates(q),
        "charge_offs_and_provisions": _table(q, LOSSES),
        "revenue": _revenue(q),
        "funding_mix": _funding_mix(q),
        "model_monitoring": _model_monitoring(q),
    }


def report_data(q: Quarterly) -> dict[str, Any]:
    """The JSON of the report: its tables (amounts as decimal strings in major units of `currency`), and every
    metric exactly as `compute` returned it (amounts in minor units)."""
    total = q.total.to_dict()
    compared = {
        key: {"period": other.to_dict()["period"], "as_of": other.as_of.isoformat()}
        for key, _ in COMPARISONS
        if (other := getattr(q, key)) is not None
    }
    keys = (
        "period",
        "as_of",
        "engine",
        "collection_window",
        "last_closed_day",
        "partly_closed",
        "closed_range",
        "partial",
        "currencies",
    )
    return {
        "report": "quarterly",
        **{k: total[k] for k in keys},
        "currency": q.currency,
        "compared_with": compared,
        "split": SPLIT,
        "models": q.models,
        **_json_money(tables(q), q.currency),
        "metrics": total["metrics"],
        f"metrics_by_{SPLIT}": q.by_model.to_dict()["metrics"],
    }


DPI = 130
MONEY_SCALES = ((1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def _money_axis(ax: Any, top: float, currency: str | None) -> float:
    """Label a money axis in thousands, millions or billions of the currency (never matplotlib's `1e6` offset);
    returns the divisor for minor units."""
    from matplotlib.ticker import StrMethodFormatter

    scale, name = next(((s, n) for s, n in MONEY_SCALES if top / 100 >= s), (1.0, ""))
    ax.set_ylabel(f"{name} {currency or 'major units'}".strip())
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if scale == 1 else "{x:,.1f}"))
    return 100 * scale


def charts(q: Quarterly) -> dict[str, str]:
    """Vintage curves, the delinquency trend and the volume mix, as base64 PNGs: one colour per vintage along a
    sequential palette (older cohorts darker), legends beside the plots, units on every axis."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    out = {}
    fig = figure(9.5, 3.6)
    palette = colormaps["viridis"]
    axes = fig.subplots(1, 2, sharey=True)
    for ax, n in zip(axes, (30, 90), strict=True):
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in q.total[f"vintage_{n}_plus"].rows:
            curves[r["group"]["origination_month"]].append((r["group"]["mob"], r["value"] or 0.0))
        cohorts = sorted(curves)
        for k, month in enumerate(cohorts):
            colour = palette(0.9 * k / max(len(cohorts) - 1, 1))
            ax.plot(*zip(*curves[month], strict=True), marker=".", color=colour, label=month)
        ax.set_title(f"Balance ever {n}+ DPD", fontsize=10)
        ax.set_xlabel("months on book")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of original principal")
    if cohorts:
        axes[1].legend(
            title="origination month",
            fontsize=7,
            title_fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.02, 1),
            ncols=1 + (len(cohorts) - 1) // 14,
        )
    out["vintage"] = png(fig, DPI)

    fig = figure(9.5, 3.2)
    ax = fig.subplots()
    for n in (30, 90):
        rows = q.total[f"delinquency_trend_{n}_plus"].rows
        ax.plot([r["group"]["month"] for r in rows], [r["value"] or 0.0 for r in rows], marker="o", label=f"{n}+ DPD")
    ax.set_title("Month-end delinquent balance", fontsize=10)
    ax.set_ylabel("share of outstanding principal")
    ax.set_xlabel("month end")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    out["delinquency_trend"] = png(fig, DPI)

    fig = figure(9.5, 3.2)
    colours = dict(zip(q.models, ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"), strict=False))
    for ax, name in zip(fig.subplots(1, 2), ("volume", "outstanding_balance"), strict=True):
        ax.set_title(LABELS[name], fontsize=10)
        rows = q.by_model[name].rows
        values = [r["value"] or 0 for r in rows]
        if not any(values):
            ax.text(0.5, 0.5, "none in the quarter", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        divisor = _money_axis(ax, max(values), q.currency)
        ax.bar(
            [r["group"][SPLIT] for r in rows],
            [v / divisor for v in values],
            color=[colours.get(r["group"][SPLIT], "#999999") for r in rows],
        )
        ax.set_xlabel("business model")
        ax.grid(axis="y", alpha=0.3)
    out["volume_mix"] = png(fig, DPI)
    return out


def render_html(q: Quarterly, data: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page."""
    data = data or report_data(q)
    return _ENV.get_template("quarterly.html").render(
        d=data,
        t=tables(q),
        charts=charts(q),
        fmt=lambda value, unit, currency=None: fmt_value(value, unit, currency or q.currency),
        fmt_change=fmt_change,
        comparisons=COMPARISONS,
        quarter=_quarter_label(q.total.period),
    )


def _quarter_label(period: Period) -> str:
    return f"{period.start.year}Q{(period.start.month - 1) // 3 + 1}"


def write_report(q: Quarterly, out: Path) -> dict[str, Path]:
    """Write `quarterly-<quarter>.{html,pdf,json}` into `out`; returns the paths by format."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"quarterly-{_quarter_label(q.total.period)}"
    data = report_data(q)
    html = render_html(q, data)
    paths = {"html": stem.with_suffix(".html"), "pdf": stem.with_suffix(".pdf"), "json": stem.with_suffix(".json")}
    paths["html"].write_text(html, encoding="utf-8")
    paths["pdf"].write_bytes(pdf_of(html))
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return paths
