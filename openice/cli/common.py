"""What every command group shares: the console, the database option, dates as people type them, and how an error
ends a command (one line on stderr, exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from openice.errors import OpeniceError, ValidationError

console = Console()


DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: $OPENICE_DB or sqlite:///openice.db)")
]


def parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a date; write YYYY-MM-DD", field=field) from None


def fail(error: OpeniceError) -> NoReturn:
    """A domain error as one line on stderr naming the field (not wrapped to the terminal), and exit 2: results
    on stdout stay clean for scripts."""
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Any domain error inside the block ends the command as `fail` does."""
    try:
        yield
    except OpeniceError as error:
        fail(error)
