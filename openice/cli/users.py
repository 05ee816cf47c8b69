"""`openice user ...`: the people who sign in to the web front-ends (API keys stay for machines)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Annotated

import typer

from openice.access.audit import record_audit
from openice.access.users import LOCALES, RESET_LINK_LIFE, Users
from openice.api.settings import Settings
from openice.cli.common import Commands, DbOption, console, existing_database
from openice.storage.uow import EngineUnits, JoinedUnits

user_app = Commands(help="Users of the web front-ends: create, list, disable, reset a password.", no_args_is_help=True)


def _users(db: str | None) -> Users:
    return Users(EngineUnits(existing_database(db)))


@user_app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Lower-case sign-in name (a borrower's is their mobile number)")],
    role: Annotated[str, typer.Option("--role", help="operator | institution | collections | borrower")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="'platform', an institution code or a borrower id")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The name shown on the pages")] = "",
    locale: Annotated[str, typer.Option("--locale", help=f"One of {', '.join(LOCALES)}")] = "en",
    totp: Annotated[
        bool, typer.Option("--totp", help="Ask for a TOTP code at sign-in (operators, institutions)")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create a user. The password is read from $OPENICE_PASSWORD, or asked for (never an argument: it would stay
    in the shell's history)."""
    password = os.environ.get("OPENICE_PASSWORD") or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    made = _users(db).create(username, password, role, tenant, name, locale, totp, created_by="cli")
    console.print(
        f"created {made['role']} user [bold]{made['username']}[/bold] ({made['id']}) in tenant {made['tenant']}"
    )
    if "totp_uri" in made:
        console.print("add this to an authenticator app (shown once):")
        typer.echo(made["totp_uri"])


@user_app.command("list")
def list_users(
    role: Annotated[str | None, typer.Option("--role", help="Only this role")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout")] = False,
    db: DbOption = None,
) -> None:
    found = _users(db).list(role)
    if as_json:
        typer.echo(json.dumps(found))
        return
    for u in found:
        state = "disabled" if u["disabled_at"] else "active"
        typer.echo(f"{u['id']}\t{u['username']}\t{u['role']}\t{u['tenant'] or '-'}\t{state}")


@user_app.command("disable")
def disable(
    user_id: Annotated[str, typer.Argument(help="The user's id (see `openice user list`)")], db: DbOption = None
) -> None:
    """The user can no longer sign in; their sessions end now."""
    done = _users(db).disable(user_id)
    console.print(f"disabled {done['username']}")


@user_app.command("reset-password")
def reset_password(
    user: Annotated[str, typer.Argument(help="The user's name or id")],
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The site's address (default: http://HOST:PORT of the settings)")
    ] = None,
    db: DbOption = None,
) -> None:
    """Print a one-time link for the user to set a new password (shown once, valid for a day, single use); as the
    console's Users page gives it, and audited."""
    from openice.web.sign_in import reset_path  # the web stack, when it runs

    settings = Settings.load(db=db)
    with existing_database(settings.db).begin() as conn:
        token, person = Users(JoinedUnits(conn)).reset_link(user, "cli")
        detail = {"username": person["username"], "by": "cli"}
        record_audit(conn, None, f"cli-{uuid.uuid4().hex}", "user.reset_link", f"user/{person['id']}", detail)
    site = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    hours = int(RESET_LINK_LIFE.total_seconds() // 3600)
    console.print(f"a password-reset link for {person['username']}, single use, valid {hours} hours (shown once):")
    typer.echo(site + reset_path(person["role"], token))
