"""The investor report and the stress grid as a person reads them, in English or Chinese: one self-contained HTML
page each (Jinja over the reports' shared page, the chart embedded), the report printed to PDF with its pages
numbered, and the report's body alone for the console to show. Money in major units with the currency, rates as
percentages.

The words are the pages' catalog `web/locales/<locale>/investor.json`, one place for translators (the console shows
the same report); this stage reads the file rather than the pages' code, which sits above it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openice.charts import figure, page_numbers, pdf_of, png, report_environment
from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.report import InvestorReport
from openice.money import fmt, from_minor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from openice.funding.projection import Projection, Scenario

_ENV = report_environment(Path(__file__).parent / "templates")
CATALOGS = Path(__file__).parents[1] / "web" / "locales"
# The languages as `--lang` names them and as the pages name their locales, and the catalog of each.
LANGUAGES = {"en": "en", "zh": "zh-CN", "zh-CN": "zh-CN"}

Words = Callable[..., str]


@cache
def _catalog(locale: str) -> dict[str, str]:
    return dict(json.loads((CATALOGS / locale / "investor.json").read_text(encoding="utf-8")))


def words(lang: str = "en") -> Words:
    """The report's words in `lang` (en, zh or zh-CN): `t(key, **values)`; another language is refused naming it."""
    if lang not in LANGUAGES:
        raise ValidationError(f"{lang!r} is not a language of the report; use en or zh", field="lang")
    messages = _catalog(LANGUAGES[lang])

    def t(key: str, **values: Any) -> str:
        return messages[key].format(**values) if values else messages[key]

    return t


def percent(rate: Decimal) -> str:
    return f"{rate * 100:.4f}%"


def balances_chart(r: InvestorReport, t: Words) -> str:
    """The pool's and each tranche's balance at each month's end, up to the report's month."""
    fig = figure(7.5, 2.6)
    ax = fig.add_subplot()
    periods = [p for p, _, _ in r.history]

    def major(minor: int) -> float:
        return float(from_minor(minor, r.currency))

    pool = [major(pool) for _, pool, _ in r.history]
    ax.plot(periods, pool, marker="o", color="#333", label=t("investor.chart.pool"))
    for tranche in r.tranches:
        balances = [major(tranches[tranche.name]) for _, _, tranches in r.history]
        ax.plot(periods, balances, marker=".", label=tranche.name)
    ax.set_xlabel(t("investor.chart.period"))
    ax.set_ylabel(t("investor.chart.balance", currency=r.currency))
    ax.set_xticks(periods)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


def _context(r: InvestorReport, lang: str) -> dict[str, Any]:
    t = words(lang)
    return {
        "r": r,
        "t": t,
        "lang": LANGUAGES[lang],
        "month": r.last_day.strftime("%Y-%m"),
        "money": lambda minor: fmt(minor, r.currency),
        "percent": percent,
        "chart": balances_chart(r, t),
        "page_numbers": page_numbers(t("investor.page")),
    }


def render_html(r: InvestorReport, lang: str = "en") -> str:
    return _ENV.get_template("investor.html").render(**_context(r, lang))


def render_body(r: InvestorReport, lang: str = "en") -> str:
    """The report's sections without the page around them, for a page of the console to hold."""
    return _ENV.get_template("investor_body.html").render(**_context(r, lang))


def render_pdf(r: InvestorReport, lang: str = "en") -> bytes:
    return pdf_of(render_html(r, lang))


def or_dash(value: float | int | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def grid_rows(projections: Sequence[Projection]) -> list[list[str]]:
    """The stress grid as its table writes it, one row a scenario: CDR, CPR, then each tranche's loss as a share of
    its balance and its WAL in years (`-` for a tranche never paid)."""
    return [
        [
            f"{p.scenario.cdr:.1%}",
            f"{p.scenario.cpr:.0%}",
            *(v for o in p.tranches for v in (f"{o.loss_rate:.2%}", or_dash(o.wal_years, "{:.2f}"))),
        ]
        for p in projections
    ]


def grid_figure(deal: Deal, projections: Sequence[Projection], t: Words) -> Figure:
    """Each tranche's loss (% of its balance) against the annual default rate, one panel a tranche side by side on
    one scale, one line a prepayment rate (a sequential palette, darker for faster prepayment), the legend beside the
    panels so that it covers no line."""
    from matplotlib import colormaps
    from matplotlib.ticker import PercentFormatter

    cprs = sorted({p.scenario.cpr for p in projections})
    cdrs = sorted({p.scenario.cdr for p in projections})
    fig = figure(2.3 * len(deal.tranches) + 1.4, 2.8)
    axes = fig.subplots(1, len(deal.tranches), sharey=True, squeeze=False)[0]
    palette = colormaps["viridis"]
    for k, (ax, tranche) in enumerate(zip(axes, deal.tranches, strict=True)):
        for j, cpr in enumerate(cprs):
            by_cdr = {p.scenario.cdr: p.tranches[k].loss_rate for p in projections if p.scenario.cpr == cpr}
            ax.plot(
                [100 * cdr for cdr in cdrs],
                [100 * by_cdr[cdr] for cdr in cdrs],
                marker="o",
                markersize=3,
                color=palette(0.85 * (1 - j / max(len(cprs) - 1, 1))),
                label=f"{cpr:.0%}",
            )
        ax.set_title(tranche.name, fontsize=9)
        ax.set_xlabel(t("grid.axis.cdr") + " (%)", fontsize=8)
        ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel(t("grid.axis.loss"), fontsize=8)
    axes[-1].legend(title=t("grid.legend"), fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.03, 1))
    return fig


def grid_chart(deal: Deal, projections: Sequence[Projection], lang: str = "en") -> str:
    """The stress grid's chart as base64 PNG."""
    return png(grid_figure(deal, projections, words(lang)), dpi=110)


def _grid_context(deal: Deal, projections: Sequence[Projection], base: Scenario, lang: str) -> dict[str, Any]:
    """What the stress grid's page and its body show: the chart, its table's columns and rows, and the sentence
    saying what the grid is."""
    t = words(lang)
    return {
        "deal": deal,
        "t": t,
        "lang": LANGUAGES[lang],
        "chart": grid_chart(deal, projections, lang),
        "columns": [
            t("grid.cdr"),
            t("grid.cpr"),
            *(t(f"grid.{k}", tranche=x.name) for x in deal.tranches for k in ("loss", "wal")),
        ],
        "rows": grid_rows(projections),
        "intro": t(
            "grid.intro",
            cdr=f"{base.cdr:.2%}",
            recovery=f"{base.recovery_rate:.2%}",
            lag=base.recovery_lag,
        ),
        "page_numbers": page_numbers(t("investor.page")),
    }


def render_grid_html(deal: Deal, projections: Sequence[Projection], base: Scenario, lang: str = "en") -> str:
    """The stress grid as one self-contained page: what it is, the chart, and the table of its figures."""
    return _ENV.get_template("grid.html").render(**_grid_context(deal, projections, base, lang))


def render_grid_body(deal: Deal, projections: Sequence[Projection], base: Scenario, lang: str = "en") -> str:
    """The stress grid's sentence, chart and table without the page around them, for a page of the console."""
    return _ENV.get_template("grid_body.html").render(**_grid_context(deal, projections, base, lang))
