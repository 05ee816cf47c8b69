"""CLI of funding: `openice abs waterfall` runs a deal's waterfall over given collections, with no database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from openice.cli.common import Commands, JsonOption, console, print_json, read_document
from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.waterfall import Period, collections_from_csv, document, run_waterfall
from openice.money import fmt

abs_app = Commands(
    help="Asset-backed securities: a deal's waterfall over given collections (docs/funding.md).",
    no_args_is_help=True,
)

DealArgument = Annotated[
    Path,
    typer.Argument(
        help="YAML or JSON: name, currency, pool_balance, tranches (most senior first), fees, principal_payment, "
        "reserve_account, triggers (docs/funding.md; openice/examples/deal.yaml)"
    ),
]


def load_deal(path: Path) -> Deal:
    return Deal.from_dict(read_document(path, field=str(path)))


def read_text(path: Path, field: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror or error}", field=field) from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not UTF-8 text", field=field) from None


@abs_app.command()
def waterfall(
    deal_file: DealArgument,
    collections: Annotated[
        Path,
        typer.Option(
            "--collections",
            help="CSV with a header: period (1, 2, ...), interest, principal, defaults, recoveries (major units)",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Run the deal's monthly waterfall over the collections: fees, each tranche's interest and principal, the
    reserve account, triggers and the residual income, to the cent."""
    deal = load_deal(deal_file)
    periods = run_waterfall(
        deal, collections_from_csv(read_text(collections, "--collections"), deal.currency, collections.name)
    )
    if as_json:
        print_json(document(periods, deal.currency))
        return
    for table in waterfall_tables(deal, periods):
        console.print(table)


def waterfall_tables(deal: Deal, periods: list[Period]) -> tuple[Table, Table]:
    """The period's cash (what came in, fees, the reserve, the residual income, the trigger), then each tranche's
    interest and principal: two tables narrow enough for a terminal, whose figures are never cut (headers wrap)."""
    c = deal.currency
    cash_rows = [
        [
            str(p.period),
            *(fmt(v, c) for v in (p.available, p.fees, p.reserve_balance, p.residual_income)),
            "breached" if p.trigger_breached else "",
        ]
        for p in periods
    ]
    note_rows = [
        [
            str(p.period) if i == 0 else "",
            name,
            *(fmt(v, c) for v in (t.interest_due, t.interest_paid, t.interest_shortfall, t.principal_paid, t.balance)),
        ]
        for p in periods
        for i, (name, t) in enumerate(p.tranches.items())
    ]
    cash = _table(
        f"{deal.name}: available funds, in {c}",
        ("period", "available", "fees", "reserve balance", "residual income", "trigger"),
        cash_rows,
        sections=1,
    )
    notes = _table(
        f"{deal.name}: tranches, in {c}",
        ("period", "tranche", "interest due", "interest paid", "interest shortfall", "principal paid", "balance"),
        note_rows,
        sections=len(deal.tranches),
    )
    return cash, notes


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]], sections: int) -> Table:
    """A table whose columns are at least as wide as their widest cell, a line between every `sections` rows."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for j, column in enumerate(columns):
        table.add_column(
            column,
            justify="left" if column in ("tranche", "trigger") else "right",
            min_width=max((len(r[j]) for r in rows), default=0),
            no_wrap=False,
        )
    for k, row in enumerate(rows):
        table.add_row(*row, end_section=sections > 1 and k % sections == sections - 1)
    return table
