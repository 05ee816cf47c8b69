"""CLI of funding: `openice abs waterfall` runs a deal's waterfall over given collections and `openice abs project`
projects it under scenarios, both with no database; `openice abs pool` cuts a deal's pool from the book and shows its
strata, `openice abs issue` issues the deal over it, `openice abs periods` and `openice abs report` show its months."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from openice.cli.common import (
    Commands,
    DbOption,
    JsonOption,
    console,
    decimal_money,
    fields_as,
    parse_date,
    parse_rate,
    print_json,
    read_document,
    read_text,
)
from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.waterfall import Period, collections_from_csv, document, run_waterfall
from openice.money import fmt, to_minor
from openice.storage.days import from_day

if TYPE_CHECKING:
    from openice.funding.projection import Projection
    from openice.funding.service import Funding, PoolCut

abs_app = Commands(
    help="Asset-backed securities: a deal's waterfall over given collections, its projections (docs/funding.md).",
    no_args_is_help=True,
)

DealArgument = Annotated[
    Path,
    typer.Argument(
        help="YAML or JSON: name, currency, pool_balance, tranches (most senior first), fees, principal_payment, "
        "reserve_account, triggers, eligibility, derecognise (docs/funding.md; openice/examples/deal.yaml)"
    ),
]


def load_deal(path: Path) -> Deal:
    return Deal.from_dict(read_document(path, field=str(path)))


def _funding(db: str | None) -> Funding:
    from openice.funding.service import Funding  # the database stack, when it runs
    from openice.storage.engine import make_engine
    from openice.storage.uow import EngineUnits

    return Funding(EngineUnits(make_engine(db, create=False)))


@abs_app.command()
def pool(
    deal_file: DealArgument,
    db: DbOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The cut-off date, YYYY-MM-DD: the business date (the default)")
    ] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV: dimension,bucket,count,balance,share")] = False,
) -> None:
    """Cut the deal's pool from the book by its eligibility criteria and show it by balance, rate, grade, remaining
    tenor, province and seasoning (count, balance, share), before anything is committed."""
    deal = load_deal(deal_file)
    cut = _funding(db).pool(deal, None if as_of is None else parse_date(as_of, "as_of"))
    if as_json:
        print_json(pool_document(cut))
        return
    if as_csv:
        typer.echo(pool_csv(cut), nl=False)
        return
    c, taken = deal.currency, cut.cut
    console.print(
        f"{deal.name}: {len(taken.loans)} loans, {fmt(taken.balance, c)} {c} of the pool_balance "
        f"{fmt(deal.pool_balance, c)}, cut off {cut.cut_off}"
    )
    if taken.left:
        console.print("left out: " + ", ".join(f"{reason} {n}" for reason, n in taken.left.items()))
    console.print(
        _table(
            f"{deal.name}: strata, in {c}",
            ("dimension", "bucket", "loans", "balance", "share"),
            [[d, b, str(n), fmt(bal, c), f"{s:.2%}"] for d, b, n, bal, s in _strata_rows(cut)],
        )
    )


def _strata_rows(cut: PoolCut) -> list[tuple[str, str, int, int, Any]]:
    from openice.funding.pool import share

    total = cut.cut.balance
    return [(s.dimension, s.bucket, s.count, s.balance, share(s.balance, total)) for s in cut.strata]


def pool_document(cut: PoolCut) -> dict[str, Any]:
    """The pool cut for `--json`: money as decimal strings, shares as decimal fractions to four places."""
    c = cut.deal.currency
    strata: dict[str, list[dict[str, Any]]] = {}
    for dimension, bucket, count, balance, fraction in _strata_rows(cut):
        strata.setdefault(dimension, []).append(
            {"bucket": bucket, "count": count, "balance": decimal_money(balance, c), "share": str(fraction)}
        )
    return {
        "deal": cut.deal.name,
        "currency": c,
        "cut_off": cut.cut_off.isoformat(),
        "pool_balance": decimal_money(cut.deal.pool_balance, c),
        "selected_balance": decimal_money(cut.cut.balance, c),
        "loans": len(cut.cut.loans),
        "left_out": cut.cut.left,
        "strata": strata,
    }


def pool_csv(cut: PoolCut) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("dimension", "bucket", "count", "balance", "share"))
    for dimension, bucket, count, balance, fraction in _strata_rows(cut):
        writer.writerow((dimension, bucket, count, decimal_money(balance, cut.deal.currency), fraction))
    return out.getvalue()


@abs_app.command()
def issue(
    deal_file: DealArgument,
    as_of: Annotated[str, typer.Option("--as-of", help="The cut-off date, YYYY-MM-DD: the business date")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue the deal over its pool cut, once: the deal, its tranches and its loans stored, the loans moved to the
    deal's funder (ABS:<name>) in the ledger, sold or kept on the balance sheet as `derecognise` says."""
    data = read_document(deal_file, field=str(deal_file))
    deal = Deal.from_dict(data)
    issued = _funding(db).issue(deal, data, parse_date(as_of, "as_of"))
    c = deal.currency
    if as_json:
        print_json(
            {
                **issued,
                "pool_balance": decimal_money(issued["pool_balance"], c),
                "tranches": {k: decimal_money(v, c) for k, v in issued["tranches"].items()},
            }
        )
        return
    how = "sold to the trust (derecognised)" if deal.derecognise else "kept on the balance sheet (secured borrowing)"
    console.print(
        f"issued {deal.name}: {issued['loans']} loans, {fmt(issued['pool_balance'], c)} {c}, {how}; "
        f"funder {issued['funder']}; tranches " + ", ".join(f"{k} {fmt(v, c)}" for k, v in issued["tranches"].items())
    )


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
    interest and principal (and, for a deal with a clean-up call, the loss written down at it): two tables narrow
    enough for a terminal, whose figures are never cut (headers wrap)."""
    c = deal.currency
    revolving = deal.revolving is not None
    callable_ = deal.clean_up_call is not None
    cash_rows = [
        [
            str(p.period),
            *(fmt(v, c) for v in (p.available, p.fees, p.reserve_balance, p.residual_income)),
            *([fmt(p.reinvested, c)] if revolving else []),
            _state(p),
        ]
        for p in periods
    ]
    note_rows = [
        [
            str(p.period) if i == 0 else "",
            name,
            *(fmt(v, c) for v in (t.interest_due, t.interest_paid, t.interest_shortfall, t.principal_paid, t.balance)),
            *([fmt(t.loss, c)] if callable_ else []),
        ]
        for p in periods
        for i, (name, t) in enumerate(p.tranches.items())
    ]
    cash = _table(
        f"{deal.name}: available funds, in {c}",
        (
            "period",
            "available",
            "fees",
            "reserve balance",
            "residual income",
            *(["reinvested"] if revolving else []),
            "trigger" if deal.clean_up_call is None and not revolving else "state",
        ),
        cash_rows,
        sections=1,
    )
    notes = _table(
        f"{deal.name}: tranches, in {c}",
        (
            "period",
            "tranche",
            "interest due",
            "interest paid",
            "interest shortfall",
            "principal paid",
            "balance",
            *(["loss"] if callable_ else []),
        ),
        note_rows,
        sections=len(deal.tranches),
    )
    return cash, notes


def _state(p: Period) -> str:
    """One word for the period, the weightiest: the deal called, a trigger breached, or still revolving."""
    if p.clean_up_call:
        return "called"
    if p.trigger_breached:
        return "breached"
    return "revolving" if p.revolving else ""


def _table(
    title: str,
    columns: tuple[str, ...],
    rows: list[list[str]],
    sections: int = 1,
    left: tuple[str, ...] = ("tranche", "trigger", "state"),
) -> Table:
    """A table whose columns are at least as wide as their widest cell, a line between every `sections` rows; the
    columns named in `left` are aligned left, the figures right."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for j, column in enumerate(columns):
        table.add_column(
            column,
            justify="left" if column in left else "right",
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
    html: Annotated[
        Path | None, typer.Option("--html", help="With --grid: write the grid's chart and table as one HTML page")
    ] = None,
    png_file: Annotated[Path | None, typer.Option("--png", help="With --grid: write the grid's chart as PNG")] = None,
    lang: Annotated[str, typer.Option("--lang", help="The language of the HTML page and the chart: en or zh")] = "en",
) -> None:
    """Project the deal under a scenario (or the stress grid): the pool's loans under the default, prepayment and
    recovery rates, the waterfall over each month, and each tranche's WAL, yield, loss and first loss period."""
    from openice.funding import projection  # numpy, when it runs
    from openice.funding.render import grid_chart, or_dash, render_grid_html, words

    for option, path in (("--html", html), ("--png", png_file)):
        if path is not None and not grid:
            raise ValidationError("the page and the chart are the stress grid's: add --grid", field=option)
    with fields_as({"lang": "--lang"}):
        words(lang)
    deal = load_deal(deal_file)
    loans = projection.pool_from_csv(read_text(pool, "--pool"), deal.currency, pool.name)
    base = projection.scenario(parse_rate(cdr, "cdr"), parse_rate(cpr, "cpr"), parse_rate(recovery, "recovery"), lag)
    with fields_as({"pool": "--pool"}):
        projections = projection.project(deal, loans, projection.stress_grid(base) if grid else [base])
    if html is not None:
        html.write_text(render_grid_html(deal, projections, base, lang), encoding="utf-8")
    if png_file is not None:
        png_file.write_bytes(base64.b64decode(grid_chart(deal, projections, lang)))
    if as_json:
        print_json({"scenarios": [projection_document(p, deal.currency) for p in projections]})
        return
    if html is not None or png_file is not None:
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
                    or_dash(outcome.wal_years, "{:.2f}"),
                    or_dash(outcome.yield_rate, "{:.2%}"),
                    fmt(outcome.loss, c),
                    f"{outcome.loss_rate:.2%}",
                    or_dash(outcome.first_loss_period, "{}"),
                ]
                for tranche, outcome in zip(deal.tranches, only.tranches, strict=True)
            ],
        )
    )


def grid_table(deal: Deal, projections: list[Projection]) -> Table:
    """One row per scenario of the grid: each tranche's loss as a share of its balance, and its WAL (the rows of
    the grid's HTML page)."""
    from openice.funding.render import grid_rows

    return _table(
        f"{deal.name}: stress grid, loss % and WAL (years) by tranche",
        ("CDR", "CPR", *(f"{t.name} {k}" for t in deal.tranches for k in ("loss", "WAL"))),
        grid_rows(projections),
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


@abs_app.command()
def periods(
    name: Annotated[str, typer.Argument(help="The deal's name, as issued")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The months of an issued deal as month-end paid them: the pool's collections read from the ledger, and the
    waterfall's period (`openice abs waterfall --json`'s shape)."""
    row, months = _funding(db).deal_periods(name)
    c = row.currency
    if as_json:
        print_json(
            {
                "deal": row.name,
                "currency": c,
                "funder": row.funder,
                "periods": [
                    {
                        "first_day": str(from_day(m.first_day)),
                        "last_day": str(from_day(m.last_day)),
                        "collections": {k: decimal_money(getattr(m, k), c) for k in COLLECTED},
                        **json.loads(m.waterfall),
                    }
                    for m in months
                ],
            }
        )
        return
    console.print(
        _table(
            f"{row.name}: months paid, in {c}",
            ("period", "from", "to", *COLLECTED, "available", "fees", "residual income"),
            [
                [
                    str(m.period),
                    str(from_day(m.first_day)),
                    str(from_day(m.last_day)),
                    *(fmt(getattr(m, k), c) for k in COLLECTED),
                    *(
                        fmt(to_minor(json.loads(m.waterfall)[k], c), c)
                        for k in ("available", "fees", "residual_income")
                    ),
                ]
                for m in months
            ],
        )
    )


COLLECTED = ("interest", "principal", "defaults", "recoveries")


@abs_app.command()
def report(
    name: Annotated[str, typer.Argument(help="The deal's name, as issued")],
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM, whose month-end closed")],
    db: DbOption = None,
    as_json: JsonOption = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write the report as one HTML page to this file")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the report as PDF to this file")] = None,
    lang: Annotated[str, typer.Option("--lang", help="The language of the table, HTML and PDF: en or zh")] = "en",
) -> None:
    """The investor report of a deal's month: the pool (balances, collections, defaults, CDR, CPR, delinquency),
    each tranche (interest, principal, balance, factor, shortfall), the triggers and the reserve account."""
    from openice.funding.render import render_html, render_pdf, words
    from openice.funding.report import report_document

    with fields_as({"lang": "--lang"}):
        t = words(lang)
    made = _funding(db).investor_report(name, month)
    if html is not None:
        html.write_text(render_html(made, lang), encoding="utf-8")
    if pdf is not None:
        pdf.write_bytes(render_pdf(made, lang))
    if as_json:
        print_json(report_document(made))
        return
    if html is not None or pdf is not None:
        return
    d, c = report_document(made), made.currency
    pool = d["pool"]
    console.print(
        _table(
            t("investor.table.pool", deal=made.deal, month=d["month"], period=made.period, currency=c),
            (*(t(f"investor.{k}") for k in POOL_WORDS), t("investor.cdr"), t("investor.cpr")),
            [[*(fmt(to_minor(pool[k], c), c) for k in POOL_MONEY), pool["cdr"], pool["cpr"]]],
        )
    )
    console.print(
        _table(
            t("investor.table.tranches", currency=c),
            (t("investor.tranche"), *(t(f"investor.{k}") for k in TRANCHE_WORDS), t("investor.factor")),
            [[x.name, *(fmt(getattr(x, k), c) for k in TRANCHE_MONEY), str(x.factor)] for x in made.tranches],
            left=(t("investor.tranche"),),
        )
    )
    reserve = d["reserve_account"]
    triggers = ", ".join(
        f"{t('investor.metric.' + x['metric'])} {x['value']} ({t('investor.level')} {x['level']}"
        f"{', ' + t('investor.breached') if x['breached'] else ''})"
        for x in d["triggers"]
    )
    console.print(
        t(
            "investor.table.reserve",
            opening=reserve["opening_balance"],
            closing=reserve["closing_balance"],
            currency=c,
            target=reserve["target"],
        )
        + f"; {t('investor.triggers')}: {triggers or t('investor.none')}"
    )


POOL_MONEY = (
    "opening_balance",
    "closing_balance",
    "interest",
    "principal",
    "scheduled_principal",
    "prepaid_principal",
    "defaults",
    "recoveries",
)
POOL_WORDS = POOL_MONEY  # the catalog's investor.<key>
TRANCHE_MONEY = ("interest_due", "interest_paid", "interest_shortfall", "principal_paid", "balance", "loss")
TRANCHE_WORDS = ("interest_due", "interest_paid", "shortfall", "principal_paid", "balance", "loss")
