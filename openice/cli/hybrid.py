"""`openice hybrid ...`: the hybrid deployment, in which an institution decides on its own premises with the model
package and policy it pulls, signed, from the platform, and pushes its decisions' figures and outcomes back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openice.cli.common import Commands, DbOption, JsonOption, console, messages, print_json
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

hybrid_app = Commands(
    help="Hybrid deployment: pull the platform's signed model and policy, push decisions and outcomes back.",
    no_args_is_help=True,
)
PlatformUrl = Annotated[
    str, typer.Option("--platform", envvar="OPENICE_PLATFORM_URL", help="The platform's URL, e.g. https://platform")
]
PlatformKey = Annotated[
    str,
    typer.Option(
        "--key", envvar="OPENICE_PLATFORM_KEY", help="The institution's API key on the platform", show_default=False
    ),
]
Into = Annotated[
    Path, typer.Option("--into", help="Where pulled packages and the policy are installed (a local registry)")
]


@hybrid_app.command()
def pull(
    platform: PlatformUrl,
    key: PlatformKey,
    pin: Annotated[
        str,
        typer.Option(
            "--pin",
            envvar="OPENICE_PLATFORM_PIN",
            help="The platform's public key, as `openice hybrid public-key` prints it",
        ),
    ],
    into: Into = Path("hybrid"),
    version: Annotated[int | None, typer.Option(min=1, help="A registered version (default: the champion)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Download the platform's model package (its champion unless --version) and credit policy, refuse them unless
    signed by the pinned key, and install them: the package as the champion of INTO/registry, the policy as
    INTO/policy.json."""
    from openice.hybrid import Platform
    from openice.hybrid import pull as run_pull

    done = run_pull(Platform(platform, key), pin, into, version)
    if as_json:
        print_json(done)
        return
    console.print(
        f"installed model package {done['package_hash'][:16]} (platform version {done['platform_version']}) as the "
        f"champion of {done['model']}, and the policy {done['policy_hash'][:16]} as {done['policy']}"
    )
    messages.print(
        f"decide with: openice decision apply BORROWER FILE --model {done['model']} --policy {done['policy']}"
    )


@hybrid_app.command()
def push(
    platform: PlatformUrl,
    key: PlatformKey,
    db: DbOption = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(help="CSV of outcomes to push too: reference (the decision id), months_on_book, bad (1/0)"),
    ] = None,
    book: Annotated[
        bool,
        typer.Option("--book/--no-book", help="Also the outcomes of the loans this database books (default: on)"),
    ] = True,
    batch: Annotated[int, typer.Option(min=1, max=500, help="Decisions or outcomes per request")] = 500,
    as_json: JsonOption = False,
) -> None:
    """Push the decisions of this database not pushed yet (their figures and hashes, never the applicant's data),
    then the outcomes not pushed yet: those of --outcomes, and those of the loans this database books at today's
    month on book (bad once past 90 days or written off). Stopped or failed, run it again: it resumes."""
    from openice.hybrid import Platform, read_outcomes
    from openice.hybrid import push as run_push

    given = read_outcomes(outcomes) if outcomes else None
    engine = make_engine(db, create=False)
    migrate(engine)  # a database made before the hybrid tables gets them
    units = EngineUnits(engine)
    done = run_push(Platform(platform, key), units, given, batch, book=book)
    if as_json:
        print_json(done)
        return
    console.print(
        f"pushed {done['decisions']:,} decision(s) and {done['outcomes']:,} outcome(s) "
        f"({done['stored']:,} new to the platform)"
    )


@hybrid_app.command("public-key")
def public_key(
    signing_key: Annotated[
        Path,
        typer.Option(
            "--signing-key",
            envvar="OPENICE_SIGNING_KEY",
            help="The platform's signing key file (made there if there is none)",
        ),
    ],
) -> None:
    """Print the platform's public signing key for institutions to pin (`openice hybrid pull --pin`); the private
    key stays in its file."""
    from openice.scoring.signing import SigningKey

    typer.echo(SigningKey.at(signing_key).public_key)


def register(app: typer.Typer) -> None:
    app.add_typer(hybrid_app, name="hybrid")
