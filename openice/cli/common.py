"""What every command group shares: the console, the database option, dates as people type them, and how an error
ends a command."""

from __future__ import annotations

from datetime import date
from typing import Annotated

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


def fail(error: OpeniceError) -> None:
    console.print(f"[red]error[/red] {error}")
    raise typer.Exit(2)
