"""How a credit decision, its line and a drawdown are shown, by `originate`, `decision apply` and `match drawdown`
alike: lines of text for people, and for `--json` the same facts with money as decimal strings of major units."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import typer

from openice.money import format_money, from_minor
from openice.servicing.products import PPM


def _rate(ppm: int) -> str:
    return str(Decimal(ppm) / PPM)


def shape_line(line_id: str | None, line: dict[str, Any] | None, currency: str) -> dict[str, Any] | None:
    """A credit line granted by a decision (None when none was)."""
    if line_id is None or line is None:
        return None
    return {
        "id": line_id,
        "amount": str(from_minor(line["amount"], currency)),
        "rate": _rate(line["rate_ppm"]),
        "apr": _rate(line["apr_ppm"]),
        "max_tenor": line["max_tenor"],
        "expiry": line["expiry"],
    }


def shape_drawdown(drawn: dict[str, Any], amount: int, tenor: int, currency: str) -> dict[str, Any]:
    """A drawdown as matching answered it, with the amount and tenor it was asked for."""
    return {
        "id": drawn["drawdown_id"],
        "status": drawn["status"],
        "institution": drawn.get("institution"),
        "amount": str(from_minor(amount, currency)),
        "tenor": tenor,
        "reasons": drawn["reasons"],
    }


def _money(text: str, currency: str) -> str:
    return f"{Decimal(text):,} {currency}"


def print_decision(r: dict[str, Any]) -> None:
    """A shaped decision: its outcome, grade and reasons, and the line it grants."""
    scored = f", grade {r['grade']}, PD {r['pd']:.2%}, score {r['score']:.0f}" if r["grade"] else ""
    typer.echo(f"decision {r['decision_id']}: {r['outcome']}{scored}")
    for reason in r["reasons"]:
        typer.echo(f"  {reason}")
    line = r["line"]
    if line:
        typer.echo(
            f"credit line {line['id']}: {_money(line['amount'], r['currency'])} at {Decimal(line['rate']):.2%} a year "
            f"(APR {Decimal(line['apr']):.2%}), up to {line['max_tenor']} months, until {line['expiry']}"
        )


# The stored result's affordability facts that are money (minor units).
AFFORDABILITY_MONEY = ("income_monthly", "existing_debt_monthly", "max_affordable_payment", "affordable_amount")


def _facts(values: dict[str, Any], money: Iterable[str], currency: str) -> str:
    """Named values on one line, the amounts among them (minor units) in major units with `currency`; a value not
    given (None) is left out rather than printed as "None"."""
    amounts = set(money)
    return ", ".join(
        f"{name.replace('_', ' ')} {format_money(v, currency) if name in amounts else v}"
        for name, v in values.items()
        if v is not None
    )


def print_stored_decision(record: dict[str, Any], currency: str) -> None:
    """A stored decision as a person reads it: every amount in major units with `currency`, its product's."""
    from openice.decisioning.domain import MONEY_FIELDS
    from openice.decisioning.policy import POLICY_MONEY
    from openice.decisioning.reason_words import explained

    result, inputs = record["result"], record["inputs"]
    print_decision({**record, "decision_id": record["id"], "line": None, "currency": currency})
    application = {k: v for k, v in inputs["application"].items() if k != "bureau"}
    typer.echo(f"decided on {record['decided_on']} for borrower {record['borrower_id']}, fraud {record['fraud']}")
    typer.echo(f"application {record['application_id']}: {_facts(application, MONEY_FIELDS, currency)}")
    typer.echo(f"bureau: {_facts(inputs['application'].get('bureau', {}), (), currency)}")
    for reason in explained(result["score_reasons"], inputs, currency):
        typer.echo(f"  model: {reason['code']}: {reason['text']}")
    if result["affordability"]:
        typer.echo(f"affordability: {_facts(result['affordability'], AFFORDABILITY_MONEY, currency)}")
    line = result["line"]
    if line:
        typer.echo(
            f"line granted: {format_money(line['amount'], currency)} at {Decimal(_rate(line['rate_ppm'])):.2%} a "
            f"year (APR {Decimal(_rate(line['apr_ppm'])):.2%}), up to {line['max_tenor']} months, until "
            f"{line['expiry']}"
        )
    policy = {k: v for k, v in record["policy"].items() if k in POLICY_MONEY}
    typer.echo(f"policy's amounts: {_facts(policy, POLICY_MONEY, currency)}")
    typer.echo(f"rules fired: {', '.join(record['rules_fired']) or 'none'}")
    typer.echo(
        f"hashes: model {record['model_hash']}, anomaly model {record['anomaly_model_hash']}, "
        f"policy {record['policy_hash']}, inputs {record['input_hash']}"
    )


def print_drawdown(drawn: dict[str, Any], loan_id: int | None, currency: str) -> None:
    """A shaped drawdown: the loan booked and its funder, the institution holding the offer, or why none funds it."""
    if drawn["status"] == "funded":
        typer.echo(
            f"loan {loan_id}: {_money(drawn['amount'], currency)} over {drawn['tenor']} months, funded by "
            f"{drawn['institution']} (drawdown {drawn['id']}); `openice loan {loan_id}` shows it"
        )
    elif drawn["status"] == "offered":
        typer.echo(f"drawdown {drawn['id']}: offered to {drawn['institution']}, which decides by hand")
    else:
        typer.echo(f"drawdown {drawn['id']}: {drawn['status']}")
        for institution, why in drawn["reasons"].items():
            typer.echo(f"  {institution}: {'; '.join(map(str, why))}")


def shape_run(result: dict[str, Any], currency: str) -> dict[str, Any]:
    """A batch matching run beside the greedy waterfall, its money (`RUN_MONEY`, whole minor units) as decimal
    strings of major units."""
    from openice.matching.service import RUN_MONEY  # numpy and pandas, loaded by the command that ran the batch

    shaped = {name: value for name, value in result.items() if name != "assignment"}
    for name in RUN_MONEY:
        value = shaped.get(name)
        if value is not None:
            shaped[name] = str(from_minor(value, currency))
    return {**shaped, "currency": currency}


def print_run(r: dict[str, Any]) -> None:
    """A shaped matching run: the assignment's objective against the greedy waterfall's, and how it got there."""
    currency = r["currency"]
    typer.echo(
        f"matching run {r['run_id']}: objective {_money(r['objective'], currency)} against the greedy waterfall's "
        f"{_money(r['greedy_objective'], currency)}, a gain of {_money(r['gain'], currency)}"
    )
    typer.echo(
        f"  funded {r['funded']} drawdowns (greedy {r['greedy_funded']}); expected margin "
        f"{_money(r['margin'], currency)} (greedy {_money(r['greedy_margin'], currency)})"
    )
    if r.get("lp_bound") is not None:
        typer.echo(f"  no assignment can reach more than {_money(r['lp_bound'], currency)} (the LP bound)")
    if Decimal(r["shortfall"]):
        typer.echo(f"  minimum volumes missed by {_money(r['shortfall'], currency)} in all")
    typer.echo(f"  solved in {r['seconds']:.2f} s (greedy {r['greedy_seconds']:.2f} s)")
