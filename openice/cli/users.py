"""`openice user ...`: the people who sign in to the web front-ends (API keys stay for machines)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from openice.access.users import LOCALES, Users
from openice.cli.common import Commands, DbOption, console
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

user_app = Commands(help="Users of the web front-ends: create, list, disable.", no_args_is_help=True)


def _users(db: str | None) -> Users:
    engine = make_engine(db, create=False)
    migrate(engine)
    return Users(EngineUnits(engine))


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
