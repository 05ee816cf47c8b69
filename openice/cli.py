"""The `openice` command: one sub-command group per lifecycle stage."""

from __future__ import annotations

import typer

from openice.analytics.cli import analytics_app
from openice.scoring.cli import model_app
from openice.servicing.cli import register as register_servicing

app = typer.Typer(help="openice: an open Intelligence Credit Engine.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
register_servicing(app)
app.add_typer(model_app, name="model")
app.add_typer(analytics_app)
__import__("openice.decisioning.cli", fromlist=["register_cli"]).register_cli(app)  # decision, match
__import__("openice.simulation.cli", fromlist=["register"]).register(app)  # demo, whatif
__import__("openice.api.cli", fromlist=["register"]).register(app)  # serve, api-key


@app.callback()
def main() -> None:
    """openice: applications, scoring, fund matching, servicing and disclosure metrics in one engine."""

if __name__ == "__main__":
    app()
