"""What every command group shares: the consoles, the database option, dates, rates and amounts as people type them,
and how a command ends when something goes wrong.

Exit codes: 0 done; 2 the command refused what it was given (an option, an argument, a file, the environment or the
state of the book), with one line on stderr naming it; 1 a failure that is not the input's fault (a database that
cannot be reached, a bug), also one line unless `--debug` or `OPENICE_DEBUG=1` asks for the traceback."""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine
from typer.core import TyperCommand, TyperGroup

from openice import money
from openice.errors import OpeniceError, Unavailable, ValidationError
from openice.storage.engine import database_url, make_engine, migrate, schema_behind

console = Console()  # results: stdout
# progress and messages: stderr, so results on stdout stay clean for scripts; a message is never broken across lines
messages = Console(stderr=True, soft_wrap=True)

DEBUG_ENV = "OPENICE_DEBUG"
EXIT_CODES = "Exit codes: 0 done, 2 bad input (one line on stderr names it), 1 a failure."

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: $OPENICE_DB or sqlite:///openice.db)")
]
POLICY_HELP = (
    "Credit policy YAML/JSON, amounts in major units of its currency (default: the built-in one; docs/decisioning.md)"
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (money as decimal strings)")]

_NUMBER = re.compile(r"-\d+(\.\d*)?|-\.\d+")


def existing_database(db: str | None, *, migrated: bool = True) -> Engine:
    """An existing database (a missing SQLite file is refused, not created): brought to the newest schema for a
    command that writes, or, with `migrated=False`, for one that only reads, checked to be at it and left as it is
    (a read never changes the schema)."""
    engine = make_engine(db, create=False)
    if migrated:
        migrate(engine)
    elif (revision := schema_behind(engine)) is not None:
        raise Unavailable(
            f"{database_url(db)} has schema {revision}, not this openice's; upgrade it with "
            f"`openice db init --db {database_url(db)}` first",
            field="--db",
        )
    return engine


def parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a date; write YYYY-MM-DD", field=field) from None


def read_text(path: Path, field: str = "file") -> str:
    """An input file's text; a missing, unreadable or non-UTF-8 one is refused naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror or error}", field=field) from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text", field=field) from None


def read_document(path: Path, field: str = "file") -> Any:
    """An input file as data: JSON when it ends in .json, YAML otherwise; a missing or malformed one is refused
    naming the file."""
    import yaml

    text = read_text(path, field)
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValidationError(
            f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {str(error).splitlines()[0]}",
            field=field,
        ) from None


def parse_rate(text: str, field: str) -> Decimal:
    """A rate or fee as people type it: `12%` or the fraction `0.12`. A bare number above 1 is refused rather than
    read as a multiple (`5` would be 500%): the user most likely meant a percentage."""
    rate = money.parse_rate(text, field)
    if not text.strip().endswith("%") and rate > 1:
        raise ValidationError(f"{text} as a fraction is {rate:.0%}: did you mean {text.strip()}%?", field=field)
    return rate


def parse_amount(text: str, currency: str, field: str) -> int:
    """An amount of money in major units (`1234.56`) as positive minor units."""
    minor = money.to_minor(text, currency, field)
    if minor <= 0:
        raise ValidationError(f"{text} must be a positive amount in {currency}", field=field)
    return minor


def decimal_money(minor: int, currency: str) -> str:
    """Money for JSON: a decimal string in major units, as the API writes it."""
    return str(money.from_minor(minor, currency))


def days_past_due(days: int) -> str:
    """Delinquency as a person reads it: "1 day past due", "31 days past due"."""
    return f"{days} day{'' if days == 1 else 's'} past due"


@contextmanager
def native_output_to_stderr() -> Iterator[None]:
    """What native code prints to the process's standard output while this runs goes to standard error instead, so
    standard output carries the command's result alone: HiGHS prints its banner there when a process first builds a
    solver, before any of its options can silence it."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's buffered standard output, written while it still points at stderr
        os.dup2(saved, 1)
        os.close(saved)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def output_path(path: Path) -> Path:
    """A file to write: its folder is created if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def fail(error: OpeniceError) -> NoReturn:
    """End the command with a domain error: the command (`Command.invoke`) prints it as one line naming the option
    as typed, and exits 2."""
    raise error


@contextmanager
def fields_as(options: dict[str, str]) -> Iterator[None]:
    """Domain errors about a field that the command fills from an option of another name (`tenors` from
    `--tenor`) name that option."""
    try:
        yield
    except OpeniceError as error:
        error.field = options.get(error.field or "", error.field)
        raise


def _as_typed(ctx: typer.Context, field: str | None) -> str | None:
    """The field of a domain error as the user typed it: `value_date` is `--value-date` when the command has that
    option; other fields (an argument, an environment variable, a column) stay as they are."""
    if field is None:
        return None
    for param in ctx.command.params:
        if param.param_type_name != "option":
            continue
        names = {param.name, *(opt.lstrip("-").replace("-", "_") for opt in param.opts)}
        if field in names:
            return max(param.opts, key=len)
    return field


def _say(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


class Command(TyperCommand):
    """A command that reads a negative number as a number (`repay 1 -100`) and ends on a domain error with one line
    on stderr naming the option as typed, exit 2."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        return super().parse_args(ctx, self._numbers_as_arguments(ctx, args))

    def _numbers_as_arguments(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """Options first, then `--` and the positional arguments in their order, when one of them is a negative
        number: the parser would take `-100` for an option."""
        if "--" in args or not any(_NUMBER.fullmatch(a) for a in args):
            return args
        takes_value = {
            opt: not (getattr(p, "is_flag", False) or getattr(p, "count", False))
            for p in self.get_params(ctx)
            if p.param_type_name == "option"
            for opt in (*p.opts, *p.secondary_opts)
        }
        options: list[str] = []
        positional: list[str] = []
        rest = iter(args)
        for arg in rest:
            if arg.startswith("-") and not _NUMBER.fullmatch(arg):
                options.append(arg)
                value = next(rest, None) if "=" not in arg and takes_value.get(arg, False) else None
                if value is not None:
                    options.append(value)
            else:
                positional.append(arg)
        return [*options, "--", *positional]

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except OpeniceError as error:
            where = _as_typed(ctx, error.field)
            _say(f"{where}: {error.message}" if where else error.message)
            raise typer.Exit(2) from None


class Commands(typer.Typer):
    """A command group whose commands are `Command`s."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


class Boundary(TyperGroup):
    """The `openice` group: a usage mistake is one line on stderr (exit 2); an exception that is not a domain error
    is one line saying what to do (exit 1), or its traceback under `--debug` or OPENICE_DEBUG=1."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, BrokenPipeError):  # a closed pipe (`| head`) ends quietly, as Typer does
            raise
        except typer.TyperException as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # prints the help, as Typer itself tells it apart
                raise
            failed: Any = getattr(error, "ctx", None)
            hint = f" (see {failed.command_path} --help)" if failed is not None else ""
            _say((_unconverted(error) or error.format_message()) + hint)
            raise typer.Exit(error.exit_code) from None
        except OpeniceError as error:
            _say(str(error))
            raise typer.Exit(2) from None
        except Exception as error:
            if ctx.params.get("debug"):  # --debug, or OPENICE_DEBUG=1 through the option's envvar
                raise
            _say(_failure(error))
            raise typer.Exit(1) from None


# What a value Typer could not convert should have been, by the converter's error type.
_EXPECTED = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "decimal_parsing": "is not a number",
    "bool_parsing": "is not yes or no",
    "date_parsing": "is not a date; write YYYY-MM-DD",
    "date_from_datetime_parsing": "is not a date; write YYYY-MM-DD",
}


def _unconverted(error: Exception) -> str | None:
    """A value of the wrong type (`--tenor abc`) in the words of the domain's own errors, the option as typed:
    `--tenor: 'abc' is not a whole number`. None for any other usage mistake."""
    import pydantic

    param: Any = getattr(error, "param", None)
    cause = error.__cause__
    if param is None or not isinstance(cause, pydantic.ValidationError):
        return None
    first = cause.errors()[0]
    where = max(param.opts, key=len) if param.param_type_name == "option" else str(param.name).upper()
    expected = _EXPECTED.get(first["type"]) or f"is refused: {first['msg'][:1].lower()}{first['msg'][1:]}"
    return f"{where}: {first['input']!r} {expected}"


def _failure(error: Exception) -> str:
    """What went wrong, in one line, with what to do."""
    from openice.storage.engine import DatabaseUnavailable

    if isinstance(error, DatabaseUnavailable):
        return f"--db: {error}"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (
        f"unexpected {type(error).__name__}{f': {first_line}' if first_line else ''} "
        f"(run again with --debug for the traceback, and report it)"
    )
