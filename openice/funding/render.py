"""The investor report as a person reads it: one self-contained HTML page (Jinja, its chart embedded) and the same
page printed to PDF. Money in major units with the currency, rates as percentages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openice.charts import figure, pdf_of, png
from openice.funding.report import InvestorReport
from openice.money import fmt, from_minor

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"]))


def percent(rate: Decimal) -> str:
    return f"{rate * 100:.4f}%"


def balances_chart(r: InvestorReport) -> str:
    """The pool's and each tranche's balance at each month's end, up to the report's month."""
    fig = figure(7.5, 2.6)
    ax = fig.add_subplot()
    periods = [p for p, _, _ in r.history]

    def major(minor: int) -> float:
        return float(from_minor(minor, r.currency))

    ax.plot(periods, [major(pool) for _, pool, _ in r.history], marker="o", color="#333", label="pool")
    for t in r.tranches:
        ax.plot(periods, [major(tranches[t.name]) for _, _, tranches in r.history], marker=".", label=t.name)
    ax.set_xlabel("period")
    ax.set_ylabel(f"balance ({r.currency})")
    ax.set_xticks(periods)
    ax.legend(fontsize=7)
    return png(fig)


def render_html(r: InvestorReport) -> str:
    return _ENV.get_template("investor.html").render(
        r=r, money=lambda minor: fmt(minor, r.currency), percent=percent, chart=balances_chart(r)
    )


def render_pdf(r: InvestorReport) -> bytes:
    return pdf_of(render_html(r))
