"""`openice tenant onboard`: a new institution on the platform in one step (`openice.tenants`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openice.access.users import RESET_LINK_LIFE
from openice.api.settings import Settings
from openice.cli.common import Commands, DbOption, JsonOption, print_json, read_document
from openice.storage.engine import make_engine, migrate

tenant_app = Commands(help="Tenants of the platform: onboard an institution in one step.", no_args_is_help=True)


@tenant_app.command("onboard")
def onboard(
    institution: Annotated[str, typer.Option("--institution", help="The new institution's code")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            help="JSON or YAML definition: credit box, quotas, pricing, business model, kind, and the currency its "
            "amounts are in (needed before the book has a product) (docs/cli.md)",
        ),
    ],
    admin_email: Annotated[str, typer.Option("--admin-email", help="Its portal administrator's e-mail (sign-in)")],
    decides: Annotated[
        str | None,
        typer.Option(
            "--decides",
            help="auto (its credit box, at once) | webhook (its system, at --webhook-url) | portal (a person); "
            "default: the file's acceptance",
        ),
    ] = None,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="Where its events are POSTed")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The site's address (default: http://HOST:PORT of the settings)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an institution with its credit box and quotas, its portal administrator, an API key and its webhook
    signing secret, in one transaction. The key, the secret and the administrator's set-password link are printed
    once; an institution that exists already is refused and nothing changes."""
    from openice.decisioning.pii import PiiVault
    from openice.errors import ValidationError
    from openice.tenants import Decides, definition
    from openice.tenants import onboard as create_tenant
    from openice.web.sign_in import reset_path  # the web stack, when it runs

    try:
        how = None if decides is None else Decides(decides)
    except ValueError:
        choices = ", ".join(d.value for d in Decides)
        raise ValidationError(f"{decides!r} is not one of {choices}", field="decides") from None
    made = definition(read_document(file, "file"), institution, how, webhook_url)
    settings = Settings.load(db=db)
    engine = make_engine(settings.db, create=False)
    migrate(engine)
    done = create_tenant(engine, made, admin_email, PiiVault.from_env)
    site = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    link = site + reset_path("institution", done.reset_token)
    if as_json:
        print_json(
            {
                "institution": made.code,
                "acceptance": made.acceptance,
                "definition": done.institution.model_dump(mode="json"),
                "admin": {"id": done.admin["id"], "username": done.admin["username"], "set_password_link": link},
                "api_key": {"id": done.key_id, "secret": done.key_secret},
                "webhook_secret": done.webhook_secret,
            }
        )
        return
    terms = done.institution
    typer.echo(
        f"onboarded {made.code} ({made.name}), decides {made.acceptance}, quotas {terms.daily_quota} a day and "
        f"{terms.monthly_quota} a month in {terms.currency}; shown once, hand them over:"
    )
    hours = int(RESET_LINK_LIFE.total_seconds() // 3600)
    typer.echo(f"portal administrator {done.admin['username']}: set a password (single use, {hours} hours): {link}")
    typer.echo(f"API key {done.key_id}: {done.key_secret}")
    typer.echo(f"webhook signing secret: {done.webhook_secret}")


def register(app: typer.Typer) -> None:
    app.add_typer(tenant_app, name="tenant")
