"""`openice serve` and `openice api-key ...`: start the service, and bootstrap the first operator key."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from openice.access.keys import ApiKeys
from openice.api.settings import Settings
from openice.cli.common import Commands, console, fail
from openice.errors import OpeniceError
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from openice.tenancy import PLATFORM

key_app = Commands(help="API keys: create (shown once), revoke.", no_args_is_help=True)
Db = Annotated[str | None, typer.Option("--db", help="Database URL (default $OPENICE_DB or sqlite:///openice.db)")]


def serve(
    db: Db = None,
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
    config: Annotated[str | None, typer.Option(help="TOML file with an [api] table")] = None,
) -> None:
    """Start the HTTP service (OpenAPI at /openapi.json, docs at /docs, all served locally)."""
    import uvicorn

    from openice.decisioning.pii import PiiVault
    from openice.decisioning.repository import bind_pii_key

    settings = Settings.load(config, db=db, host=host, port=port, workers=workers)
    engine = make_engine(settings.db)
    migrate(engine)
    try:
        bind_pii_key(engine, PiiVault.from_env_if_set())
    except OpeniceError as error:
        fail(error)
    os.environ.update({"OPENICE_DB": settings.db, **({"OPENICE_CONFIG": config} if config else {})})
    uvicorn.run(
        "openice.api.app:from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=10,
        log_level="warning",
        access_log=False,
    )  # no access lines at this log level anyway; skip building them


@key_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="operator | institution | borrower | collections")],
    tenant: Annotated[str, typer.Option(help="'platform', an institution code or a borrower id")] = PLATFORM,
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
