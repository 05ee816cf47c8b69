"""Booking a loan from the command line: example input files, products from a file, `originate` (borrower,
application, drawdown and loan in one command) and the payoff quote. The input files are described in docs/cli.md."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openice.cli.common import POLICY_HELP, Commands, DbOption, console, parse_date, read_document
from openice.cli.decisioning import Model, lending_engine, load_policy, load_scorer
from openice.cli.outcomes import print_decision, print_drawdown, shape_drawdown, shape_line
from openice.errors import ValidationError
from openice.idempotency import cli_key
from openice.money import format_money, from_minor
from openice.servicing.products import LoanProduct, check_tenor_months
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits

EXAMPLES = (
    "product.json",
    "institution.json",
    "borrower.json",
    "application.json",
    "deal.yaml",
    "deal-collections.csv",
    "deal-pool.csv",
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (money as decimal strings) instead of text")]
product_app = Commands(help="Loan products: create one from a file (`openice products` lists them).")


def examples(
    out: Annotated[Path, typer.Option("--out", help="Folder to write them to (created if missing)")] = Path(
        "openice-examples"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files already there")] = False,
) -> None:
    """Copy the example input files out of the package.

    A product, an institution, a borrower and an application: the files the README's first loan is booked from
    (their fields: docs/cli.md); an asset-backed deal with a year of its pool's collections and its loans, which
    `openice abs waterfall` and `openice abs project` take (docs/funding.md)."""
    source = resources.files("openice") / "examples"
    targets = [out / name for name in EXAMPLES]
    there = [str(t) for t in targets if t.exists()]
    if there and not force:
        raise ValidationError(f"{', '.join(there)} already there; pass --force to overwrite", field="--out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, target in zip(EXAMPLES, targets, strict=True):
            with resources.as_file(source / name) as path:
                shutil.copyfile(path, target)
    except OSError as error:
        raise ValidationError(f"cannot write to {out}: {error.strerror or error}", field="--out") from None
    for target in targets:
        typer.echo(target)


@product_app.command("create")
def create_product(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON or YAML: code, currency, tenors, method, nominal_rate and optional fees, grace days, "
            "APR cap... (docs/cli.md; `openice examples` writes product.json)"
        ),
    ],
    db: DbOption = None,
) -> None:
    """Create a loan product from a file. A product never changes once loans use it: a changed one is a new code."""
    data = read_document(file)
    if not isinstance(data, dict):
        raise ValidationError(f"{file} holds no product: expected a mapping of field to value", field="file")
    product = LoanProduct.from_typed(data)
    Servicing(EngineUnits(make_engine(db, create=False))).create_product(product)
    typer.echo(f"product {product.code}: {product.name or product.method.value}, {product.currency}")


def originate(
    borrower: Annotated[
        Path,
        typer.Argument(
            help="JSON or YAML: name, national_id (18-character resident ID), mobile, date_of_birth, province, "
            "city, device_id"
        ),
    ],
    application: Annotated[
        Path,
        typer.Argument(
            help="JSON or YAML: product_code, currency, income_monthly, employment, requested_amount, "
            "requested_tenor, purpose, and optional existing_debt_monthly, existing_debt_balance, bureau (money as "
            'decimal strings in major units, "30000.00", as the API takes it)',
        ),
    ],
    key: Annotated[
        str,
        typer.Option("--key", help="Idempotency key: the same key books once, then answers the same", callback=cli_key),
    ],
    amount: Annotated[
        str | None, typer.Option("--amount", help="Amount to draw, e.g. 20000.00 (default: the amount applied for)")
    ] = None,
    tenor: Annotated[int | None, typer.Option("--tenor", help="Months (default: the tenor applied for)")] = None,
    ranking: Annotated[str, typer.Option(help="How funders are ranked: margin | priority | price")] = "margin",
    model: Model = None,
    policy: Annotated[Path | None, typer.Option(help=POLICY_HELP)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Book a loan from a borrower file and an application file, in one step.

    Registers the borrower, assesses the application with the model (--model or $OPENICE_MODEL), draws on the line
    it grants and books the loan with the institution matching routes it to, all or nothing. Needs the PII key in
    OPENICE_PII_KEY (`export OPENICE_PII_KEY=$(openice pii keygen)` once, then keep it).

    Exit 0 when a loan is booked (or an institution that decides by hand holds the offer); 1 when the application
    is declined or referred or no institution funds it (the decision is kept); 2 for bad input. Fields and
    examples: docs/cli.md."""
    from openice.matching.router import Ranking
    from openice.origination import Request
    from openice.origination import originate as book

    if tenor is not None:
        check_tenor_months(tenor)
    try:
        chosen = Ranking(ranking)
    except ValueError:
        raise ValidationError(f"must be one of {[r.value for r in Ranking]}", field="--ranking") from None
    request = Request(
        read_document(borrower, "borrower"), read_document(application, "application"), amount, tenor, chosen
    )
    scorer = load_scorer(model)
    if scorer is None:
        raise ValidationError(
            "no model to assess the application: pass --model or set OPENICE_MODEL "
            "(`openice model train --dataset lending_club --out model` makes one)",
            field="--model",
        )
    engine, vault = lending_engine(db)
    result = book(engine, request, key, scorer=scorer, vault=vault, policy=load_policy(policy))
    shaped = _shape(result)
    if as_json:
        typer.echo(json.dumps(shaped, indent=2))
    else:
        _print_booking(shaped)
    drawdown = shaped["drawdown"]
    if drawdown is None or drawdown["status"] not in ("funded", "offered"):
        typer.echo(
            "no loan booked: "
            + (f"the application is {shaped['outcome']}" if drawdown is None else "no institution funds it"),
            err=True,
        )
        raise typer.Exit(1)


def _shape(result: dict[str, Any]) -> dict[str, Any]:
    """The stored result as a person or a script reads it: money as decimal strings of major units."""
    cur = result["currency"]
    drawn = result["drawdown"]
    return {
        **{k: result[k] for k in ("borrower_id", "existing_borrower", "decision_id", "outcome", "reasons", "grade")},
        "pd": result["pd"],
        "score": result["score"],
        "currency": cur,
        "line": shape_line(result["line_id"], result["line"], cur),
        "drawdown": None if drawn is None else shape_drawdown(drawn, drawn["amount"], drawn["tenor"], cur),
        "loan_id": result["loan_id"],
    }


def _print_booking(r: dict[str, Any]) -> None:
    typer.echo(f"borrower {r['borrower_id']} ({'already registered' if r['existing_borrower'] else 'registered'})")
    print_decision(r)
    if r["drawdown"] is not None:
        print_drawdown(r["drawdown"], r["loan_id"], r["currency"])


def payoff(
    loan_id: Annotated[int, typer.Argument(help="The loan")],
    on: Annotated[
        str | None, typer.Option("--date", help="Pay on this day, YYYY-MM-DD (default: the business date)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Quote the amount that pays a loan off.

    What is due, the principal not yet due, the interest earned so far in the period and the prepayment fee. A
    later date is quoted as if nothing were paid before it. Pay it with `openice prepay`."""
    day = parse_date(on, "--date") if on else None
    quote = Servicing(EngineUnits(make_engine(db, create=False))).payoff_quote(loan_id, day)
    cur = quote.currency
    parts = {
        "due": quote.due,
        "principal_not_due": quote.principal_not_due,
        "accrued_interest": quote.accrued_interest,
        "prepayment_fee": quote.prepayment_fee,
    }
    if as_json:
        out = {
            "loan_id": loan_id,
            "date": quote.on.isoformat(),
            "currency": cur,
            "total": str(from_minor(quote.total, cur)),
        }
        typer.echo(json.dumps(out | {k: str(from_minor(v, cur)) for k, v in parts.items()}, indent=2))
        return
    table = Table(title=f"payoff of loan {loan_id} on {quote.on}")
    table.add_column("")
    table.add_column("amount", justify="right")
    for label, name in (
        ("due now", "due"),
        ("principal not yet due", "principal_not_due"),
        ("interest earned in the period", "accrued_interest"),
        ("prepayment fee", "prepayment_fee"),
    ):
        table.add_row(label, format_money(parts[name], cur))
    table.add_row("payoff amount", format_money(quote.total, cur), style="bold")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(examples)
    app.add_typer(product_app, name="product")
    app.command()(originate)
    app.command()(payoff)
