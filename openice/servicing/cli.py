"""CLI of the servicing stage: schedules, loans and end of day."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openice.errors import OpeniceError
from openice.money import fmt, parse_rate, to_minor
from openice.servicing.daycount import DayCount
from openice.servicing.products import LoanProduct, RepaymentMethod
from openice.servicing.schedule import build_schedule

console = Console()


def fail(error: OpeniceError) -> None:
    console.print(f"[red]error[/red] {error}")
    raise typer.Exit(2)


def schedule(
    principal: Annotated[str, typer.Option(help="Amount lent, e.g. 10000 or 10000.00")],
    rate: Annotated[str, typer.Option(help="Nominal annual rate, e.g. 12% or 0.12")],
    tenor: Annotated[int, typer.Option(help="Months")],
    method: Annotated[RepaymentMethod, typer.Option()] = RepaymentMethod.EQUAL_INSTALLMENT,
    day_count: Annotated[DayCount, typer.Option("--day-count")] = DayCount.THIRTY_360,
    start: Annotated[str, typer.Option(help="Disbursement date, YYYY-MM-DD")] = "2026-01-15",
    currency: Annotated[str, typer.Option()] = "CNY",
    facilitation_fee: Annotated[str, typer.Option(help="Upfront fee, % of principal")] = "0",
    service_fee: Annotated[str, typer.Option(help="Monthly service fee, % of principal")] = "0",
    apr_cap: Annotated[str | None, typer.Option(help="Refuse a schedule whose APR passes this")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Print the repayment schedule and APR of a loan."""
    try:
        product = LoanProduct(
            code="ADHOC", currency=currency, tenors=(tenor,), method=method,
            nominal_rate=parse_rate(rate, "rate"), day_count=day_count,
            facilitation_fee_rate=parse_rate(facilitation_fee, "facilitation_fee"),
            monthly_service_fee_rate=parse_rate(service_fee, "service_fee"),
            apr_cap=parse_rate(apr_cap, "apr_cap") if apr_cap else None)
        try:
            start_date = date.fromisoformat(start)
        except ValueError:
            raise OpeniceError(f"{start!r} is not a date; write YYYY-MM-DD", field="start") from None
        plan = build_schedule(product, to_minor(principal, currency, "principal"), tenor, start_date)
    except OpeniceError as error:
        fail(error)
    rows = [{"seq": i.seq, "due_date": i.due_date.isoformat(), "principal": str(fmt(i.principal, currency)),
             "interest": fmt(i.interest, currency), "fee": fmt(i.fee, currency), "total": fmt(i.total, currency)}
            for i in plan.installments]
    if as_json:
        out = {"currency": currency, "principal": fmt(plan.principal, currency).replace(",", ""),
               "upfront_fee": fmt(plan.upfront_fee, currency).replace(",", ""), "apr": str(plan.apr),
               "installments": [{k: (v.replace(",", "") if isinstance(v, str) else v) for k, v in r.items()}
                                for r in rows]}
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title=f"{method.value} schedule, {currency} {fmt(plan.principal, currency)} at {rate} "
                        f"over {tenor} months ({day_count.value})")
    for col in ("#", "due date", "principal", "interest", "fee", "total"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["seq"]), r["due_date"], r["principal"], r["interest"], r["fee"], r["total"])
    table.add_row("", "total", fmt(plan.principal, currency), fmt(plan.total_interest, currency),
                  fmt(sum(i.fee for i in plan.installments), currency),
                  fmt(sum(i.total for i in plan.installments), currency), style="bold")
    console.print(table)
    console.print(f"APR (IRR of the borrower's cash flows, fees included): [bold]{plan.apr:.2%}[/bold]")


def register(app: typer.Typer) -> None:
    app.command()(schedule)
