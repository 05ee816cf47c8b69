"""The pre-loan investigation report an institution receives with an offer: JSON, HTML and PDF.

Personal data appears masked only; the report carries everything the institution needs to decide and the
model and policy versions that produced the assessment. It is stored as built (money in integer minor units, as
every stored figure is) and served (`served`: the API, the webhook's body, the HTML and PDF) with its money as
decimal strings of major units and its `currency`, contract version `VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openice.decisioning.domain import MONEY_FIELDS
from openice.decisioning.identity import mask_id, mask_mobile, mask_name
from openice.decisioning.reason_words import explained
from openice.money import from_minor

# The served report's contract: 2 gives money as decimal strings of major units with `currency`; 1 (no `version`,
# before it) gave integer minor units. An institution's webhook reads it to know which it has.
VERSION = 2
# Where the report holds money, section by section; the affordability facts of a decision declined before its line
# was sized are empty, so each name is converted where present.
MONEY_PATHS: dict[str, tuple[str, ...]] = {
    "drawdown": ("amount",),
    "recommended": ("line_amount",),
    "application": MONEY_FIELDS,
    "affordability": ("income_monthly", "existing_debt_monthly", "max_affordable_payment", "affordable_amount"),
}

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_ENV.filters["money"] = lambda amount, currency: f"{Decimal(amount):,} {currency}"


def build_report(
    *,
    applicant: dict[str, Any],
    decision: dict[str, Any],
    line: dict[str, Any],
    drawdown: dict[str, Any],
    institution: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the report from plain records; `applicant` holds decrypted identity, masked here."""
    result = decision["result"]
    return {
        "institution": institution,
        "applicant": {
            "name": mask_name(applicant["name"]),
            "national_id": mask_id(applicant["national_id"]),
            "mobile": mask_mobile(applicant["mobile"]),
            "age": decision["inputs"]["age"],
            "province": applicant["province"],
            "city": applicant["city"],
        },
        "identity_and_fraud": {
            "verdict": result["fraud"],
            "anomaly_score": round(result["anomaly"], 4),
            "rules": [
                {"rule": r["rule"], "fired": r["fired"], "action": r["action"], "reason": r["reason"]}
                for r in result["rules"]
            ],
        },
        "credit": {
            "pd": round(result["pd"], 6),
            "score": result["score"],
            "grade": result["grade"],
            "reasons": result["score_reasons"],
        },
        "affordability": result["affordability"],
        "application": {k: v for k, v in decision["inputs"]["application"].items() if k != "bureau"},
        "bureau": decision["inputs"]["application"]["bureau"],
        "recommended": {
            "line_amount": line["amount"],
            "rate": line["rate_ppm"] / 1e6,
            "apr": line["apr_ppm"] / 1e6,
            "effective_annual_rate": line["effective_annual_rate_ppm"] / 1e6,
            "apr_convention": line["apr_convention"],
            "expiry": line["expiry"],
        },
        "drawdown": drawdown,
        "model": {
            "package_hash": decision["model_hash"],
            "anomaly_model_hash": decision["anomaly_model_hash"],
            "policy_hash": decision["policy_hash"],
            "input_hash": decision["input_hash"],
            "decision_id": decision["id"],
            "decided_on": decision["decided_on"],
        },
    }


def inputs_of(report: dict[str, Any]) -> dict[str, Any]:
    """The decision's inputs the report carries, in the shape `decisioning.reason_words.explained` reads."""
    return {"application": {**report["application"], "bureau": report["bureau"]}, "age": report["applicant"]["age"]}


def served(report: dict[str, Any], currency: str, words: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report as an institution reads it, from the stored one: its money as decimal strings of major units in
    `currency` (the drawdown's product's), and its stored score reasons (codes) each with its text, in English
    unless `words` says. A reason about an amount quotes it in major units too."""
    major = {
        section: {
            name: str(from_minor(value, currency)) if name in names and value is not None else value
            for name, value in report[section].items()
        }
        for section, names in MONEY_PATHS.items()
    }
    codes = [r if isinstance(r, str) else r["code"] for r in report["credit"]["reasons"]]
    credit = {**report["credit"], "reasons": explained(codes, inputs_of(report), currency, words)}
    return {"version": VERSION, "currency": currency, **report, **major, "credit": credit}


def render_html(report: dict[str, Any]) -> str:
    """A served report as a page: every amount in major units with its currency."""
    return _ENV.get_template("report.html").render(r=report, money=MONEY_PATHS)


def render_pdf(report: dict[str, Any]) -> bytes:
    """PDF through WeasyPrint; fonts are the system's, nothing is fetched."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=render_html(report), base_url=str(TEMPLATES)).write_pdf()
    return pdf
