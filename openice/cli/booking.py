"""Booking a loan from the command line: example input files, products from a file, `originate` (borrower,
application, drawdown and loan in one command) and the payoff quote. The input files are described in docs/cli.md."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openice.cli.common import Commands, DbOption, console, parse_date, read_document
from openice.cli.decisioning import Model, lending_engine, load_policy, load_scorer
from openice.errors import ValidationError
from openice.idempotency import cli_key
from openice.money import format_money, from_minor
from openice.servicing.products import PPM, LoanProduct, check_tenor_months
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits

EXAMPLES = ("product.json", "institution.json", "borrower.json", "application.json")
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
    (their fields: docs/cli.md)."""
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
    product = LoanProduct.from_dict(data)
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
            help="JSON or YAML: product_code, income_monthly, employment, requested_amount, requested_tenor, "
            "purpose, and optional existing_debt_monthly, existing_debt_balance, bureau (money in minor units, "
            "as the API takes it)"
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
    policy: Annotated[Path | None, typer.Option(help="Credit policy YAML/JSON (default: the built-in policy)")] = None,
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


def _rate(ppm: int) -> str:
    return str(Decimal(ppm) / PPM)


def _shape(result: dict[str, Any]) -> dict[str, Any]:
    """The stored result as a person or a script reads it: money as decimal strings of major units."""
    cur = result["currency"]
    line, drawn = result["line"], result["drawdown"]
    return {
        **{k: result[k] for k in ("borrower_id", "existing_borrower", "decision_id", "outcome", "reasons", "grade")},
        "pd": result["pd"],
        "score": result["score"],
        "currency": cur,
        "line": None
        if result["line_id"] is None
        else {
            "id": result["line_id"],
            "amount": str(from_minor(line["amount"], cur)),
            "rate": _rate(line["rate_ppm"]),
            "apr": _rate(line["apr_ppm"]),
            "max_tenor": line["max_tenor"],
            "expiry": line["expiry"],
        },
        "drawdown": None
        if drawn is None
        else {
            "id": drawn["drawdown_id"],
            "status": drawn["status"],
            "institution": drawn["institution"],
            "amount": str(from_minor(drawn["amount"], cur)),
            "tenor": drawn["tenor"],
            "reasons": drawn["reasons"],
        },
        "loan_id": result["loan_id"],
    }


def _print_booking(r: dict[str, Any]) -> None:
    cur = r["currency"]

    def money(text: str) -> str:
        return f"{Decimal(text):,} {cur}"

    typer.echo(f"borrower {r['borrower_id']} ({'already registered' if r['existing_borrower'] else 'registered'})")
    scored = f", grade {r['grade']}, PD {r['pd']:.2%}, score {r['score']:.0f}" if r["grade"] else ""
    typer.echo(f"decision {r['decision_id']}: {r['outcome']}{scored}")
    for reason in r["reasons"]:
        typer.echo(f"  {reason}")
    line = r["line"]
    if line:
        typer.echo(
            f"credit line {line['id']}: {money(line['amount'])} at {Decimal(line['rate']):.2%} a year "
            f"(APR {Decimal(line['apr']):.2%}), up to {line['max_tenor']} months, until {line['expiry']}"
        )
    drawn = r["drawdown"]
    if drawn is None:
        return
    if drawn["status"] == "funded":
        typer.echo(
            f"loan {r['loan_id']}: {money(drawn['amount'])} over {drawn['tenor']} months, funded by "
            f"{drawn['institution']} (drawdown {drawn['id']}); `openice loan {r['loan_id']}` shows it"
        )
    elif drawn["status"] == "offered":
        typer.echo(f"drawdown {drawn['id']}: offered to {drawn['institution']}, which decides by hand")
    else:
        typer.echo(f"drawdown {drawn['id']}: {drawn['status']}")
        for institution, why in drawn["reasons"].items():
            typer.echo(f"  {institution}: {'; '.join(map(str, why))}")


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
