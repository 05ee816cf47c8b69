"""CLI of settlement with the institutions: `openice settlement show|paid|outstanding`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from openice.cli.common import Commands, DbOption, JsonOption, console, decimal_money, parse_date, print_json
from openice.errors import ValidationError
from openice.idempotency import cli_key
from openice.money import format_money
from openice.servicing import queries, settlement
from openice.servicing.service import Servicing
from openice.servicing.settlement_documents import outstanding_document, statement_document, statements_csv, totals
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits
from openice.tenancy import PLATFORM, Principal, Role, Scope

settlement_app = Commands(
    help="Settlement with the institutions: statements by day or month, recording one paid, what is still owed.",
    no_args_is_help=True,
)
OPERATOR = Principal("cli", Role.OPERATOR, PLATFORM)


def _period(day: str | None, month: str | None) -> tuple[settlement.Period, date]:
    if (day is None) == (month is None):
        raise ValidationError("give one of --day YYYY-MM-DD or --month YYYY-MM", field="day")
    if day is not None:
        return settlement.Period.DAY, parse_date(day, "day")
    return settlement.Period.MONTH, parse_date(f"{month}-01", "month")


def show(
    institution: Annotated[str, typer.Argument(help="Institution code")],
    day: Annotated[str | None, typer.Option("--day", help="The day's statement, YYYY-MM-DD")] = None,
    month: Annotated[str | None, typer.Option("--month", help="The month's statement, YYYY-MM")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV: one row per statement, one column per line")
    ] = False,
) -> None:
    """An institution's statement for a day or a month (one per currency): each line, what each side owes and the
    net, and whether it was paid."""
    period, on = _period(day, month)
    with make_engine(db, create=False).connect() as conn:
        rows = queries.settlement_statements(Scope(conn, OPERATOR), institution, period, on, on)
    if as_csv:
        typer.echo(statements_csv(rows), nl=False)
        return
    if as_json:
        print_json([statement_document(r) for r in rows])
        return
    if not rows:
        console.print(f"{institution} has nothing to settle for {day or month}")
    for row in rows:
        s = row.statement
        table = Table(title=f"{institution} {s.id} ({s.first} .. {s.last}): {row.status}")
        table.add_column("line")
        table.add_column("side")
        table.add_column("amount", justify="right")
        for line in settlement.LINES:
            if s.lines[line.name]:
                table.add_row(
                    line.name.replace("_", " "), line.side.value, format_money(s.lines[line.name], s.currency)
                )
        for name, value in totals(s.lines).items():
            table.add_row(f"[bold]{name.replace('_', ' ')}[/bold]", "", format_money(value, s.currency))
        console.print(table)


def paid(
    institution: Annotated[str, typer.Argument(help="Institution code")],
    statement: Annotated[str, typer.Argument(help="CURRENCY-YYYY-MM-DD (a day) or CURRENCY-YYYY-MM (a month)")],
    key: Annotated[str, typer.Option("--key", help="Idempotency key: the same key never pays twice", callback=cli_key)],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record STATEMENT as paid: the net leaves clearing for the institution (or comes in from it), once."""
    service = Servicing(EngineUnits(make_engine(db, create=False)))
    done = service.pay_settlement(institution, statement, key)
    currency = done["currency"]
    if as_json:
        print_json(
            done
            | {
                "net": decimal_money(done["net"], currency),
                "lines": {k: decimal_money(v, currency) for k, v in done["lines"].items()},
            }
        )
        return
    console.print(
        f"{institution} {done['statement']} paid on {done['paid_on']} (settlement {done['settlement_id']}, "
        f"{done['loans']} loans): net to the institution {format_money(done['net'], currency)}",
        highlight=False,
        soft_wrap=True,
    )


def outstanding(db: DbOption = None, as_json: JsonOption = False) -> None:
    """What is still owed between the platform and every institution, per currency: every statement not yet paid."""
    with make_engine(db, create=False).connect() as conn:
        rows = queries.settlement_outstanding_everywhere(Scope(conn, OPERATOR))
    if as_json:
        print_json([outstanding_document(r) for r in rows])
        return
    table = Table(title="outstanding with the institutions")
    for column in ("institution", "owed to it", "owed by it", "net (platform pays)"):
        table.add_column(column, justify="left" if column == "institution" else "right")
    for r in rows:
        t = totals(r.lines)
        table.add_row(
            r.institution,
            *(format_money(t[k], r.currency) for k in ("owed_to_institution", "owed_by_institution", "net")),
        )
    console.print(table)


settlement_app.command()(show)
settlement_app.command()(paid)
settlement_app.command()(outstanding)
