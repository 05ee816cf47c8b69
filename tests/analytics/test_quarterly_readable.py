"""The quarterly report as a risk committee reads it, on the hand-worked portfolio: every line by its name and the
currency, revenue apart from the ledger's other income, the previous quarter and the same quarter a year before
beside each figure, balances by bucket and roll rates, charge-offs and provision coverage, model monitoring from
the PDs stored with the decisions behind the loans, a partial quarter marked, and numbered PDF pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from openice.analytics.backends import DuckDBBackend, snapshot
from openice.analytics.definitions import NOT_REVENUE, REVENUE_LABELS, REVENUE_LINES
from openice.analytics.metrics import Metric, MetricSet, Period, compute
from openice.analytics.report import Quarterly, quarterly, write_report
from tests.analytics.portfolio import K, with_decisioning


def written(tables: dict[str, pa.Table], out: Path, quarter: str, as_of: date | None = None) -> dict[str, Any]:
    """The report's JSON, its PDF's text page by page (whitespace as single spaces), and the HTML."""
    backend = DuckDBBackend.from_arrow(tables)
    try:
        q = quarterly(backend, Period.quarter(quarter), as_of)
        paths = write_report(q, out)
    finally:
        backend.close()
    return {
        "q": q,
        "json": json.loads(paths["json"].read_text()),
        "pages": [" ".join(page.extract_text().split()) for page in PdfReader(paths["pdf"]).pages],  # cells wrap
        "html": paths["html"].read_text(),
    }


@pytest.fixture(scope="module")
def tables(portfolio: Callable[[str], Engine]) -> dict[str, pa.Table]:
    return with_decisioning(portfolio("sqlite"))


@pytest.fixture(scope="module")
def q2(tables: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield written(tables, tmp_path_factory.mktemp("q2"), "2026Q2")


def by_metric(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in rows}


def test_every_line_has_its_name_and_the_currency(q2: dict[str, Any]) -> None:
    assert set(REVENUE_LABELS) == {name for name, _ in REVENUE_LINES}
    text = " ".join(q2["pages"])
    assert q2["json"]["currency"] == "CNY" and "Amounts in CNY" in text
    for label in ("Financing income", "Revenue from releasing guarantee liabilities", "Referral fees"):
        assert label in text, label
    assert "21,000.00 CNY" in text  # the previous quarter's volume, in major units with its currency
    for raw in ("credit_driven.", "platform.", "institution_interest", "balance_M4+", "_rate"):
        assert raw not in text and raw not in q2["html"].split("<body>")[1].split("<img")[0], raw
    highlights = by_metric(q2["json"]["business_highlights"])
    assert highlights["outstanding_balance"]["total"] == "4000.00"  # JSON: decimal strings in major units


def test_revenue_total_sets_the_other_income_apart(q2: dict[str, Any]) -> None:
    revenue = q2["json"]["revenue"]
    lines = {r["line"]: r for r in revenue["lines"]}
    metric = {r["group"]["line"]: r["value"] for r in q2["json"]["metrics"]["revenue"]["rows"]}
    expected = sum(v for line, v in metric.items() if line not in NOT_REVENUE)
    assert lines["total"]["total"] == f"{expected / 100:.2f}"
    assert [r["line"] for r in revenue["not_revenue"]] == list(NOT_REVENUE)
    assert {r["line"]: r["total"] for r in revenue["not_revenue"]} == {n: f"{metric[n] / 100:.2f}" for n in NOT_REVENUE}
    text = " ".join(q2["pages"])
    assert "Total revenue" in text and "Not revenue" in text


def test_previous_quarter_and_year_before_beside_each_figure(q2: dict[str, Any], tables: dict[str, pa.Table]) -> None:
    data = q2["json"]
    assert data["compared_with"] == {
        "previous": {"period": {"start": "2026-01-01", "end": "2026-03-31"}, "as_of": "2026-03-31"},
        "year_before": {"period": {"start": "2025-04-01", "end": "2025-06-30"}, "as_of": "2025-06-30"},
    }
    q1 = compute(DuckDBBackend.from_arrow(tables), Period.quarter("2026Q1"))
    for table in ("business_highlights", "risk_indicators", "balances_by_bucket", "charge_offs_and_provisions"):
        for row in data[table]:
            assert {"total", "previous", "year_before", "change_vs_previous", "change_vs_year_before"} <= set(row)
    rows = by_metric(data["business_highlights"] + data["risk_indicators"])
    assert rows["volume"]["previous"] == "21000.00" == f"{q1['volume'].total() / 100:.2f}"
    assert rows["volume"]["year_before"] == "0.00" and rows["volume"]["change_vs_year_before"] is None
    assert rows["outstanding_balance"]["change_vs_previous"] == pytest.approx(
        4_000 * 100 / q1["outstanding_balance"].total() - 1
    )
    day1 = rows["day1_delinquency_rate"]
    assert day1["previous"] == q1["day1_delinquency_rate"].total()
    assert day1["change_basis"] == "percentage points"
    assert day1["change_vs_previous"] == pytest.approx(day1["total"] - day1["previous"])
    text = " ".join(q2["pages"])
    assert "Previous quarter" in text and "Same quarter a year before" in text and " pp" in text

    buckets = by_metric(data["balances_by_bucket"])
    assert (buckets["balance_C"]["total"], buckets["balance_M4+"]["total"]) == ("1000.00", "3000.00")
    rolls = {r["transition"]: r["values"] for r in data["roll_rates"]["rows"]}
    assert data["roll_rates"]["months"] == ["2026-04", "2026-05", "2026-06"]
    assert rolls["M2->M3"]["2026-04"] == 1.0  # L4's 3,000.00 rolled from M2 at March's end to M3 at April's
    assert "Balances by delinquency bucket" in text and "M3 to M4+" in text


def test_charge_offs_and_provision_coverage(tables: dict[str, pa.Table]) -> None:
    """L4 (capital-heavy, never pays): its 600.00 provision becomes the allowance at the payout and covers its
    3,000.00 at 91-180 DPD at June's end (20%); it is written off in August (3,000.00) and recovers 500.00."""
    backend = DuckDBBackend.from_arrow(tables)
    q2 = compute(backend, Period.quarter("2026Q2"))
    assert (q2["provisions_held"].total(), q2["provision_coverage"].total()) == (600 * 100, 0.2)
    q3 = compute(backend, Period.quarter("2026Q3"))
    assert (q3["charge_offs"].total(), q3["recoveries"].total()) == (3 * K, 500 * 100)
    assert (q3["provisions_held"].total(), q3["provision_coverage"].total()) == (0, None)


def test_a_partial_quarter_is_marked_and_compared_over_the_same_days(
    tables: dict[str, pa.Table], q2: dict[str, Any], tmp_path: Path
) -> None:
    report = written(tables, tmp_path, "2026Q2", date(2026, 5, 20))
    data = report["json"]
    assert data["partial"] is True and data["as_of"] == "2026-05-20"
    assert data["compared_with"]["previous"]["as_of"] == "2026-02-19"  # 49 days into each quarter
    assert data["compared_with"]["year_before"]["as_of"] == "2025-05-20"
    assert "Quarterly report 2026Q2 (partial quarter)" in report["pages"][0]
    assert "Partial quarter: the figures cover 2026-04-01 to 2026-05-20 only" in report["pages"][0]
    assert q2["json"]["partial"] is False and "partial" not in " ".join(q2["pages"]).lower()


def test_model_monitoring_from_the_pds_stored_with_decisions(tables: dict[str, pa.Table], q2: dict[str, Any]) -> None:
    """The decisions behind the loans (drawdown -> credit line) carry their PDs: monitoring needs nothing else,
    and gives what it gives when the same PDs are passed in."""
    q: Quarterly = q2["q"]
    lines = {r["id"]: r for r in tables["credit_lines"].to_pylist()}
    given = [(d["loan_id"], lines[d["line_id"]]) for d in tables["drawdowns"].to_pylist()]
    frame = {
        "loan_id": [loan for loan, line in given if line["pd"] is not None],
        "pd": [line["pd"] for _, line in given if line["pd"] is not None],
        "grade": [line["grade"] for _, line in given if line["pd"] is not None],
    }
    expected = compute(DuckDBBackend.from_arrow(tables), Period.quarter("2026Q2"), pd_frame=frame)
    assert q.total["model_monitoring"].rows == expected["model_monitoring"].rows != []
    monitoring = {r["grade"]: r for r in q2["json"]["model_monitoring"]}
    assert monitoring["All grades"]["loans"] == 5  # L7's line carries no PD
    assert monitoring["E"] == {
        "grade": "E",
        "loans": 1,
        "defaulted": 1,
        "realised_default_rate": 1.0,
        "mean_predicted_pd": 0.2,
    }  # L4: PD 20%, 90+ DPD by June's end
    text = " ".join(q2["pages"])
    assert "Mean predicted PD" in text and "no predicted PDs" not in text


def test_no_decisions_says_so(portfolio: Callable[[str], Engine]) -> None:
    tables = snapshot(portfolio("sqlite"))  # the servicing stage alone: its drawdowns table is empty
    result = compute(DuckDBBackend.from_arrow(tables), Period.quarter("2026Q1"))
    assert result["model_monitoring"].rows == []
    assert result["model_monitoring"].note == "no loan disbursed by the as-of date carries a predicted PD"


def test_pdf_pages_are_numbered(q2: dict[str, Any]) -> None:
    pages = q2["pages"]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text, number


def test_a_metric_sets_revenue_leaves_out_the_income_that_is_not_the_platforms() -> None:
    """The simulation's and the CLI's revenue (`MetricSet.total_revenue`) is the report's "Total revenue": the
    institutions' interest and the recoveries are the ledger's income, not the platform's revenue."""
    quarter = Period.quarter("2026Q2")
    m = MetricSet(quarter, quarter.end, (), "duckdb", currencies=("CNY",))
    values = {"platform.referral_fees": 700, "technology.fees": 300, "institution_interest": 5_000, "recoveries": 90}
    m.add(Metric("revenue", "money", [{"group": {"line": k}, "value": v} for k, v in values.items()]))
    assert m.total_revenue == 1_000
