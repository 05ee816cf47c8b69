"""What every command group shares: the console, the database option, dates as people type them, and how an error
ends a command (one line on stderr, exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

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


def read_document(path: Path, field: str = "file") -> Any:
    """An input file as data: JSON when it ends in .json, YAML otherwise; a missing or malformed one is refused
    naming the file."""
    import json

    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror or error}", field=field) from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text", field=field) from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValidationError(
            f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {str(error).splitlines()[0]}",
            field=field,
        ) from None


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
