"""CLI of funding: `openice abs waterfall` runs a deal's waterfall over given collections and `openice abs project`
projects it under scenarios, both with no database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from openice.cli.common import (
    Commands,
    JsonOption,
    console,
    decimal_money,
    fields_as,
    parse_rate,
    print_json,
    read_document,
    read_text,
)
from openice.funding.deal import Deal
from openice.funding.waterfall import Period, collections_from_csv, document, run_waterfall
from openice.money import fmt

if TYPE_CHECKING:
    from openice.funding.projection import Projection

abs_app = Commands(
    help="Asset-backed securities: a deal's waterfall over given collections, its projections (docs/funding.md).",
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


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]], sections: int = 1) -> Table:
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


@abs_app.command()
def project(
    deal_file: DealArgument,
    pool: Annotated[
        Path,
        typer.Option(
            "--pool",
            help="CSV with a header: balance (major units), rate (annual), remaining_term (months), one loan a row; "
            "the balances add up to the deal's pool_balance",
        ),
    ],
    cdr: Annotated[str, typer.Option("--cdr", help="Annual default rate: 2% or 0.02")] = "2%",
    cpr: Annotated[str, typer.Option("--cpr", help="Annual prepayment rate: 10% or 0.10")] = "0%",
    recovery: Annotated[str, typer.Option("--recovery", help="Share of a default recovered: 30% or 0.30")] = "0%",
    lag: Annotated[int, typer.Option("--lag", help="Months from a default to its recovery")] = 0,
    grid: Annotated[
        bool,
        typer.Option("--grid", help="The stress grid: 1x to 5x the default rate, each under 0, 10, 20 and 30% CPR"),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Project the deal under a scenario (or the stress grid): the pool's loans under the default, prepayment and
    recovery rates, the waterfall over each month, and each tranche's WAL, yield, loss and first loss period."""
    from openice.funding import projection  # numpy, when it runs

    deal = load_deal(deal_file)
    loans = projection.pool_from_csv(read_text(pool, "--pool"), deal.currency, pool.name)
    base = projection.scenario(parse_rate(cdr, "cdr"), parse_rate(cpr, "cpr"), parse_rate(recovery, "recovery"), lag)
    with fields_as({"pool": "--pool"}):
        projections = projection.project(deal, loans, projection.stress_grid(base) if grid else [base])
    if as_json:
        print_json({"scenarios": [projection_document(p, deal.currency) for p in projections]})
        return
    if grid:
        console.print(grid_table(deal, projections))
        return
    (only,) = projections
    c = deal.currency
    console.print(
        _table(
            f"{deal.name}: CDR {base.cdr:.2%}, CPR {base.cpr:.2%}, recovery {base.recovery_rate:.2%} after "
            f"{base.recovery_lag} months",
            ("tranche", f"balance ({c})", "WAL (years)", "yield", f"loss ({c})", "loss %", "first loss period"),
            [
                [
                    tranche.name,
                    fmt(tranche.balance, c),
                    _or_dash(outcome.wal_years, "{:.2f}"),
                    _or_dash(outcome.yield_rate, "{:.2%}"),
                    fmt(outcome.loss, c),
                    f"{outcome.loss_rate:.2%}",
                    _or_dash(outcome.first_loss_period, "{}"),
                ]
                for tranche, outcome in zip(deal.tranches, only.tranches, strict=True)
            ],
        )
    )


def _or_dash(value: float | int | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def grid_table(deal: Deal, projections: list[Projection]) -> Table:
    """One row per scenario of the grid: each tranche's loss as a share of its balance, and its WAL."""
    return _table(
        f"{deal.name}: stress grid, loss % and WAL (years) by tranche",
        ("CDR", "CPR", *(f"{t.name} {k}" for t in deal.tranches for k in ("loss", "WAL"))),
        [
            [
                f"{p.scenario.cdr:.1%}",
                f"{p.scenario.cpr:.0%}",
                *(v for o in p.tranches for v in (f"{o.loss_rate:.2%}", _or_dash(o.wal_years, "{:.2f}"))),
            ]
            for p in projections
        ],
    )


def projection_document(p: Projection, currency: str) -> dict[str, object]:
    """A scenario's outcome for `--json`: money as decimal strings, rates as fractions rounded to 6 places."""
    s = p.scenario
    return {
        "cdr": round(s.cdr, 6),
        "cpr": round(s.cpr, 6),
        "recovery_rate": round(s.recovery_rate, 6),
        "recovery_lag": s.recovery_lag,
        "tranches": {
            o.name: {
                "wal_years": None if o.wal_years is None else round(o.wal_years, 4),
                "yield": None if o.yield_rate is None else round(o.yield_rate, 6),
                "loss": decimal_money(o.loss, currency),
                "loss_rate": round(o.loss_rate, 6),
                "first_loss_period": o.first_loss_period,
            }
            for o in p.tranches
        },
    }
