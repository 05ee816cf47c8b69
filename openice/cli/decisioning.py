"""CLI of the decisioning and matching stages: `openice decision ...` and `openice match ...`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openice.cli.common import (
    POLICY_HELP,
    Commands,
    JsonOption,
    console,
    messages,
    native_output_to_stderr,
    output_path,
    parse_amount,
    print_json,
    read_document,
)
from openice.cli.outcomes import (
    print_decision,
    print_drawdown,
    print_run,
    print_stored_decision,
    shape_drawdown,
    shape_line,
    shape_run,
)
from openice.errors import ValidationError
from openice.idempotency import cli_key
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits

if TYPE_CHECKING:  # the services (pydantic, numpy, the anomaly model) load when a command runs
    from sqlalchemy import Engine

    from openice.decisioning.pii import PiiVault
    from openice.decisioning.policy import Policy
    from openice.decisioning.service import Decisioning
    from openice.matching.service import Matching
    from openice.scoring.loaded_model import Scorer

decision_app = Commands(help="Borrowers, applications and stored decisions.", no_args_is_help=True)
match_app = Commands(
    help="Institutions, drawdown routing, investigation reports, batch matching.", no_args_is_help=True
)

Db = Annotated[str | None, typer.Option("--db", help="Database URL (default $OPENICE_DB or sqlite:///openice.db)")]
Model = Annotated[
    Path | None, typer.Option("--model", envvar="OPENICE_MODEL", help="Model package or registry directory")
]


def _print(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def lending_engine(db: str | None) -> tuple[Engine, PiiVault]:
    """The database with the PII key from OPENICE_PII_KEY bound to it: a key other than the one the stored data was
    encrypted under is refused here, before anything is read or written."""
    from openice.decisioning.pii import PiiVault
    from openice.decisioning.repository import bind_pii_key

    engine, vault = make_engine(db, create=False), PiiVault.from_env()
    bind_pii_key(engine, vault)
    return engine, vault


def load_scorer(model: Path | None) -> Scorer | None:
    from openice.scoring.loaded_model import Scorer

    return Scorer.load(model) if model is not None else None


def load_policy(policy: Path | None) -> Policy | None:
    from openice.decisioning.policy import Policy

    return Policy.from_typed(read_document(policy, "--policy")) if policy is not None else None


def _decisioning(db: str | None, model: Path | None, policy: Path | None = None) -> Decisioning:
    from openice.decisioning.service import Decisioning

    scorer = load_scorer(model)
    engine, vault = lending_engine(db)
    return Decisioning(EngineUnits(engine), scorer, vault, load_policy(policy))


def keygen() -> None:
    """Print a new PII master key for OPENICE_PII_KEY (keep it in your secret store, never in the database):
    `export OPENICE_PII_KEY=$(openice pii keygen)`."""
    from openice.decisioning.pii import new_key

    print(new_key())


@decision_app.command()
def register(file: Path, db: Db = None) -> None:
    """Register a borrower from a JSON/YAML file (name, national_id, mobile, date_of_birth, province, city,
    device_id)."""
    _print(_decisioning(db, None).register(read_document(file)))


@decision_app.command()
def apply(
    borrower_id: str,
    file: Path,
    db: Db = None,
    model: Model = None,
    policy: Annotated[
        Path | None,
        typer.Option(help=POLICY_HELP),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Assess an application from a JSON/YAML file and store the decision (and the line, when approved).

    Its money is in major units with the product's currency (`"requested_amount": "30000.00"`, `"currency":
    "CNY"`), as the API takes it: docs/cli.md, "Application"."""
    from openice.decisioning.domain import TypedApplication, parse
    from openice.decisioning.service import Decisioning

    typed = parse(TypedApplication, read_document(file))
    engine, vault = lending_engine(db)
    decisioning = Decisioning(EngineUnits(engine), load_scorer(model), vault, load_policy(policy))
    decided = decisioning.apply(borrower_id, decisioning.in_minor(typed))
    shaped = {
        **{k: decided[k] for k in ("decision_id", "application_id", "outcome", "reasons", "grade", "pd", "score")},
        "currency": typed.currency,
        "line": shape_line(decided["line_id"], decided["line"], typed.currency),
    }
    if as_json:
        print_json(shaped)
    else:
        print_decision(shaped)


@decision_app.command()
def show(decision_id: str, db: Db = None, as_json: JsonOption = False) -> None:
    """The stored decision: outcome, reasons, the model's reasons in words, inputs, result, rules fired and hashes,
    its money in major units with its product's currency. `--json` gives the record as stored and hashed, its money
    in integer minor units (said by `"money_unit": "minor"`, with the `currency`)."""
    decisioning = _decisioning(db, None)
    record = decisioning.decision(decision_id)
    currency = decisioning.product_currency(record["inputs"]["application"]["product_code"])
    if as_json:
        print_json({**record, "money_unit": "minor", "currency": currency})
    else:
        print_stored_decision(record, currency)


@decision_app.command()
def reproduce(decision_id: str, db: Db = None, model: Model = None) -> None:
    """Recompute a stored decision with the same model package and say whether it matches."""
    result = _decisioning(db, model).reproduce(decision_id)
    console.print(f"reproduced: {'[green]yes[/green]' if result['reproduced'] else '[red]no[/red]'}")
    if not result["reproduced"]:
        _print({"stored": result["stored"], "recomputed": result["recomputed"]})
        raise typer.Exit(1)


@decision_app.command()
def blacklist(kind: str, value: str, reason: Annotated[str, typer.Option()], db: Db = None) -> None:
    """List a national_id, mobile or device; applications using it are rejected."""
    _decisioning(db, None).blacklist(kind, value, reason)


def _matching(db: str | None) -> Matching:
    from openice.matching.service import Matching

    engine, vault = lending_engine(db)
    return Matching(EngineUnits(engine), vault)


@match_app.command()
def institutions(file: Path, db: Db = None) -> None:
    """Add or update institutions from a JSON/YAML file, money typed in major units of each one's `currency` (the
    book's when left out; needed before the book has a product) and an optional `kind` (docs/cli.md)."""
    from openice.matching.institutions import load_institutions

    matching = _matching(db)
    book = matching.terms_currency()
    loaded = [typed.in_minor(book) for typed in load_institutions(file)]
    matching.register_institutions(loaded)
    messages.print(f"{len(loaded)} institution(s): {', '.join(i.code for i in loaded)}")


@match_app.command()
def drawdown(
    line_id: str,
    amount: Annotated[str, typer.Argument(help="In major units of the line's currency, e.g. 20000.00")],
    tenor: int,
    key: Annotated[str, typer.Option(help="Idempotency key", callback=cli_key)],
    ranking: Annotated[str, typer.Option(help="margin | priority | price")] = "margin",
    db: Db = None,
    as_json: JsonOption = False,
) -> None:
    """Draw AMOUNT (major units of the line's currency) over TENOR months on a credit line: route to a funder, send
    offers, originate."""
    matching = _matching(db)
    currency = matching.line_currency(line_id)
    minor = parse_amount(amount, currency, "amount")
    drawn = matching.drawdown(line_id, minor, tenor, key, ranking)
    shaped = shape_drawdown(drawn, minor, tenor, currency)
    if as_json:
        print_json({**shaped, "currency": currency, "loan_id": drawn.get("loan_id"), "offers": drawn["offers"]})
    else:
        print_drawdown(shaped, drawn.get("loan_id"), currency)


@match_app.command()
def report(
    offer_id: int,
    out: Path,
    fmt: Annotated[str, typer.Option("--format", help="json | html | pdf")] = "pdf",
    db: Db = None,
) -> None:
    """Write an offer's pre-loan investigation report."""
    body = _matching(db).report(offer_id, fmt)
    if isinstance(body, bytes):
        output_path(out).write_bytes(body)
    else:
        output_path(out).write_text(body if isinstance(body, str) else json.dumps(body, indent=2, default=str))
    messages.print(f"wrote {out}")


@match_app.command()
def optimise(
    file: Path,
    db: Db = None,
    penalty: float = 0.02,
    sample: int = 10_000,
    currency: Annotated[
        str | None, typer.Option(help="The currency of every row's amount and income, when FILE has no currency column")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Assign a batch of drawdowns (CSV or Parquet with amount, tenor, score, pd, age, province, income, dti,
    product, rate and currency; amount and income in major units of the currency, the book's, e.g. 10000.00 CNY)
    with HiGHS; print it beside the greedy waterfall (objective, margin and gain in major units of the book's
    currency) and keep the prices for routing. See docs/decisioning.md."""
    from openice.datasets import read_frame
    from openice.matching.boxes import batch_in_minor

    frame = read_frame(file, "file")
    matching = _matching(db)
    book = matching.run_currency()
    frame = batch_in_minor(frame, book, str(file), currency)
    with native_output_to_stderr():
        result = matching.optimise_batch(frame, penalty, sample)
    run = shape_run(result, book)
    if as_json:
        print_json(run)
    else:
        print_run(run)


pii_app = Commands(help="The key personal data is encrypted with.", no_args_is_help=True)


@pii_app.command()
def rotate(
    db: Db = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Borrowers re-encrypted per transaction")
    ] = 500,
) -> None:
    """Re-encrypt every borrower's personal data under the key in OPENICE_PII_NEW_KEY (the current one is
    OPENICE_PII_KEY). Keys come from the environment, never the command line. Killed or failed, run it again
    with the same keys: it resumes. Keyed hashes keep their key: at the end it prints the hashing key to keep
    as OPENICE_PII_HASH_KEY beside the new OPENICE_PII_KEY, and the old key can then be destroyed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from openice.decisioning.pii import NEW_ENV_KEY, PiiVault, parse_key
    from openice.decisioning.repository import rotate_pii_key

    old = PiiVault.from_env()
    new = old.rekeyed(parse_key(_env(NEW_ENV_KEY), NEW_ENV_KEY))
    with Progress(TextColumn("re-encrypting"), BarColumn(), MofNCompleteColumn(), console=messages) as progress:
        task = progress.add_task("rotate", total=None)
        done = rotate_pii_key(
            make_engine(db, create=False),
            old,
            new,
            batch_size,
            lambda rotated, total: progress.update(task, completed=rotated, total=total),
        )
    messages.print(
        f"re-encrypted {done:,} borrowers under the new key. From now on set OPENICE_PII_KEY to the new key "
        "and OPENICE_PII_HASH_KEY to the hashing key below (printed once; keep it in your secret store):"
    )
    print(new.hash_key_text())


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ValidationError("is not set: put the key to rotate to in the environment", field=name)
    return value


def register_cli(app: typer.Typer) -> None:
    pii_app.command("keygen")(keygen)
    decision_app.command("keygen", hidden=True)(keygen)  # where it was first; `openice pii keygen` is documented
    app.add_typer(decision_app, name="decision")
    app.add_typer(match_app, name="match")
    app.add_typer(pii_app, name="pii")
