"""The disclosure conventions, worked by hand on the disclosure portfolio (tests/analytics/portfolio.py,
`build_disclosure`), from SQLite and PostgreSQL, on DuckDB, PostgreSQL and Spark alike:

* the 90 day+ rate leaves loans more than 180 DPD out of numerator and denominator, whatever the product's
  write-off DPD, and shows their balance apart;
* the 30-day collection rate counts repayments in the calendar month after the due date by default, or in a fixed
  30 days;
* nothing after the book's last closed business day (2026-09-15) is reported: a later period or as-of date is
  refused naming that day, and a period running past it is computed up to it and marked partly closed.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bench.pandas_baseline import PandasBackend
from openice.analytics.backends import Backend, DuckDBBackend, PostgresBackend, SparkBackend, snapshot, write_parquet
from openice.analytics.definitions import Thresholds, for_dialect, one_month_after_sql
from openice.analytics.metrics import MetricSet, Period, compute
from openice.cli import app
from openice.errors import ValidationError
from openice.money import from_minor
from openice.storage.days import from_day, to_day
from tests.analytics.portfolio import K

CLOSED = date(2026, 9, 15)  # the business date is 2026-09-16


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def source(request: pytest.FixtureRequest, disclosure_portfolio: Callable[[str], Engine]) -> Engine:
    return disclosure_portfolio(request.param)


@contextmanager
def every_engine(source: Engine, spark: Any, tmp_path: Path) -> Iterator[list[Backend]]:
    """DuckDB on a snapshot, Spark on a Parquet copy of it, and PostgreSQL in place when the source is PostgreSQL."""
    tables = snapshot(source)
    backends: list[Backend] = [
        DuckDBBackend.from_arrow(tables),
        SparkBackend.from_parquet(write_parquet(tables, tmp_path / "snapshot"), spark=spark),
    ]
    if source.dialect.name == "postgresql":
        backends.append(PostgresBackend(source))
    try:
        yield backends
    finally:
        for backend in backends:
            backend.close()


def ratio(result: MetricSet, name: str) -> tuple[int, int]:
    (row,) = result[name].rows
    return row["numerator"], row["denominator"]


def test_disclosure_portfolio_on_every_engine(source: Engine, spark: Any, tmp_path: Path) -> None:
    """Every figure below on every engine, and each engine's whole output equal to DuckDB's."""
    with every_engine(source, spark, tmp_path) as backends:
        outputs = [check_90_plus(b) + check_collection_windows(b) for b in backends]
        check_other_m4(backends[0])
    for backend, output in zip(backends[1:], outputs[1:], strict=True):
        assert output == outputs[0], backend.dialect


def _plain(result: MetricSet) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("engine")
    return data


def check_90_plus(backend: Backend) -> list[dict[str, Any]]:
    q3 = compute(backend, Period.quarter("2026Q3"), last_closed_day=CLOSED)
    # Computed up to 09-15, the last closed day: the quarter is partly closed.
    assert (q3.as_of, q3.to_dict()["partly_closed"]) == (CLOSED, True)
    assert q3.to_dict()["closed_range"] == {"start": "2026-07-01", "end": "2026-09-15"}
    # D1 (LONG, written off only at 365 DPD) is overdue since 02-15: 213 DPD, 3,000.00 outstanding, beyond 180.
    # D2 is overdue since 05-15: 124 DPD, M4+ 3,000.00. D3 has 1,000.00 left, current. D5 and D6 are repaid.
    # Before this change D1 counted in both: 6,000.00 / 7,000.00.
    assert ratio(q3, "delinquency_90_plus_rate") == (3 * K, 4 * K)
    assert q3["outstanding_balance"].total() == 4 * K  # D2 + D3; D1 is shown apart
    assert q3["balance_over_180"].total() == 3 * K and q3["loans_over_180"].total() == 1
    assert (q3["balance_C"].total(), q3["balance_M4+"].total(), q3["loans_outstanding"].total()) == (K, 3 * K, 2)
    assert "more than 180 DPD" in (q3["outstanding_balance"].note or "")
    assert "91-180 DPD" in (q3["delinquency_90_plus_rate"].note or "") and q3["balance_M4+"].note == "91-180 DPD"
    # Month-end snapshots. 07-31: D1 167 DPD (M4+) 3,000.00, D2 78 DPD (M3) 3,000.00, D3 3,000.00 current: 90+ is
    # 3 / 9. 08-31: D1 198 DPD, beyond 180 and out of both; D2 109 DPD (M4+) 3,000.00; D3 2,000.00 current: 90+ and
    # 30+ are both 3 / 5 (before: 6 / 8).
    trend = {(r["group"]["month"]): (r["numerator"], r["denominator"]) for r in q3["delinquency_trend_90_plus"].rows}
    assert (trend["2026-07"], trend["2026-08"]) == ((3 * K, 9 * K), (3 * K, 5 * K))
    trend30 = {(r["group"]["month"]): (r["numerator"], r["denominator"]) for r in q3["delinquency_trend_30_plus"].rows}
    assert trend30["2026-08"] == (3 * K, 5 * K)
    return [_plain(q3)]


def check_other_m4(backend: Backend) -> None:
    """The bound is a threshold like the others (a number in the SQL text, the same on every engine): at 240 DPD,
    D1's 213 DPD are M4+ again."""
    wide = compute(backend, Period.quarter("2026Q3"), last_closed_day=CLOSED, thresholds=Thresholds(m4=240))
    assert ratio(wide, "delinquency_90_plus_rate") == (6 * K, 7 * K) and wide["balance_over_180"].total() == 0


def check_collection_windows(backend: Backend) -> list[dict[str, Any]]:
    # Due in 2026Q1, as of 04-30: D1 02-15 and 03-15 (1,000.00 each, never paid); D5 02-15 (paid on the day) and
    # 03-15 (paid 04-15); D6 02-28 (2,000.00, paid 03-30) and 03-31 (2,000.00, on the day). Principal due 8,000.00;
    # overdue on the due date 1 + 1 + 1 + 2 = 5,000.00.
    # Calendar month (the default): D5's 03-15 counts through 04-15 (31 days): collected 1,000.00; D6's 02-28 only
    # through 03-28. 30 days: D6's 02-28 counts through 03-30: collected 2,000.00; D5's 03-15 only through 04-14.
    # Before this change the rate was 2,000.00 / 5,000.00 with no choice of window.
    out = []
    for window, collected in ((None, K), ("30-days", 2 * K)):
        options = {"collection_window": window} if window else {}
        q1 = compute(backend, Period.quarter("2026Q1"), date(2026, 4, 30), last_closed_day=CLOSED, **options)
        named = window or "calendar-month"
        assert ratio(q1, "day1_delinquency_rate") == (5 * K, 8 * K)
        assert ratio(q1, "collection_rate_30d") == (collected, 5 * K), named
        assert q1.collection_window == named and named in (q1["collection_rate_30d"].note or "")
        assert (q1.to_dict()["collection_window"], q1.to_dict()["partly_closed"]) == (named, False)
        out.append(_plain(q1))
    # The book's last closed day bounds the period and the as-of date.
    for period, as_of, field in (
        (Period.quarter("2026Q4"), None, "period"),
        (Period.quarter("2026Q3"), date(2026, 9, 16), "as_of"),
    ):
        with pytest.raises(ValidationError, match="last closed business day 2026-09-15") as error:
            compute(backend, period, as_of, last_closed_day=CLOSED)
        assert error.value.field == field
    return out


def test_pandas_baseline_follows_the_conventions(disclosure_portfolio: Callable[[str], Engine]) -> None:
    """The pandas baseline gives DuckDB's numbers on the disclosure portfolio, for both collection windows."""
    tables = snapshot(disclosure_portfolio("sqlite"))
    for quarter, as_of, window in (
        ("2026Q1", date(2026, 4, 30), "calendar-month"),
        ("2026Q1", date(2026, 4, 30), "30-days"),
        ("2026Q3", CLOSED, "calendar-month"),
    ):
        period = Period.quarter(quarter)
        expected = compute(DuckDBBackend.from_arrow(tables), period, as_of, collection_window=window).to_dict()
        got = compute(
            PandasBackend.from_arrow(tables, period, as_of, collection_window=window),
            period,
            as_of,
            collection_window=window,
        ).to_dict()
        assert got.pop("engine") == "pandas" and expected.pop("engine") == "duckdb"
        assert got == expected, (quarter, window)


def _one_month_after(day: int) -> int:
    when = from_day(day)
    year, month = when.year + when.month // 12, when.month % 12 + 1
    return to_day(date(year, month, min(when.day, calendar.monthrange(year, month)[1])))


def test_one_month_after_every_day_on_every_engine(disclosure_portfolio: Callable[[str], Engine], spark: Any) -> None:
    """The calendar-month window's integer SQL equals the calendar for every day of its range (1968-03-01 to
    2099-12-31), on DuckDB, PostgreSQL and Spark."""
    first, last = to_day(date(1968, 3, 1)), to_day(date(2099, 12, 31))
    expected = [(day, _one_month_after(day)) for day in range(first, last + 1)]
    assert from_day(_one_month_after(to_day(date(2028, 1, 31)))) == date(2028, 2, 29)
    sql = f"SELECT d, {one_month_after_sql('d')} AS m FROM days ORDER BY d"
    con = duckdb.connect()
    con.register("days", pa.table({"d": pa.array(range(first, last + 1), pa.int64())}))
    assert con.execute(sql).fetchall() == expected
    engine = disclosure_portfolio("postgres")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE TEMP TABLE days AS SELECT generate_series({first}, {last})::BIGINT AS d"))
        assert [tuple(r) for r in conn.execute(text(for_dialect(sql, "postgres")))] == expected
        conn.rollback()
    spark.range(first, last + 1).withColumnRenamed("id", "d").createOrReplaceTempView("days")
    try:
        assert [tuple(r) for r in spark.sql(for_dialect(sql, "spark")).collect()] == expected
    finally:
        spark.catalog.dropTempView("days")


def _url(engine: Engine) -> str:
    if engine.dialect.name != "postgresql":
        return engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:  # the portfolio's own schema, for the CLI's connections
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return engine.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def test_cli_and_report_refuse_days_after_the_book(source: Engine, tmp_path: Path) -> None:
    """`openice metrics` and `openice report quarterly` refuse a quarter or as-of date after the last closed day in
    one line on stderr (exit 2, nothing written); a quarter running past it is shown as partly closed, with the
    collection window named."""
    url, runner = _url(source), CliRunner()
    for args in (
        ["metrics", "--quarter", "2026Q4"],
        ["metrics", "--as-of", "2026-09-16"],
        ["report", "quarterly", "--quarter", "2026Q4", "--out", str(tmp_path / "refused")],
    ):
        result = runner.invoke(app, [*args, "--db", url])
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and "last closed business day 2026-09-15" in result.stderr, args
    assert not (tmp_path / "refused").exists()
    bad = runner.invoke(app, ["metrics", "--db", url, "--collection-window", "fortnight"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --collection-window: 'fortnight'"), bad.output

    table = runner.invoke(app, ["metrics", "--db", url, "--quarter", "2026Q3"])
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())
    assert "(partly closed: 2026-07-01..2026-09-15)" in shown and "collection window: calendar-month" in shown
    data = json.loads(
        runner.invoke(
            app,
            [
                "metrics",
                "--db",
                url,
                "--quarter",
                "2026Q1",
                "--as-of",
                "2026-04-30",
                "--collection-window",
                "30-days",
                "--json",
            ],
        ).stdout
    )
    (row,) = data["metrics"]["collection_rate_30d"]["rows"]
    in_major = (str(from_minor(2 * K, "CNY")), str(from_minor(5 * K, "CNY")))  # as --json writes money
    assert (data["collection_window"], row["numerator"], row["denominator"]) == ("30-days", *in_major)

    report = runner.invoke(app, ["report", "quarterly", "--quarter", "2026Q3", "--out", str(tmp_path), "--db", url])
    assert report.exit_code == 0, report.output
    stem = tmp_path / "quarterly-2026Q3"
    data = json.loads(stem.with_suffix(".json").read_text())
    assert (data["partly_closed"], data["closed_range"], data["as_of"], data["collection_window"]) == (
        True,
        {"start": "2026-07-01", "end": "2026-09-15"},
        "2026-09-15",
        "calendar-month",
    )
    risk = {r["metric"]: r["total"] for r in data["risk_indicators"]}
    assert (risk["delinquency_90_plus_rate"], risk["balance_over_180"]) == (0.75, f"{3 * K / 100:.2f}")
    pdf = " ".join(" ".join(page.extract_text() for page in PdfReader(stem.with_suffix(".pdf")).pages).split())
    for expected in (
        "Partial quarter: the figures cover 2026-07-01 to 2026-09-15 only (the book is closed through 2026-09-15)",
        "More than 180 DPD, not written off",
        "75.00%",
        "collection window calendar-month",
    ):
        assert expected in pdf, expected
