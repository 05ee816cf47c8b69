"""The funding mix, worked by hand on the funding portfolio (tests/analytics/portfolio.py, `build_funding`), from
SQLite and PostgreSQL, on DuckDB, PostgreSQL, Spark and the pandas baseline alike: each loan's funding source at the
as-of date (a trust's loans a source of their own, a guarantee paid out moves a loan to platform capital from the
payout day, a sale into a deal to the deal from its transfer day), each source's blended funding cost (a deal's from
its notes' coupons), the shares of the outstanding balance by platform model, ABS issued in the period, and a sold
loan's income left to its trust."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bench.pandas_baseline import PandasBackend
from openice.analytics.backends import Backend, DuckDBBackend, PostgresBackend, SparkBackend, snapshot, write_parquet
from openice.analytics.definitions import NOT_REVENUE
from openice.analytics.metrics import MetricSet, Period, compute
from openice.analytics.report import quarterly, render_html, report_data
from openice.cli import app
from openice.matching.institutions import INSTITUTION_KINDS
from openice.servicing.loan import DEAL_FUNDER_PREFIX
from openice.servicing.sources import (
    ICE_CHANNEL,
    TRUST_KIND,
    FundingSource,
    PlatformModel,
    deal_cost_ppm,
    funding_source,
    funding_source_sql,
    platform_model,
    platform_model_sql,
)
from tests.analytics.portfolio import DEAL_FUNDER, K

Q1 = Period.quarter("2026Q1")
QUARTER_END, BEFORE_PAYOUT, BEFORE_DEAL = date(2026, 3, 31), date(2026, 3, 15), date(2026, 2, 28)
FUNDING = ("funding_source_balance", "blended_funding_cost_by_source", "platform_model_share", "abs_issued", "revenue")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def source(request: pytest.FixtureRequest, funding_portfolio: Callable[[str], Engine]) -> Engine:
    return funding_portfolio(request.param)


def rows(result: MetricSet, name: str, key: str) -> dict[Any, dict[str, Any]]:
    return {r["group"][key]: r for r in result[name].rows}


def values(result: MetricSet, name: str, key: str) -> dict[Any, Any]:
    return {k: r["value"] for k, r in rows(result, name, key).items()}


def test_the_class_is_written_once() -> None:
    """The SQL the engines run gives what the domain's functions give, for every funder and model."""
    con = duckdb.connect()
    funders = ("bank-a", "platform", DEAL_FUNDER, "ABS", "abs:lower", "TRUST-GUAR")
    for funder in funders:
        for kind in (None, *INSTITUTION_KINDS):
            sql = funding_source_sql(repr(funder), repr(kind) if kind else "NULL")
            (got,) = con.execute(f"SELECT {sql}").fetchall()[0]
            assert got == funding_source(funder, kind).value, (funder, kind)
    assert funding_source(DEAL_FUNDER) is FundingSource.ABS_DEAL and DEAL_FUNDER.startswith(DEAL_FUNDER_PREFIX)
    # a trust's loans are their own source; a trust's kind does not change platform capital or a deal
    assert [funding_source("bank-b", k) for k in (TRUST_KIND, "bank", None)] == [
        FundingSource.TRUST,
        FundingSource.INSTITUTION,
        FundingSource.INSTITUTION,
    ]
    assert funding_source("platform", TRUST_KIND) is FundingSource.PLATFORM_CAPITAL and TRUST_KIND in INSTITUTION_KINDS
    for model in ("capital-light", "capital-heavy", "on-balance-sheet", "technology"):
        for channel in ("direct", "partner", ICE_CHANNEL):
            (got,) = con.execute(f"SELECT {platform_model_sql(repr(model), repr(channel))}").fetchall()[0]
            assert got == platform_model(model, channel).value, (model, channel)
    assert platform_model("capital-light", ICE_CHANNEL) is PlatformModel.ICE


def test_deal_cost_from_its_notes() -> None:
    """Coupons weighted by the notes' balances, the residual tranche outside the weights, half-up to the ppm."""
    # (1,200.00 x 4% + 400.00 x 8%) / 1,600.00 = 5%.
    assert deal_cost_ppm([(120_000, "0.04"), (40_000, "0.08"), (40_000, None)]) == 50_000
    # (2 x 3% + 1 x 4%) / 3 = 3.3333...% = 33,333.33 ppm, half-up to 33,333.
    assert deal_cost_ppm([(200, "0.03"), (100, "0.04"), (5, None)]) == 33_333
    # (1 x 0.0001% + 1 x 0) / 2 = 0.5 ppm, half-up to 1.
    assert deal_cost_ppm([(1, "0.000001"), (1, "0")]) == 1
    assert deal_cost_ppm([(100, None)]) is None  # no notes: no cost on file


def test_funding_mix_by_hand(source: Engine) -> None:
    tables = snapshot(source)
    check_quarter_end(compute(DuckDBBackend.from_arrow(tables), Q1, QUARTER_END))
    check_before_payout(compute(DuckDBBackend.from_arrow(tables), Q1, BEFORE_PAYOUT))
    check_before_deal(compute(DuckDBBackend.from_arrow(tables), Q1, BEFORE_DEAL))
    quarter = compute(DuckDBBackend.from_arrow(tables), Q1, QUARTER_END)
    check_abs_issued(quarter)
    check_trust_income(quarter)
    check_kept_on_balance_sheet(compute(DuckDBBackend.from_arrow(kept(tables)), Q1, QUARTER_END))
    check_split_by_model(compute(DuckDBBackend.from_arrow(tables), Q1, QUARTER_END, ("business_model",)))
    without = {k: v for k, v in tables.items() if k != "institutions"}
    check_without_costs(compute(DuckDBBackend.from_arrow(without), Q1, QUARTER_END))


def check_quarter_end(result: MetricSet) -> None:
    # 03-31: F1 1 K with bank-a, a bank; F2 2 K and F4 1 K with bank-b, a trust; F3 3 K (paid out on 03-16) and F5
    # 2 K the platform's; F6 1 K the deal's. Every loan is within 180 DPD, so the sources add up to the outstanding
    # balance.
    balance = values(result, "funding_source_balance", "source")
    assert balance == {"institution": K, "trust": 3 * K, "platform-capital": 5 * K, "abs-deal": K}
    assert sum(balance.values()) == result["outstanding_balance"].total() == 10 * K
    cost = rows(result, "blended_funding_cost_by_source", "source")
    # bank-a 1 K (F1) at 5%: 50,000 ppm x K / K; bank-b 3 K (F2, F4) at 8%: 3 x 80,000 ppm x K / 3 K = 80,000 ppm.
    assert (cost["institution"]["numerator"], cost["institution"]["denominator"]) == (50_000 * K, K)
    assert (cost["trust"]["numerator"], cost["trust"]["denominator"]) == (240_000 * K, 3 * K)
    assert (cost["institution"]["value"], cost["trust"]["value"]) == (pytest.approx(0.05), pytest.approx(0.08))
    assert cost["institution"]["uncovered_balance"] == cost["trust"]["uncovered_balance"] == 0
    # No cost on file for the platform's capital: its balance is left out, and said.
    assert (cost["platform-capital"]["value"], cost["platform-capital"]["uncovered_balance"]) == (None, 5 * K)
    # DEAL-1's notes: (1,200.00 x 4% + 400.00 x 8%) / 1,600.00 = 80.00 / 1,600.00 = 5% = 50,000 ppm, the residual
    # tranche R (400.00, no coupon) outside the weights; weighted by F6's 1 K.
    assert (cost["abs-deal"]["numerator"], cost["abs-deal"]["denominator"]) == (50_000 * K, K)
    assert (cost["abs-deal"]["value"], cost["abs-deal"]["uncovered_balance"]) == (pytest.approx(0.05), 0)
    # The blended cost over the original funders still weighs F3 with bank-a: (4 x 50,000 + 3 x 80,000) / 7.
    (blended,) = result["blended_funding_cost"].rows
    assert (blended["numerator"], blended["denominator"]) == (440_000 * K, 7 * K)
    # Shares of 10 K: F1 capital-light 1 K, F2 matched by the open platform 2 K, F4 technology 1 K, and F3 (guaranteed),
    # F5 and F6 (on balance sheet, F6 since sold into the deal) 6 K capital-heavy.
    share = rows(result, "platform_model_share", "platform_model")
    assert {k: (r["numerator"], r["denominator"]) for k, r in share.items()} == {
        "capital-light": (K, 10 * K),
        "ice": (2 * K, 10 * K),
        "technology": (K, 10 * K),
        "capital-heavy": (6 * K, 10 * K),
    }
    (free,) = result["capital_light_ice_technology_share"].rows
    assert (free["numerator"], free["denominator"], free["value"]) == (4 * K, 10 * K, pytest.approx(0.4))


def check_before_deal(result: MetricSet) -> None:
    # 02-28, before DEAL-1 was issued on 03-01: F6 (2 K after its 02-15 payment) is still the platform's, though its
    # funder today is the deal's. Institutions: F1 2 K + F3 3 K (bank-a's until its payout) = 5 K; the trust: F2 2 K +
    # F4 2 K = 4 K; platform capital: F5 2 K + F6 2 K = 4 K; nothing in a deal.
    assert values(result, "funding_source_balance", "source") == {
        "institution": 5 * K,
        "trust": 4 * K,
        "platform-capital": 4 * K,
        "abs-deal": 0,
    }
    cost = rows(result, "blended_funding_cost_by_source", "source")
    assert (cost["abs-deal"]["value"], cost["abs-deal"]["denominator"]) == (None, 0)
    assert cost["platform-capital"]["uncovered_balance"] == 4 * K
    # The quarter up to 02-28 issued no deal; the book's currency still has its row.
    assert values(result, "abs_issued", "currency") == {"CNY": 0}


def check_abs_issued(result: MetricSet) -> None:
    # DEAL-1 issued on 03-01 over a pool of 2 K (F6 after its 02-15 payment), in CNY.
    assert [(r["group"], r["value"]) for r in result["abs_issued"].rows] == [({"currency": "CNY"}, 2 * K)]


def check_trust_income(result: MetricSet) -> None:
    """F6 (12% a year) accrues 16.45 on 01-31, 13.55 on 02-14 (30.00 due on 02-15 = 3,000.00 x 1%), 10.00 on 02-28,
    10.00 on 03-14 (20.00 due on 03-15 = 2,000.00 x 1%) and 5.48 on 03-31. Sold off the balance sheet on 03-01: the
    platform's financing income is what it booked before, 16.45 + 13.55 + 10.00 = 40.00; the trust's, 10.00 + 5.48
    = 15.48, set apart from revenue. F5 and F3 earn no interest (FLAT)."""
    lines = values(result, "revenue", "line")
    assert (lines["credit_driven.financing_income"], lines["abs_trust_income"]) == (4_000, 1_548)
    assert "abs_trust_income" in NOT_REVENUE
    assert result.total_revenue == sum(v for k, v in lines.items() if k not in NOT_REVENUE)


def check_kept_on_balance_sheet(result: MetricSet) -> None:
    """The same deal kept on the balance sheet: the loan is still the platform's asset, and all of F6's 55.48 is its
    financing income."""
    lines = values(result, "revenue", "line")
    assert (lines["credit_driven.financing_income"], lines["abs_trust_income"]) == (5_548, 0)


def kept(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The snapshot with every deal kept on the balance sheet."""
    deals = tables["abs_deals"]
    column = deals.schema.get_field_index("derecognise")
    flags = pa.array([False] * deals.num_rows, type=pa.bool_())
    return {**tables, "abs_deals": deals.set_column(column, "derecognise", flags)}


def check_before_payout(result: MetricSet) -> None:
    # 03-15: the same balances, but F3's guarantee is paid out only on 03-16: it is still bank-a's.
    assert values(result, "funding_source_balance", "source") == {
        "institution": 4 * K,
        "trust": 3 * K,
        "platform-capital": 2 * K,
        "abs-deal": K,
    }
    cost = rows(result, "blended_funding_cost_by_source", "source")["institution"]
    # bank-a 4 K (F1, F3) at 5%: 200,000 ppm x K / 4 K = 5%.
    assert (cost["numerator"], cost["denominator"]) == (200_000 * K, 4 * K)
    assert cost["value"] == pytest.approx(0.05)


def check_split_by_model(result: MetricSet) -> None:
    """Each business model's sources, and every source and share in every group (zero where none)."""
    balance = {
        (r["group"]["business_model"], r["group"]["source"]): r["value"] for r in result["funding_source_balance"].rows
    }
    assert {k: v for k, v in balance.items() if v} == {
        ("capital-light", "institution"): K,
        ("capital-light", "trust"): 2 * K,
        ("capital-heavy", "platform-capital"): 3 * K,
        ("technology", "trust"): K,
        ("on-balance-sheet", "platform-capital"): 2 * K,
        ("on-balance-sheet", "abs-deal"): K,
    }
    assert len(balance) == 4 * len(FundingSource)
    shares = result["platform_model_share"].rows
    assert len(shares) == 4 * len(PlatformModel)
    for model in ("capital-light", "capital-heavy", "technology", "on-balance-sheet"):
        of_model = [r for r in shares if r["group"]["business_model"] == model]
        assert sum(r["numerator"] for r in of_model) == of_model[0]["denominator"]


def check_without_costs(result: MetricSet) -> None:
    """No institutions table: the balances by source stand, the trust's with the institutions' as no kind is known
    (F1 1 K + F2 2 K + F4 1 K), the costs are unavailable and say why."""
    balance = values(result, "funding_source_balance", "source")
    assert (balance["institution"], balance["trust"]) == (4 * K, 0)
    cost = result["blended_funding_cost_by_source"]
    assert all(r["value"] is None for r in cost.rows) and "no institutions table" in (cost.note or "")


def _plain(result: MetricSet) -> dict[str, Any]:
    return {name: result.to_dict()["metrics"][name] for name in (*FUNDING, "capital_light_ice_technology_share")}


def test_every_engine_agrees(source: Engine, spark: Any, tmp_path: Path) -> None:
    """DuckDB, Spark on a Parquet copy, the pandas baseline and PostgreSQL in place: the same figures, split or not."""
    tables = snapshot(source)
    parquet = write_parquet(tables, tmp_path / "snapshot")
    for as_of in (QUARTER_END, BEFORE_PAYOUT, BEFORE_DEAL):
        for by in ((), ("institution",)):
            backends: list[Backend] = [
                DuckDBBackend.from_arrow(tables),
                SparkBackend.from_parquet(parquet, spark=spark),
                PandasBackend.from_arrow(tables, Q1, as_of, by),
            ]
            if source.dialect.name == "postgresql":
                backends.append(PostgresBackend(source))
            try:
                results = [_plain(compute(b, Q1, as_of, by)) for b in backends]
            finally:
                for backend in backends:
                    backend.close()
            for backend, got in zip(backends[1:], results[1:], strict=True):
                assert got == results[0], (backend.dialect, as_of, by)


def test_cli_report_and_json(funding_portfolio: Callable[[str], Engine], tmp_path: Path) -> None:
    """`openice metrics` prints the mix (table and --json, money in major units); the quarterly report carries it.
    On the SQLite book alone: the command reads the same metric set from either source, and the PostgreSQL source
    here holds the analytics' tables, not a whole openice database."""
    source = funding_portfolio("sqlite")
    url = source.url.render_as_string(hide_password=False)
    runner = CliRunner()
    done = runner.invoke(app, ["metrics", "--db", url, "--quarter", "2026Q1", "--json"])
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout)["metrics"]
    balance = {r["group"]["source"]: r["value"] for r in metrics["funding_source_balance"]["rows"]}
    assert balance == {
        "abs-deal": "1000.00",
        "institution": "1000.00",
        "platform-capital": "5000.00",
        "trust": "3000.00",
    }
    platform = next(
        r for r in metrics["blended_funding_cost_by_source"]["rows"] if r["group"]["source"] == "platform-capital"
    )
    assert platform["uncovered_balance"] == "5000.00"
    assert metrics["abs_issued"]["rows"] == [{"group": {"currency": "CNY"}, "value": "2000.00"}]
    table = runner.invoke(app, ["metrics", "--db", url, "--quarter", "2026Q1"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert any("Outstanding balance: Asset-backed securities deals" in r and "1,000.00 CNY" in r for r in lines)
    assert any("Blended funding cost: Institutions" in r and "5.00%" in r for r in lines)
    assert any("Outstanding balance: Trusts" in r and "3,000.00 CNY" in r for r in lines)
    assert any("Blended funding cost: Trusts" in r and "8.00%" in r for r in lines)
    assert any("Share of outstanding balance: ICE" in r and "20.00%" in r for r in lines)
    # the three together, 40.00%, is the table's only such figure (the shares are 10, 20, 10 and 60%); its long label
    # wraps at whatever width the console was made with, so the figure alone is checked here
    assert "40.00%" in table.stdout
    assert any("ABS issued in the period (CNY)" in r and "2,000.00 CNY" in r for r in lines)

    backend = DuckDBBackend.from_arrow(snapshot(source))
    try:
        q = quarterly(backend, Q1, QUARTER_END, compare=False)
    finally:
        backend.close()
    data = report_data(q)
    mix = {r["label"]: r for r in data["funding_mix"]}
    assert mix["Outstanding balance: Asset-backed securities deals"]["total"] == "1000.00"
    assert mix["Blended funding cost: Institutions"]["total"] == pytest.approx(0.05)
    assert mix["Outstanding balance: Trusts"]["total"] == "3000.00"
    assert mix["Blended funding cost: Trusts"]["total"] == pytest.approx(0.08)
    assert mix["Blended funding cost: Platform capital"]["total"] is None  # no cost on file
    assert mix["Blended funding cost: Asset-backed securities deals"]["total"] == pytest.approx(0.05)
    assert mix["ABS issued in the period (CNY)"]["total"] == "2000.00"
    html = render_html(q, data)
    assert "<h2>Funding mix</h2>" in html
    assert '<td>Outstanding balance: Asset-backed securities deals</td><td class="num">1,000.00 CNY</td>' in html
    assert '<td>Outstanding balance: Trusts</td><td class="num">3,000.00 CNY</td>' in html


def test_abs_issued_is_in_its_own_currency_when_the_book_has_none(
    funding_portfolio: Callable[[str], Engine],
) -> None:
    """A source that records no single currency leaves the book's money in minor units, said as such; ABS issued is
    by currency, so it is still major units of its currency in the report's table and its JSON."""
    backend = DuckDBBackend.from_arrow(snapshot(funding_portfolio("sqlite")))
    try:
        q = quarterly(backend, Q1, QUARTER_END, compare=False)
    finally:
        backend.close()
    unknown = dataclasses.replace(q, total=dataclasses.replace(q.total, currencies=()))
    assert unknown.currency is None
    mix = {r["label"]: r for r in report_data(unknown)["funding_mix"]}
    assert mix["ABS issued in the period (CNY)"]["total"] == "2000.00"
    assert mix["Outstanding balance: Asset-backed securities deals"]["total"] == K  # 1,000.00 in fen, not guessed
    html = render_html(unknown)
    assert '<td>ABS issued in the period (CNY)</td><td class="num">2,000.00 CNY</td>' in html
    assert f'<td>Outstanding balance: Asset-backed securities deals</td><td class="num">{K:,} minor units</td>' in html
