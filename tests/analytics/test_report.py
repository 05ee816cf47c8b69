"""`openice report quarterly` on the hand-worked portfolio: a real PDF that shows the numbers, a JSON
equal to `compute`, charts embedded (nothing fetched)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from openice.analytics.backends import DuckDBBackend, SparkBackend, snapshot, write_parquet
from openice.analytics.metrics import FACT_STEPS, METRIC_STEPS, STEPS, Period, compute, compute_splits
from openice.cli import app
from openice.errors import ValidationError
from tests.analytics.portfolio import K


def test_quarterly_report(portfolio: Callable[[str], Engine], tmp_path: Path) -> None:
    engine = portfolio("sqlite")
    result = CliRunner().invoke(
        app,
        [
            "report",
            "quarterly",
            "--quarter",
            "2026Q1",
            "--out",
            str(tmp_path),
            "--db",
            engine.url.render_as_string(hide_password=False),
        ],
    )
    assert result.exit_code == 0, result.output
    stem = tmp_path / "quarterly-2026Q1"

    data = json.loads(stem.with_suffix(".json").read_text())
    backend = DuckDBBackend.from_arrow(snapshot(engine))
    for key, by in (("metrics", ()), ("metrics_by_model_group", ("model_group",))):
        expected = compute(backend, Period.quarter("2026Q1"), by=by).to_dict()["metrics"]
        assert data[key] == json.loads(json.dumps(expected)), key
    highlights = {r["metric"]: r for r in data["business_highlights"] + data["risk_indicators"]}
    assert highlights["volume"]["total"] == "21000.00"  # the tables' amounts: decimal strings in major units
    assert highlights["volume"]["by_model"] == {"capital-heavy": "12000.00", "capital-light": "9000.00"}
    assert highlights["day1_delinquency_rate"]["total"] == 4 / 9
    assert highlights["cumulative_borrowers"]["total"] == 5

    pdf = stem.with_suffix(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    reader = PdfReader(pdf)
    text = " ".join(page.extract_text() for page in reader.pages)
    for expected_text in (
        "Quarterly report 2026Q1",
        "Business highlights",
        "Risk indicators",
        "Total revenue",
        "Day-1 delinquency rate",
        "44.44%",
        "30-day collection rate",
        "25.00%",
        "90 day+ delinquency rate",
        "21,000.00",
        "12,000.00",
        "Vintage curves",
        "Delinquency trend",
        "Volume mix",
    ):
        assert expected_text in text, expected_text
    assert len({image.name for page in reader.pages for image in page.images}) == 3  # pages share resources

    html = stem.with_suffix(".html").read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in html


def test_quarterly_report_on_every_engine(portfolio: Callable[[str], Engine], spark: Any, tmp_path: Path) -> None:
    """The same report from PostgreSQL in place, DuckDB and Spark (on snapshots of it): HTML, PDF and JSON
    written by each, and the JSON equal but for the engine's name."""
    source = portfolio("postgres")
    with source.connect() as conn:  # the portfolio's own schema, for the CLI's connections
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    url = source.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    reports = {}
    for engine in ("duckdb", "postgres", "spark"):
        result = CliRunner().invoke(
            app,
            [
                "report",
                "quarterly",
                "--quarter",
                "2026Q1",
                "--out",
                str(tmp_path / engine),
                "--db",
                url,
                "--engine",
                engine,
            ],
        )
        assert result.exit_code == 0, (engine, result.output)
        stem = tmp_path / engine / "quarterly-2026Q1"
        assert stem.with_suffix(".pdf").read_bytes().startswith(b"%PDF-"), engine
        assert "Quarterly report 2026Q1" in stem.with_suffix(".html").read_text(), engine
        reports[engine] = json.loads(stem.with_suffix(".json").read_text())
        assert reports[engine].pop("engine") == engine
    assert reports["postgres"] == reports["duckdb"]
    assert reports["spark"] == reports["duckdb"]
    assert reports["duckdb"]["metrics"]["volume"]["rows"] == [{"group": {}, "value": 21 * K}]


def test_metrics_command_and_its_steps(portfolio: Callable[[str], Engine]) -> None:
    """`openice metrics --json` prints `compute`'s metrics (money in major units) and nothing else on stdout (the
    progress bar is on stderr); `compute` reports each of its steps, in order, as it finishes them."""
    engine = portfolio("sqlite")
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["metrics", "--db", url, "--quarter", "2026Q1", "--json"])
    assert result.exit_code == 0, result.output
    steps: list[str] = []
    expected = compute(DuckDBBackend.from_arrow(snapshot(engine)), Period.quarter("2026Q1"), on_step=steps.append)
    assert json.loads(result.stdout)["metrics"] == json.loads(json.dumps(expected.to_major_units()["metrics"]))
    assert tuple(steps) == STEPS

    table = CliRunner().invoke(app, ["metrics", "--db", url, "--quarter", "2026Q1"])
    assert table.exit_code == 0 and "Day-1 delinquency" in table.stdout, table.output


def test_splits_share_one_build_of_the_facts(portfolio: Callable[[str], Engine]) -> None:
    """`compute_splits` builds the fact tables once and gives each split what `compute` gives it alone."""
    tables = snapshot(portfolio("sqlite"))
    period, splits = Period.quarter("2026Q1"), [(), ("model_group",), ("institution", "product")]
    steps: list[str] = []
    results = compute_splits(DuckDBBackend.from_arrow(tables), period, splits=splits, on_step=steps.append)
    assert steps == list(FACT_STEPS) + list(METRIC_STEPS) * len(splits)
    for by, result in zip(splits, results, strict=True):
        assert result.to_dict() == compute(DuckDBBackend.from_arrow(tables), period, by=by).to_dict(), by
    with pytest.raises(ValidationError, match="at least one split"):
        compute_splits(DuckDBBackend.from_arrow(tables), period, splits=[])
    before = len(steps)
    with pytest.raises(ValidationError, match="unknown split"):
        compute_splits(DuckDBBackend.from_arrow(tables), period, splits=[(), ("colour",)], on_step=steps.append)
    assert len(steps) == before  # refused before any fact table was built


def test_a_bad_pd_frame_is_refused_before_any_work(portfolio: Callable[[str], Engine]) -> None:
    backend = DuckDBBackend.from_arrow(snapshot(portfolio("sqlite")))
    steps: list[str] = []
    with pytest.raises(ValidationError, match="between 0 and 1"):
        compute(
            backend,
            Period.quarter("2026Q1"),
            pd_frame={"loan_id": [1], "pd": [1.5], "grade": ["A"]},
            on_step=steps.append,
        )
    assert steps == [] and not backend.has_table("lf")


def test_spark_reads_a_snapshot_by_uri(portfolio: Callable[[str], Engine], spark: Any, tmp_path: Path) -> None:
    """A snapshot named by a URI is listed and read through Spark's Hadoop file system (file:// here; s3a:// and
    hdfs:// take the same path on a cluster) and gives DuckDB's numbers. A URI that does not list, or one given to
    DuckDB, is refused with the field named."""
    directory = write_parquet(snapshot(portfolio("sqlite")), tmp_path / "snapshot")
    period = Period.quarter("2026Q1")
    backend = SparkBackend.from_parquet(directory.as_uri() + "/", spark=spark)
    try:
        got = compute(backend, period).to_dict()
    finally:
        backend.close()
    computed = compute(DuckDBBackend.from_parquet(directory), period)
    expected = computed.to_dict()
    assert (got.pop("engine"), expected.pop("engine")) == ("spark", "duckdb")
    assert got == expected

    with pytest.raises(ValidationError, match="has no loans table") as error:
        SparkBackend.from_parquet(tmp_path.as_uri(), spark=spark)
    assert error.value.field == "parquet"
    with pytest.raises(ValidationError, match="cannot list .*FileNotFoundException"):
        SparkBackend.from_parquet((tmp_path / "missing").as_uri(), spark=spark)
    with pytest.raises(ValidationError, match='cannot list .*No FileSystem for scheme "nosuch"'):
        SparkBackend.from_parquet("nosuch://bucket/snapshot", spark=spark)
    for engine in ("spark", "duckdb"):
        result = CliRunner().invoke(
            app, ["metrics", "--engine", engine, "--parquet", directory.as_uri(), "--as-of", "2026-03-31", "--json"]
        )
        if engine == "spark":  # the session the test started serves the command too (one JVM per process)
            assert result.exit_code == 0, result.output
            in_major_units = computed.to_major_units()["metrics"]  # as the command prints money
            assert json.loads(result.stdout)["metrics"] == json.loads(json.dumps(in_major_units))
        else:
            assert result.exit_code == 2 and "use --engine spark" in result.output, result.output
