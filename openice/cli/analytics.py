"""CLI of the analytics stage: `openice metrics` and `openice report quarterly`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openice.cli.common import Commands, JsonOption, console, messages, print_json
from openice.errors import ValidationError
from openice.storage.engine import database_url, make_engine
from openice.storage.uow import EngineUnits

if TYPE_CHECKING:  # the engines (pyarrow, DuckDB, sqlglot) load when a command runs, not when the CLI starts
    from openice.analytics.backends import Backend
    from openice.analytics.metrics import MetricSet, Period

analytics_app = Commands(no_args_is_help=True)
# What every analytics command reads, for its --help: the tables and columns are listed in the docs.
READS = (
    "Reads the servicing tables of the database (loans, installments, allocations, journal_entries, journal_lines, "
    "portfolio_snapshots; products, borrowers, credit_lines, drawdowns and institutions when present), or a Parquet "
    "snapshot of them: docs/analytics.md, 'Input tables', lists every column read."
)
report_app = Commands(no_args_is_help=True, help="Disclosure reports as HTML, PDF and JSON.")
analytics_app.add_typer(report_app, name="report")


class EngineName(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    SPARK = "spark"


def split_cells(row: dict[str, Any], by: tuple[str, ...]) -> list[str]:
    return [str(row["group"].get(k, "")) for k in by]


def open_backend(engine: EngineName, db: str | None, parquet: str | None, spark_master: str, scratch: Path) -> Backend:
    """The chosen engine on the database (or on a Parquet snapshot, for DuckDB and Spark: a local or mounted
    directory, or for Spark a URI its file system reads). Spark reads a database through a Parquet snapshot
    written under `scratch`."""
    from openice.analytics.backends import DuckDBBackend, PostgresBackend, SparkBackend, is_uri, snapshot, write_parquet

    if engine is EngineName.POSTGRES:
        if parquet:
            raise ValidationError("the postgres engine reads the database, not Parquet", field="parquet")
        return PostgresBackend(make_engine(db, create=False))
    if parquet and engine is EngineName.DUCKDB:
        if is_uri(parquet):
            raise ValidationError(
                f"DuckDB reads a local or mounted snapshot directory, not {parquet}: mount it, or use --engine spark",
                field="parquet",
            )
        return DuckDBBackend.from_parquet(Path(parquet))
    if parquet:
        return SparkBackend.from_parquet(parquet, spark_master)  # a path or a URI: it tells them apart
    tables = snapshot(make_engine(db, create=False))
    if engine is EngineName.DUCKDB:
        return DuckDBBackend.from_arrow(tables)
    return SparkBackend.from_parquet(write_parquet(tables, scratch), spark_master)


def last_closed_day(db: str | None, parquet: str | None) -> date | None:
    """The last closed business day of the database: nothing after it is booked yet. None for a Parquet snapshot,
    which carries no business date."""
    if parquet:
        return None
    from openice.servicing.service import Servicing

    return Servicing(EngineUnits(make_engine(db, create=False))).business_date() - timedelta(days=1)


def quarter_of(day: date) -> Period:
    from openice.analytics.metrics import Period

    return Period.quarter(f"{day.year}Q{(day.month - 1) // 3 + 1}")


def parse_as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a date like 2026-09-30", field="as_of") from None


@contextmanager
def backend_for(engine: EngineName, db: str | None, parquet: str | None, spark_master: str) -> Iterator[Backend]:
    """The backend, closed afterwards, and its scratch snapshot (if any) removed."""
    with tempfile.TemporaryDirectory(prefix="openice-analytics-") as scratch:
        backend = open_backend(engine, db, parquet, spark_master, Path(scratch))
        try:
            yield backend
        finally:
            backend.close()


@contextmanager
def step_progress(splits: int = 1) -> Iterator[Callable[[str], None]]:
    """A progress bar over the steps of `compute_splits` (the fact tables once, the metrics once per split), on
    stderr so that `--json` output stays clean; gone when done."""
    from openice.analytics.metrics import FACT_STEPS, METRIC_STEPS

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=messages, transient=True) as progress:
        task = progress.add_task("metrics", total=len(FACT_STEPS) + splits * len(METRIC_STEPS))

        def advance(step: str) -> None:
            progress.update(task, advance=1, description=f"metrics: {step} done")

        yield advance


def run_metrics(
    engine: EngineName,
    db: str | None,
    parquet: str | None,
    spark_master: str,
    period: Period | None,
    as_of: date | None,
    by: tuple[str, ...] = (),
    collection_window: str = "calendar-month",
) -> MetricSet:
    """The metrics of `period` (default: the as-of date's quarter) as of `as_of` (default: the last closed day),
    refusing a period or date after the book's last closed day."""
    from openice.analytics.definitions import CollectionWindow
    from openice.analytics.metrics import closed_as_of, compute

    window = CollectionWindow.parse(collection_window)
    closed = last_closed_day(db, parquet)
    if period is None:
        if as_of is None:
            if closed is None:
                raise ValidationError("give --as-of for a Parquet snapshot", field="as_of")
            as_of = closed
        period = quarter_of(as_of)
    closed_as_of(period, as_of, closed, period_field="quarter")  # refused before a snapshot is taken
    with backend_for(engine, db, parquet, spark_master) as backend, step_progress() as on_step:
        return compute(backend, period, as_of, by, on_step=on_step, collection_window=window, last_closed_day=closed)


DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default $OPENICE_DB or sqlite:///openice.db)")]
EngineOpt = Annotated[EngineName, typer.Option("--engine", help="Where the metrics run")]
ParquetOpt = Annotated[
    str | None,
    typer.Option(
        "--parquet", help="Read a Parquet snapshot directory instead (for --engine spark also a URI: s3a://, hdfs://)"
    ),
]
SparkOpt = Annotated[str, typer.Option("--spark-master", help="local[*] or a cluster URL")]
WindowOpt = Annotated[
    str,
    typer.Option(
        "--collection-window",
        help="30-day collection rate counts repayments in the calendar month after the due date "
        "(calendar-month) or in the 30 days after it (30-days)",
    ),
]


@analytics_app.command(
    "metrics", help=f"Print the headline portfolio and disclosure metrics (defined in docs/analytics.md).\n\n{READS}"
)
def metrics(
    db: DbOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default: last closed day)")] = None,
    quarter: Annotated[str | None, typer.Option("--quarter", help="Period, e.g. 2026Q3 (default: as-of's)")] = None,
    engine: EngineOpt = EngineName.DUCKDB,
    parquet: ParquetOpt = None,
    spark_master: SparkOpt = "local[2]",
    by: Annotated[list[str] | None, typer.Option("--by", help="Split: business_model, institution, ...")] = None,
    as_json: JsonOption = False,
    collection_window: WindowOpt = "calendar-month",
) -> None:
    """Print the headline portfolio and disclosure metrics."""
    from openice.analytics.definitions import REVENUE_LABELS
    from openice.analytics.metrics import Period
    from openice.analytics.report import HEADLINE, fmt_value, funding_mix_rows

    result = run_metrics(
        engine,
        db,
        parquet,
        spark_master,
        Period.quarter(quarter) if quarter else None,
        parse_as_of(as_of),
        tuple(by or ()),
        collection_window,
    )
    if as_json:
        print_json(result.to_major_units())
        return
    closed = result.closed_range
    currency = result.currency
    table = Table(
        title=f"openice metrics, {result.period.label}"
        f"{f' (partly closed: {closed.label})' if closed else ''}, as of {result.as_of} "
        f"({result.engine}, {database_url(db) if not parquet else parquet})",
        caption=f"collection window: {result.collection_window.value}",
    )
    table.add_column("metric")
    for key in result.by:
        table.add_column(key)
    table.add_column("value", justify="right")
    for name, label in HEADLINE:
        metric = result[name]
        for row in metric.rows:
            table.add_row(label, *split_cells(row, result.by), fmt_value(row["value"], metric.unit, currency))
    for label, unit, row in funding_mix_rows(result):
        row_currency = row["group"].get("currency", currency)  # ABS issued is by the deals' own currency
        table.add_row(label, *split_cells(row, result.by), fmt_value(row["value"], unit, row_currency))
    for row in result["revenue"].rows:
        table.add_row(
            f"Revenue: {REVENUE_LABELS[row['group']['line']]}",
            *split_cells(row, result.by),
            fmt_value(row["value"], "money", currency),
        )
    console.print(table)


@report_app.command(
    "quarterly",
    help="Write the quarterly report (HTML, PDF, JSON): highlights, risk, balances by bucket and roll rates, "
    "charge-offs and provisions, revenue, model monitoring and charts, each figure beside the previous quarter and "
    f"the same quarter a year before.\n\n{READS}",
)
def report_quarterly(
    quarter: Annotated[str, typer.Option("--quarter", help="e.g. 2026Q3")],
    out: Annotated[Path, typer.Option("--out", help="Directory for quarterly-<quarter>.html/.pdf/.json")],
    db: DbOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="YYYY-MM-DD (default: the quarter's end, or the last closed day if earlier)"),
    ] = None,
    engine: EngineOpt = EngineName.DUCKDB,
    parquet: ParquetOpt = None,
    spark_master: SparkOpt = "local[2]",
    collection_window: WindowOpt = "calendar-month",
) -> None:
    """Write the quarterly report as HTML, PDF and JSON."""
    from openice.analytics.definitions import CollectionWindow
    from openice.analytics.metrics import Period, closed_as_of
    from openice.analytics.report import quarterly, write_report

    period, window, closed = (
        Period.quarter(quarter),
        CollectionWindow.parse(collection_window),
        last_closed_day(db, parquet),
    )
    closed_as_of(period, parse_as_of(as_of), closed, period_field="quarter")  # before a snapshot is taken
    with backend_for(engine, db, parquet, spark_master) as backend, step_progress(splits=2) as on_step:
        metrics = quarterly(backend, period, parse_as_of(as_of), on_step, window, closed)
    paths = write_report(metrics, out)
    for kind, path in paths.items():
        messages.print(f"wrote {kind}: {path}")
