"""The `openice` command: one sub-command group per lifecycle stage."""

from __future__ import annotations

import typer

from openice import __version__
from openice.analytics.cli import analytics_app
from openice.api.cli import register as register_api
from openice.collections.cli import collections_app
from openice.decisioning.cli import register_cli as register_decisioning
from openice.scoring.cli import model_app
from openice.servicing.cli import register as register_servicing
from openice.simulation.cli import register as register_simulation

app = typer.Typer(
    help="openice: an open Intelligence Credit Engine.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
register_servicing(app)  # schedule, db, eod, repay, prepay, reverse, loan, products
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
