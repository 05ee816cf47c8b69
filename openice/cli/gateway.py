"""`openice relay`, `openice institution-sim` and `openice gateway ...`: deliver institution events, run a simulated
institution, and look after signing secrets and dead letters."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openice.cli.common import Commands, DbOption, console, existing_database, read_document
from openice.errors import ValidationError
from openice.storage.uow import EngineUnits

if TYPE_CHECKING:  # the gateway pulls in matching and its numerical libraries: load them only when a command runs
    from openice.matching.gateway import Webhooks

gateway_app = Commands(
    help="The institution gateway: signing secrets, dead letters and their replay.", no_args_is_help=True
)


def _webhooks(db: str | None, migrated: bool = True) -> Webhooks:
    """The gateway of an existing database; the PII key ($OPENICE_PII_KEY) is read only by a command that makes a
    secret, since the secrets are encrypted under it."""
    from openice.decisioning.pii import PiiVault
    from openice.matching.gateway import Webhooks

    return Webhooks(EngineUnits(existing_database(db, migrated=migrated)), PiiVault.from_env)


@gateway_app.command("secret")
def secret(
    code: Annotated[str, typer.Argument(help="The institution's code")],
    overlap_hours: Annotated[
        float, typer.Option("--overlap-hours", help="How long the secret it replaces stays valid")
    ] = 24.0,  # matching.gateway.SECRET_OVERLAP_HOURS, written out: `openice --help` does not load matching
    db: DbOption = None,
) -> None:
    """Make the institution's webhook signing secret, or rotate it; printed once, to hand to the institution. Needs the
    PII key ($OPENICE_PII_KEY): the secret is stored encrypted under it."""
    made = _webhooks(db).rotate_secret(code, overlap_hours * 3600, time.time())
    console.print(f"signing secret for {code} (shown once; the previous one stays valid {overlap_hours:g} h):")
    typer.echo(made)


@gateway_app.command("dead-letters")
def dead_letters(
    every: Annotated[bool, typer.Option("--all", help="Replayed ones too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout")] = False,
    db: DbOption = None,
) -> None:
    """Deliveries that ran out of attempts, oldest first."""
    letters = _webhooks(db, migrated=False).dead_letters(pending_only=not every)
    if as_json:
        typer.echo(json.dumps(letters))
        return
    for d in letters:
        typer.echo(
            f"{d['id']}\t{d['institution_code']}\t{d['event_type']}\t{d['subject']}\t{d['attempts']} attempts\t"
            f"{d['last_error']}\t{'replayed ' + d['replayed_at'] if d['replayed_at'] else 'waiting'}"
        )


@gateway_app.command("replay")
def replay(
    dead_letter_id: Annotated[int, typer.Argument(help="The dead letter's id (see `openice gateway dead-letters`)")],
    db: DbOption = None,
) -> None:
    """Queue a dead letter's delivery again, under its idempotency key: the relay sends it from a first attempt."""
    delivery = _webhooks(db).replay(dead_letter_id, time.time())
    console.print(f"dead letter {dead_letter_id}: delivery {delivery} is queued again")


def relay(
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option(help="Deliveries in flight at once", min=1)] = 64,
    lease_seconds: Annotated[
        float, typer.Option(help="How long a delivery stays with this relay before another may send it", min=1)
    ] = 60.0,
) -> None:
    """Deliver institution events (offers, loan events) to the institutions' webhooks until SIGINT or SIGTERM;
    then finish the requests in flight and stop. Needs the PII key ($OPENICE_PII_KEY): answers re-route drawdowns."""
    from openice.decisioning.pii import PiiVault
    from openice.relay import Relay

    worker = Relay(existing_database(db), PiiVault.from_env(), concurrency=concurrency, lease_seconds=lease_seconds)

    async def until_stopped() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"openice relay delivering ({concurrency} at once); Ctrl+C stops it", err=True)
        await worker.run(stop)

    asyncio.run(until_stopped())
    typer.echo("openice relay stopped", err=True)


def institution_sim(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 9100,
    secret: Annotated[
        str, typer.Option(envvar="OPENICE_SIM_SECRET", help="The signing secret (`openice gateway secret CODE`)")
    ] = "",
    box: Annotated[
        Path | None, typer.Option(help="JSON or YAML credit box it decides by (default: accepts all)")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Median time to answer", min=0)] = 50.0,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 503", min=0, max=1)] = 0.0,
    down_seconds: Annotated[
        float, typer.Option(help="Answer 503 to everything for this long after start", min=0)
    ] = 0.0,
    later: Annotated[
        bool, typer.Option("--later", help="Take offers without answering (answer through the API)")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the latency and errors")] = 0,
) -> None:
    """A reference institution on 127.0.0.1: POST /webhook checks the signature, takes each delivery once by its
    Idempotency-Key and answers offers by its credit box; GET /stats counts what it received."""
    import uvicorn

    from openice.decisioning.domain import parse
    from openice.matching.institutions import CreditBox
    from openice.simulation.institution import SimulatedInstitution

    if not secret:
        raise ValidationError("give the institution's signing secret (or set OPENICE_SIM_SECRET)", field="--secret")
    sim = SimulatedInstitution(
        secret=secret,
        box=parse(CreditBox, read_document(box, "--box")) if box else CreditBox(),
        latency_ms=latency_ms,
        error_rate=error_rate,
        answer=not later,
        seed=seed,
    )
    sim.down_for(down_seconds)
    typer.echo(f"institution simulator on http://127.0.0.1:{port}/webhook; Ctrl+C stops it", err=True)
    uvicorn.run(sim.app(), host="127.0.0.1", port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)
    app.command("institution-sim")(institution_sim)
    app.add_typer(gateway_app, name="gateway")
