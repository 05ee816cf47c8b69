"""The console's KPI dashboard: a quarter's disclosure metrics (the metric set `GET /v1/portfolio/metrics` answers)
and the borrower funnel, shaped into sections that each carry a chart and the table of its numbers, and the same
numbers as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openice.web.i18n import Words

HEADLINE = (
    "volume",
    "loans_originated",
    "outstanding_balance",
    "loans_outstanding",
    "day1_delinquency_rate",
    "collection_rate_30d",
    "delinquency_90_plus_rate",
)
BUCKETS = ("balance_C", "balance_M1", "balance_M2", "balance_M3", "balance_M4+", "balance_over_180")
FUNNEL = ("registered", "approved", "drawn", "repeat")
RISK_FREE_SHARE = "capital_light_ice_technology_share"
ABS_ISSUED = "abs_issued"


@dataclass
class Row:
    """One figure: its label, its unit (money, ratio, count, months) and its value as the metric set holds it; money
    of a row by currency (ABS issued) is in that currency, any other in the book's."""

    label: str
    unit: str
    value: Any
    currency: str | None = None


@dataclass
class Section:
    """A chart (None for a table alone) and the table of its numbers."""

    name: str
    chart: str | None
    rows: list[Row] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return self.rows[0].unit if self.rows else "count"


def _rows(metric: dict[str, Any], label: Callable[[dict[str, Any]], str]) -> list[Row]:
    return [Row(label(r["group"]), metric["unit"], r["value"]) for r in metric["rows"]]


def _total(metric: dict[str, Any]) -> Any:
    rows = metric["rows"]
    return rows[0]["value"] if len(rows) == 1 and not rows[0]["group"] else None


def sections(t: Words, result: dict[str, Any], funnel: dict[str, int]) -> list[Section]:
    """The dashboard's sections, in page order, from the metric set and the funnel's counts."""
    m = result["metrics"]

    def name(code: str) -> str:
        return t.name("kpi.metric", code)

    return [
        Section("headline", None, [Row(name(n), m[n]["unit"], _total(m[n])) for n in HEADLINE]),
        Section("buckets", "bar", [Row(n.removeprefix("balance_"), "money", _total(m[n])) for n in BUCKETS]),
        Section("funnel", "bar", [Row(t.name("kpi.funnel", n), "count", funnel[n]) for n in FUNNEL]),
        Section("revenue", "bar", _rows(m["revenue"], lambda g: t.name("kpi.line", g["line"]))),
        *(
            Section(s, "bar", _rows(m[metric], lambda g: t.name("kpi.source", g["source"])))
            for s, metric in (
                ("funding_sources", "funding_source_balance"),
                ("funding_cost", "blended_funding_cost_by_source"),
            )
        ),
        Section(
            "platform_models",
            "bar",
            _rows(m["platform_model_share"], lambda g: t.name("kpi.model", g["platform_model"]))
            + [Row(name(RISK_FREE_SHARE), "ratio", _total(m[RISK_FREE_SHARE]))],
        ),
        Section(
            "abs_issued",
            None,
            [
                Row(r["group"].get("currency") or name(ABS_ISSUED), "money", r["value"], r["group"].get("currency"))
                for r in m[ABS_ISSUED]["rows"]
            ],
        ),
        *(
            Section(v, "line", _rows(m[v], lambda g: t("kpi.vintage", month=g["origination_month"], mob=g["mob"])))
            for v in ("vintage_30_plus", "vintage_90_plus")
        ),
        Section("roll_rates", "bar", _rows(m["roll_rates"], lambda g: f"{g['month']} {g['transition']}")),
        *(
            Section(d, "line", _rows(m[d], lambda g: g["month"]))
            for d in ("delinquency_trend_30_plus", "delinquency_trend_90_plus")
        ),
    ]


def plain(t: Words, row: Row, currency: str) -> str:
    """A figure as the CSV writes it and the table carries it: money in major units (minor units when the book
    records no single currency, see `unit`), a ratio as a decimal."""
    if row.value is None:
        return ""
    if row.unit == "money" and (row.currency or currency):
        return t.amount(int(row.value), row.currency or currency)
    return str(row.value)


def unit(t: Words, row: Row, currency: str) -> str:
    """The unit a row's figure is in. A book whose products lend in several currencies records no single currency:
    its money is summed in minor units, said as such rather than guessed at."""
    if row.unit != "money":
        return row.unit
    return row.currency or currency or t("kpi.minor_units")


def shown(t: Words, row: Row, currency: str) -> str:
    """A figure as the reader's locale writes it."""
    if row.unit == "money" and not (row.currency or currency):
        return "—" if row.value is None else f"{t.number(row.value)} {t('kpi.minor_units')}"
    if row.unit == "money":
        return t.money(None if row.value is None else int(row.value), row.currency or currency)
    if row.unit == "ratio":
        return t.percent(row.value)
    return "—" if row.value is None else t.number(row.value)


def chart_values(section: Section) -> list[float | None]:
    """What the chart plots: money in minor units (the chart divides), ratios in percent."""
    scale = 100 if section.unit == "ratio" else 1
    return [None if r.value is None else r.value * scale for r in section.rows]


def csv_text(t: Words, section: Section, currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["item", "unit", "value"])
    for row in section.rows:
        writer.writerow([row.label, unit(t, row, currency), plain(t, row, currency)])
    return out.getvalue()
