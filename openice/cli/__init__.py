"""The `openice` command: one sub-command group per lifecycle stage."""

from __future__ import annotations

import typer

from openice import __version__
from openice.cli.analytics import analytics_app
from openice.cli.api import register as register_api
from openice.cli.booking import register as register_booking
from openice.cli.collections import collections_app
from openice.cli.common import DEBUG_ENV, EXIT_CODES, Boundary, Commands
from openice.cli.decisioning import register_cli as register_decisioning
from openice.cli.funding import abs_app
from openice.cli.gateway import register as register_gateway
from openice.cli.hybrid import register as register_hybrid
from openice.cli.scoring import model_app
from openice.cli.servicing import register as register_servicing
from openice.cli.settlement import settlement_app
from openice.cli.simulation import register as register_simulation
from openice.cli.tenants import register as register_tenants
from openice.cli.users import user_app

app = Commands(
    cls=Boundary,
    help=f"openice: an open Intelligence Credit Engine. {EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
register_servicing(app)  # schedule, eod, db, repay, prepay, reverse, write-off, recover, loan, products
app.add_typer(model_app, name="model")
register_decisioning(app)  # decision, match, pii
register_booking(app)  # examples, product, originate, payoff
app.add_typer(analytics_app)  # metrics, report
app.add_typer(collections_app, name="collections")
app.add_typer(settlement_app, name="settlement")
app.add_typer(abs_app, name="abs")
register_simulation(app)  # demo, whatif
register_api(app)  # serve, api-key
register_gateway(app)  # relay, institution-sim, gateway
register_hybrid(app)  # hybrid pull, push, public-key
app.add_typer(user_app, name="user")
register_tenants(app)  # tenant onboard


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"openice {__version__}")
        raise typer.Exit()


@app.callback(epilog=EXIT_CODES)
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar=DEBUG_ENV, help=f"Show the traceback of a failure (also {DEBUG_ENV}=1)."
    ),
) -> None:
    """openice: applications, scoring, fund matching, servicing and disclosure metrics in one engine."""
