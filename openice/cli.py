"""The `openice` command: one sub-command group per lifecycle stage."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from openice import __version__
from openice.analytics.cli import analytics_app
from openice.api.cli import register as register_api
from openice.close_of_day import DayReport, run_until
from openice.collections.cli import collections_app
from openice.decisioning.cli import register_cli as register_decisioning
from openice.errors import OpeniceError, ValidationError
from openice.scoring.cli import model_app
from openice.servicing.cli import DbOption, console, fail, parse_date
from openice.servicing.cli import register as register_servicing
from openice.servicing.service import Servicing
from openice.simulation.cli import register as register_simulation
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits


def eod(
    db: DbOption = None,
    to: Annotated[str | None, typer.Option(help="Close days until the business date is this (default: +1)")] = None,
) -> None:
    """Run end of day: accrue, mark dues, days past due, late fees, payouts, write-offs, collection cases;
    advance the date. It closes servicing's and collections' day together, so it is in neither stage's group."""
    engine = make_engine(db)
    try:
        current = Servicing(EngineUnits(engine)).business_date()
        target = parse_date(to, "to") if to else current + timedelta(days=1)
        if target < current:
            raise ValidationError(f"{target} is before the business date {current}", field="to")
        with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("end of day", total=(target - current).days)
            totals: dict[str, int] = {}

            def on_day(report: DayReport) -> None:
                for step, rows in report.rows.items():
                    totals[step] = totals.get(step, 0) + rows
                progress.update(task, advance=1, description=f"closed {report.day}")

            run_until(engine, target, on_day)
    except OpeniceError as error:
        fail(error)
    table = Table(title=f"end of day {current} .. {target - timedelta(days=1)}")
    table.add_column("step")
    table.add_column("loans / rows", justify="right")
    for step, rows in totals.items():
        table.add_row(step, f"{rows:,}")
    console.print(table)
    console.print(f"business date is now [bold]{target}[/bold]")


app = typer.Typer(
    help="openice: an open Intelligence Credit Engine.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
register_servicing(app)  # schedule, db, repay, prepay, reverse, loan, products
app.command()(eod)
app.add_typer(model_app, name="model")
register_decisioning(app)  # decision, match
app.add_typer(analytics_app)  # metrics, report
app.add_typer(collections_app, name="collections")
register_simulation(app)  # demo, whatif
register_api(app)  # serve, api-key


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"openice {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """openice: applications, scoring, fund matching, servicing and disclosure metrics in one engine."""


if __name__ == "__main__":
    app()
