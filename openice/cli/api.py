"""`openice serve` and `openice api-key ...`: start the service, bootstrap the first operator key, rotate and
revoke keys."""

from __future__ import annotations

import copy
import os
import threading
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from openice import deployment
from openice.access.audit import record_audit
from openice.access.keys import ApiKeys
from openice.api.settings import Settings
from openice.cli.common import Commands, console, existing_database, fail
from openice.errors import OpeniceError, ValidationError
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits, JoinedUnits
from openice.tenancy import PLATFORM

key_app = Commands(help="API keys: create (shown once), rotate (shown once), revoke.", no_args_is_help=True)
Db = Annotated[str | None, typer.Option("--db", help="Database URL (default $OPENICE_DB or sqlite:///openice.db)")]


def serve(
    db: Db = None,
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model package or registry directory that scores applications")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option("--access-log/--no-access-log", help="Log one line per request to stderr (default: off)"),
    ] = None,
    config: Annotated[
        str | None, typer.Option(help="TOML file whose \\[api] table holds the settings (docs/api.md)")
    ] = None,
    relay: Annotated[
        bool,
        typer.Option(
            "--relay/--no-relay", help="Deliver institution events from each worker (--no-relay: `openice relay` does)"
        ),
    ] = True,
) -> None:
    """Start the HTTP service: the API with its docs at /docs, and the front-ends (/console/, /desk/, /portal/, /app/),
    all listed at /.

    Settings come from the defaults, then the \\[api] table of --config (or $OPENICE_CONFIG), then OPENICE_<NAME>
    variables, then these options. When the service answers, one line on stderr gives its URLs."""
    import uvicorn

    from openice.decisioning.pii import PiiVault
    from openice.decisioning.repository import bind_pii_key

    try:
        settings = Settings.load(
            config,
            db=db,
            host=host,
            port=port,
            workers=workers,
            model=model and str(model),
            access_log=access_log,
            relay=relay,
        )
        if settings.model and not Path(settings.model).exists():
            raise ValidationError(f"no model package or registry at {settings.model}", field="--model")
        engine = make_engine(settings.db)
        migrate(engine)
        with engine.connect() as conn:
            deployed = deployment.read(conn)
        # A service that scores applications registers borrowers: it cannot start without the PII key.
        bind_pii_key(engine, PiiVault.from_env() if settings.model else PiiVault.from_env_if_set())
    except OpeniceError as error:
        fail(error)
    os.environ.update(
        {
            "OPENICE_DB": settings.db,
            **({"OPENICE_CONFIG": config} if config else {}),
            **({"OPENICE_MODEL": settings.model} if settings.model else {}),
            "OPENICE_RELAY": "1" if settings.relay else "0",
        }
    )
    threading.Thread(target=_announce, args=(settings, deployed.describe()), daemon=True).start()
    uvicorn.run(
        "openice.web.site:from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=10,
        log_config=_log_config(settings.access_log),
        log_level=None,
        access_log=settings.access_log,
    )


def _log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging with its own start-up chatter down to warnings (the ready line says what matters) and
    the access log at info when it is asked for, on stderr with the rest."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    for name in ("uvicorn", "uvicorn.error"):
        config["loggers"][name]["level"] = "WARNING"
    config["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    return config


def _announce(settings: Settings, mode: str, wait_seconds: float = 300.0) -> None:
    """Once the service answers /health (whatever number of workers started it), say where it is and how it is
    deployed, in one line."""
    base = f"http://{_url_host(settings.host)}:{settings.port}"
    probe = f"http://{_probe_host(settings.host)}:{settings.port}/health"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(probe, timeout=1) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        return
    typer.echo(
        f"openice serving {base} ({mode}; API docs {base}/docs; front-ends {base}/console/ {base}/desk/ {base}/portal/ "
        f"{base}/app/; "
        f"{settings.workers} worker{'s' if settings.workers != 1 else ''}); Ctrl+C stops it",
        err=True,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _probe_host(host: str) -> str:
    """A wildcard address is reached on the loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, _url_host(host))


@key_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="operator | institution | borrower | collections | investor")],
    tenant: Annotated[
        str,
        typer.Option(
            help="'platform', an institution code, a borrower id, or an investor's deal names separated by commas"
        ),
    ] = PLATFORM,
    label: Annotated[str, typer.Option(help="What the key is for")] = "",
    db: Db = None,
) -> None:
    """Create a key and print its secret once (only its SHA-256 is stored)."""
    engine = make_engine(Settings.load(db=db).db)
    migrate(engine)
    try:
        created = ApiKeys(EngineUnits(engine)).create(role, tenant, label)
    except OpeniceError as error:
        fail(error)
    console.print(f"key id {created['id']} ({created['role']} / {created['tenant']}); secret, shown once:")
    print(created["secret"])


@key_app.command("rotate")
def rotate(
    key_id: str,
    overlap_hours: Annotated[
        float | None,
        typer.Option(
            "--overlap-hours", min=0, max=720, help="How long the old secret still works (default: key_overlap_hours)"
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Give a key a new secret, printed once; the old one still works for the overlap. Audited."""
    settings = Settings.load(db=db)
    hours = settings.key_overlap_hours if overlap_hours is None else overlap_hours
    engine = existing_database(settings.db)
    try:
        with engine.begin() as conn:
            done = ApiKeys(JoinedUnits(conn)).rotate(key_id, timedelta(hours=hours))
            detail = {"overlap_hours": hours, "previous_until": done["previous_until"], "by": "cli"}
            record_audit(conn, None, f"cli-{uuid.uuid4().hex}", "api_key.rotated", key_id, detail)
    except OpeniceError as error:
        fail(error)
    until = f"until {done['previous_until']}" if done["previous_until"] else "no longer"
    console.print(f"key id {key_id}: the old secret works {until}; new secret, shown once:")
    print(done["secret"])


@key_app.command("revoke")
def revoke(key_id: str, db: Db = None) -> None:
    """Refuse a key from now on."""
    try:
        ApiKeys(EngineUnits(make_engine(Settings.load(db=db).db, create=False))).revoke(key_id)
    except OpeniceError as error:
        fail(error)
    console.print(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(key_app, name="api-key")
