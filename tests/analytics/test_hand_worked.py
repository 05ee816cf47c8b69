"""Every metric of the hand-worked portfolio (tests/analytics/portfolio.py), computed on DuckDB from a
snapshot of SQLite and of PostgreSQL, equals the value worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text

from openice.analytics.backends import (
    OPTIONAL,
    DuckDBBackend,
    PostgresBackend,
    SparkBackend,
    snapshot,
    write_parquet,
)
from openice.analytics.metrics import MetricSet, Period, compute
from openice.storage.days import to_day
from tests.analytics.portfolio import K, with_decisioning


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def source(request: pytest.FixtureRequest, portfolio: Callable[[str], Engine]) -> Engine:
    """The portfolio, built once per source database (Spark, for the engine check, boots meanwhile)."""
    if request.param == "postgres" and request.getfixturevalue("pg_ok"):
        request.getfixturevalue("spark_starting")
    return portfolio(request.param)


@pytest.fixture(scope="module")
def tables(source: Engine) -> dict[str, pa.Table]:
    return with_decisioning(source)


def run(tables: dict[str, pa.Table], quarter: str, as_of: date | None = None, by: tuple[str, ...] = ()) -> MetricSet:
    return compute(DuckDBBackend.from_arrow(tables), Period.quarter(quarter), as_of, by)


def ratio(result: MetricSet, name: str) -> tuple[int, int]:
    (row,) = result[name].rows
    return row["numerator"], row["denominator"]


def test_hand_worked_portfolio(
    source: Engine, tables: dict[str, pa.Table], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """One test per source database, so that parallel workers build each portfolio only once."""
    check_first_quarter(tables)
    check_later_as_of_and_quarters(tables)
    check_splits_add_up(tables)
    check_absent_decisioning_tables(tables)
    check_model_monitoring(tables)
    check_facts_built_in_parts(tables)
    check_ledger_ties_out(source, tables)
    if source.dialect.name == "postgresql":
        check_engines_agree(source, request.getfixturevalue("spark"), tmp_path)


def check_engines_agree(source: Engine, spark: Any, tmp_path: Path) -> None:
    """PostgreSQL in place, DuckDB and Spark on a Parquet snapshot: the same numbers, split or not."""
    parquet = write_parquet(snapshot(source), tmp_path / "snapshot")
    loans = pq.read_table(parquet / "loans.parquet").column("id").to_pylist()
    pds = {
        "loan_id": loans,
        "pd": [0.05 * (k % 4 + 1) for k in range(len(loans))],
        "grade": ["ABCD"[k % 4] for k in range(len(loans))],
    }
    backends = [
        PostgresBackend(source),
        DuckDBBackend.from_parquet(parquet),
        SparkBackend.from_parquet(parquet, spark=spark),
    ]
    try:
        for quarter, by in (
            ("2026Q1", ()),
            ("2026Q2", ("business_model", "channel")),
            ("2026Q3", ("institution", "origination_month")),
        ):
            results = []
            for backend in backends:
                data = compute(backend, Period.quarter(quarter), by=by, pd_frame=pds).to_dict()
                data.pop("engine")
                results.append(data)
            assert results[0]["metrics"]["model_monitoring"]["rows"]
            for name, metric in results[1]["metrics"].items():
                assert results[0]["metrics"][name] == metric, (quarter, name, "postgres vs duckdb")
                assert results[2]["metrics"][name] == metric, (quarter, name, "spark vs duckdb")
            assert results[0] == results[1] == results[2]
    finally:
        for backend in backends:
            backend.close()


def check_first_quarter(tables: dict[str, pa.Table]) -> None:
    q1 = run(tables, "2026Q1")
    # Due in Q1: L1 x2, L4 x2, L5 x1, L6 x2, L7 x2 (L3's prepayment settled before anything fell due).
    # Not paid by the end of the due date: L1 03-15 (paid a day late), L4 both, L6 03-15 (payment reversed).
    assert ratio(q1, "day1_delinquency_rate") == (4 * K, 9 * K)
    # Within 30 days and by 03-31, only L1's late installment was collected.
    assert ratio(q1, "collection_rate_30d") == (K, 4 * K)
    # First installments due in Q1: L1, L4, L5, L6, L7; only L4 missed it.
    assert ratio(q1, "fpd_rate") == (1, 5)
    assert q1["loans_originated"].total() == 6
    assert q1["volume"].total() == 21 * K
    assert q1["facilitation_volume"].total() == 12 * K  # capital-light and capital-heavy
    assert q1["origination_volume"].total() == 9 * K  # on balance sheet
    assert q1["technology_volume"].total() == 0
    assert ratio(q1, "wa_contractual_tenor_months") == (5 * 3 * 3 * K + 6 * 6 * K, 21 * K)
    assert ratio(q1, "repeat_borrower_contribution") == (3 * K, 21 * K)  # L5, b1's second drawdown
    # 03-31: L1 1 left (C), L4 3 (45 DPD, M2), L5 2 (C), L6 2 (17 DPD, M1), L7 4 (C).
    assert q1["outstanding_balance"].total() == 12 * K
    assert q1["loans_outstanding"].total() == 5
    assert (q1["balance_C"].total(), q1["balance_M1"].total(), q1["balance_M2"].total()) == (7 * K, 2 * K, 3 * K)
    assert ratio(q1, "delinquency_90_plus_rate") == (0, 12 * K)
    assert q1["cumulative_borrowers"].total() == 5
    assert q1["cumulative_registered_users"].total() == 6  # registered by day 20_543 (2026-03-31)
    assert q1["cumulative_approved_users"].total() == 4  # b1 twice counts once; b5 approved later
    # Funding cost over institution balances: bank-a 6 at 5%, bank-b 2 at 8%; the platform's 4 uncovered.
    (row,) = q1["blended_funding_cost"].rows
    assert (row["value"], row["uncovered_balance"]) == (pytest.approx(0.0575), 4 * K)
    # L4's provision: 1% x 3 K on 01-31 (current), trued up to 20% x 3 K on 02-28 (M1); the payout uses it.
    assert q1["provision_for_contingent_liabilities"].total() == 3_000 + 57_000
    revenue = {r["group"]["line"]: r["value"] for r in q1["revenue"].rows}
    assert revenue.pop("platform.referral_fees") == 3 * 750  # L1, L5, L6: 25 bp of 3 K each
    assert all(v == 0 for v in revenue.values())  # no interest, no other fees
    # Vintages: January (L1, L3, L4, L6, L7 = 18 K); L4 went 30+ on 03-17 (MOB 2) and 90+ on 05-16.
    v30 = {
        r["group"]["mob"]: r["value"]
        for r in q1["vintage_30_plus"].rows
        if r["group"]["origination_month"] == "2026-01"
    }
    assert v30 == {0: 0.0, 1: 0.0, 2: pytest.approx(1 / 6)}
    assert all(r["value"] == 0 for r in q1["vintage_90_plus"].rows)
    rolls = {
        (r["group"]["month"], r["group"]["transition"]): (r["numerator"], r["denominator"])
        for r in q1["roll_rates"].rows
    }
    assert rolls[("2026-02", "C->M1")] == (3 * K, 18 * K)
    assert rolls[("2026-03", "C->M1")] == (2 * K, 12 * K)
    assert rolls[("2026-03", "M1->M2")] == (3 * K, 3 * K)


def check_later_as_of_and_quarters(tables: dict[str, pa.Table]) -> None:
    late = run(tables, "2026Q1", as_of=date(2026, 4, 30))
    assert ratio(late, "collection_rate_30d") == (2 * K, 4 * K)  # L6 paid on 04-10, 26 days late
    assert late["balance_M3"].total() == 3 * K  # L4 at 75 DPD
    q2 = run(tables, "2026Q2")
    assert ratio(q2, "day1_delinquency_rate") == (K, 8 * K)  # only L4's 04-15 installment
    assert ratio(q2, "delinquency_90_plus_rate") == (3 * K, 4 * K)  # L4 at 136 DPD; L7 has 1 left
    v90 = {
        r["group"]["mob"]: r["numerator"]
        for r in q2["vintage_90_plus"].rows
        if r["group"]["origination_month"] == "2026-01"
    }
    assert v90 == {0: 0, 1: 0, 2: 0, 3: 0, 4: 3 * K, 5: 3 * K}
    assert q2["provision_for_contingent_liabilities"].total() == 0  # no live guarantee left
    q3 = run(tables, "2026Q3")
    assert q3["outstanding_balance"].total() == 0  # L4 written off on 08-14, L7 repaid
    assert ratio(q3, "day1_delinquency_rate") == (0, K)  # L7's last installment, paid on the day
    revenue = {r["group"]["line"]: r["value"] for r in q3["revenue"].rows}
    assert revenue["recoveries"] == 50_000 and sum(revenue.values()) == 50_000
    assert q3["provision_for_contingent_liabilities"].total() == 0  # the write-off uses the allowance


def check_splits_add_up(tables: dict[str, pa.Table]) -> None:
    total = run(tables, "2026Q1")
    for by in (("business_model",), ("institution",), ("channel",), ("product", "origination_month")):
        split = run(tables, "2026Q1", by=by)
        for name in ("day1_delinquency_rate", "collection_rate_30d", "delinquency_90_plus_rate"):
            assert sum(r["numerator"] for r in split[name].rows) == total[name].rows[0]["numerator"], (by, name)
            assert sum(r["denominator"] for r in split[name].rows) == total[name].rows[0]["denominator"]
        for name in ("volume", "outstanding_balance", "loans_originated", "provision_for_contingent_liabilities"):
            assert sum(r["value"] for r in split[name].rows) == total[name].total(), (by, name)
    by_model = run(tables, "2026Q1", by=("model_group",))
    assert {r["group"]["model_group"]: r["value"] for r in by_model["volume"].rows} == {
        "capital-light": 9 * K,
        "capital-heavy": 12 * K,
    }
    by_channel = run(tables, "2026Q1", by=("channel",))
    assert {r["group"]["channel"]: r["numerator"] for r in by_channel["day1_delinquency_rate"].rows} == {
        "direct": 3 * K,
        "partner": K,
    }


def check_absent_decisioning_tables(tables: dict[str, pa.Table]) -> None:
    result = run({k: v for k, v in tables.items() if k not in OPTIONAL}, "2026Q1")
    for name in ("cumulative_registered_users", "cumulative_approved_users", "blended_funding_cost"):
        assert result[name].total() is None
        assert "unavailable" in (result[name].note or "")


def check_model_monitoring(tables: dict[str, pa.Table]) -> None:
    loans = sorted(tables["loans"].column("id").to_pylist())
    frame = {"loan_id": loans, "pd": [0.1, 0.1, 0.4, 0.1, 0.1, 0.2], "grade": ["A", "A", "C", "A", "A", "B"]}
    result = compute(DuckDBBackend.from_arrow(tables), Period.quarter("2026Q3"), pd_frame=frame)
    rows = {(r["group"]["origination_month"], r["group"]["grade"]): r for r in result["model_monitoring"].rows}
    assert (rows[("2026-01", "C")]["value"], rows[("2026-01", "C")]["predicted_pd"]) == (1.0, pytest.approx(0.4))
    assert rows[("2026-01", "A")]["numerator"] == 0 and rows[("2026-01", "A")]["denominator"] == 4


def check_facts_built_in_parts(tables: dict[str, pa.Table]) -> None:
    """Installment facts built in loan-id ranges (as DuckDB does for large portfolios) change nothing."""
    backend = DuckDBBackend.from_arrow(tables)
    backend.loans_per_part = 2
    assert len(backend.loan_ranges()) == 3
    for quarter, by in (("2026Q1", ()), ("2026Q2", ("business_model",))):
        assert compute(backend, Period.quarter(quarter), by=by).to_dict() == run(tables, quarter, by=by).to_dict()


def check_ledger_ties_out(source: Engine, tables: dict[str, pa.Table]) -> None:
    """The referral fees and the provision reported are the ledger's own balances for the quarter, to the cent."""
    for quarter, referral, provision, credit_loss in (
        ("2026Q1", 3 * 750, 60_000, 0),
        ("2026Q2", 0, 0, 0),
        ("2026Q3", 0, 0, 3 * K - 60_000),
    ):
        period = Period.quarter(quarter)
        with source.connect() as conn:
            ledger = dict(
                conn.execute(
                    text(
                        "SELECT j.account, SUM(j.amount) FROM journal_lines j "
                        "JOIN journal_entries e ON e.id = j.entry_id "
                        "WHERE e.business_day BETWEEN :s AND :e GROUP BY j.account"
                    ),
                    {"s": to_day(period.start), "e": to_day(period.end)},
                ).all()
            )
        result = run(tables, quarter)
        lines = {r["group"]["line"]: r["value"] for r in result["revenue"].rows}
        assert lines["platform.referral_fees"] == -ledger.get("referral_fee_income", 0) == referral, quarter
        assert (
            result["provision_for_contingent_liabilities"].total() == ledger.get("provision_expense", 0) == provision
        ), quarter
        assert ledger.get("credit_loss_expense", 0) == credit_loss, quarter
