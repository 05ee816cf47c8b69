"""The investor report as a person reads it, in English or Chinese: one self-contained HTML page (Jinja over the
reports' shared page, its chart embedded), the same page printed to PDF with its pages numbered, and the page's body
alone for the console to show. Money in major units with the currency, rates as percentages.

The words are the pages' catalog `web/locales/<locale>/investor.json`, one place for translators (the console shows
the same report); this stage reads the file rather than the pages' code, which sits above it."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from openice.charts import figure, page_numbers, pdf_of, png, report_environment
from openice.errors import ValidationError
from openice.funding.report import InvestorReport
from openice.money import fmt, from_minor

_ENV = report_environment(Path(__file__).parent / "templates")
CATALOGS = Path(__file__).parents[1] / "web" / "locales"
# The report's languages as `--lang` and `?lang=` name them, and the catalog of each.
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
