"""Projections: one loan worked by hand, every loan of a random pool through the per-loan rule against the vectorised
pool, the pool paid down exactly in minor units, each tranche's WAL, yield, loss and first loss period, and the
stress grid over the example deal."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from openice.errors import ValidationError
from openice.funding.deal import CleanUpCall, Deal, Revolving
from openice.funding.projection import (
    Pool,
    Scenario,
    horizon,
    loan_cash_flows,
    outcomes,
    pool_cash_flows,
    pool_from_csv,
    project,
    stress_grid,
)
from openice.funding.render import grid_figure, grid_rows, words
from openice.funding.waterfall import Collection, run_waterfall
from tests.cli import one_line_error, openice

EXAMPLES = Path(__file__).resolve().parents[2] / "openice" / "examples"
TEN_PERCENT_A_MONTH = 1 - 0.9**12  # the CDR whose MDR is 10%


def test_one_loan_by_hand() -> None:
    """1,000.00 at 12% a year (1% a month) over 2 months; 10% of it defaults each month; half of a default comes back
    a month later."""
    pool = Pool(np.array([100_000]), np.array([0.12]), np.array([2]))
    flows = pool_cash_flows(pool, [Scenario(TEN_PERCENT_A_MONTH, 0.0, 0.5, 1)])
    # Month 1: 100.00 defaults; 900.00 performs: interest 9.00; a level payment over 2 months is 0.01 / (1 - 1.01^-2)
    # = 0.507512 of the balance, so principal 0.497512 x 900 = 447.7612; 452.2388 left.
    # Month 2: 45.22388 defaults, 407.01492 performs: interest 4.0701, principal all of it. Cumulative principal
    # 854.77612 -> 854.78, so 407.02 in month 2; defaults 145.22388 -> 145.22, so 45.22: 854.78 + 145.22 = 1,000.00.
    # Recoveries: 50.00 in month 2; 22.61194 in month 3 (cumulative 72.61 -> 22.61).
    assert flows.interest.tolist() == [[900, 407, 0]]
    assert flows.principal.tolist() == [[44_776, 40_702, 0]]
    assert flows.defaults.tolist() == [[10_000, 4_522, 0]]
    assert flows.recoveries.tolist() == [[0, 5_000, 2_261]]


def test_the_vectorised_pool_is_every_loan_by_the_rule_and_pays_down_exactly() -> None:
    rng = np.random.default_rng(22)
    pool = Pool(
        rng.integers(10_000, 5_000_000, 400).astype(np.int64), rng.uniform(0, 0.3, 400), rng.integers(1, 25, 400)
    )
    pool.rate[:20] = 0.0  # interest-free loans repay in equal parts
    scenarios = [Scenario(0.05, 0.2, 0.4, 2), Scenario(0.3, 0.0, 0.0, 0), Scenario(0.0, 0.5, 0.1, 6)]
    flows = pool_cash_flows(pool, scenarios)
    months = horizon(pool, scenarios)
    for k, s in enumerate(scenarios):
        each = np.array(
            [
                loan_cash_flows(float(b), float(r), int(n), s, months)
                for b, r, n in zip(pool.balance, pool.rate, pool.term, strict=True)
            ]
        ).sum(axis=0)  # (interest, principal, defaults, recoveries) x months, in fractions of a fen
        got = np.array([flows.interest[k], flows.principal[k], flows.defaults[k], flows.recoveries[k]])
        assert np.abs(got - each).max() <= 2  # rounding the cumulative totals moves a month by a fen or two at most
        assert flows.principal[k].sum() + flows.defaults[k].sum() == pool.total  # exactly
        assert (got >= 0).all()


def test_a_tranches_outcome_by_hand() -> None:
    """A 90.00 without interest over R 10.00: 50.00 defaults in month 1 with nothing collected, then 50.00 of
    principal in month 2."""
    deal = Deal.from_dict(
        {
            "name": "LOSS",
            "currency": "CNY",
            "pool_balance": "100.00",
            "tranches": [{"name": "A", "balance": "90.00", "coupon": "0"}, {"name": "R", "balance": "10.00"}],
        }
    )
    periods = run_waterfall(deal, [Collection(1, 0, 0, 5_000, 0), Collection(2, 0, 5_000, 0, 0)])
    a, r = outcomes(deal, periods)
    # Month 1: the pool falls to 50.00, A's 90.00 is no longer covered, nothing paid; month 2: 50.00 (owed 100.00) to
    # A, which ends at 40.00, R at 10.00, the pool empty.
    assert (a.loss, a.first_loss_period, r.loss, r.first_loss_period) == (4_000, 1, 1_000, 1)
    # A's WAL: all its principal in month 2 = 2 / 12 years; its yield: 50 / (1 + m)^2 = 90, m = sqrt(5/9) - 1.
    assert a.wal_years == pytest.approx(2 / 12)
    assert a.yield_rate == pytest.approx(12 * ((5 / 9) ** 0.5 - 1), abs=1e-9)
    assert a.loss_rate == pytest.approx(4 / 9)
    assert (r.wal_years, r.loss_rate) == (None, 1.0)


def example() -> tuple[Deal, Pool]:
    import yaml

    deal = Deal.from_dict(yaml.safe_load((EXAMPLES / "deal.yaml").read_text(encoding="utf-8")))
    return deal, pool_from_csv((EXAMPLES / "deal-pool.csv").read_text(encoding="utf-8"), "CNY", "deal-pool.csv")


def test_without_defaults_every_note_earns_its_coupon_and_loses_nothing() -> None:
    deal, pool = example()
    (only,) = project(deal, pool, [Scenario(0.0, 0.1, 0.0, 0)])
    a, b, r = only.tranches
    # Paid in full, a note's cash is its coupon / 12 on its balance each month (rounded to the fen) and its principal:
    # its yield in the coupons' convention is the coupon.
    assert a.yield_rate == pytest.approx(0.035, abs=1e-5) and b.yield_rate == pytest.approx(0.055, abs=1e-5)
    assert (a.loss, b.loss, r.loss) == (0, 0, 0) and a.first_loss_period is None
    assert only.periods[-1].pool_balance == 0


def test_the_stress_grid_loses_more_as_defaults_rise() -> None:
    deal, pool = example()
    grid = project(deal, pool, stress_grid(Scenario(0.1, 0.0, 0.3, 3)))
    assert [(round(p.scenario.cdr, 6), p.scenario.cpr) for p in grid[:5]] == [
        (0.1, 0.0),
        (0.1, 0.1),
        (0.1, 0.2),
        (0.1, 0.3),
        (0.2, 0.0),
    ]
    assert len(grid) == 20
    for cpr in range(4):
        losses = [sum(t.loss for t in p.tranches) for p in grid[cpr::4]]
        assert losses == sorted(losses) and losses[-1] > losses[0]
        assert all(p.tranches[0].loss == 0 for p in grid[cpr::4][:3])  # A is safe up to 3x


def test_a_pool_that_is_not_the_deals_is_refused() -> None:
    deal, pool = example()
    short = Pool(pool.balance[1:], pool.rate[1:], pool.term[1:])
    with pytest.raises(ValidationError) as refused:
        project(deal, short, [Scenario(0.0, 0.0, 0.0, 0)])
    assert refused.value.field == "pool" and "not the deal's pool_balance 10,000,000.00 CNY" in refused.value.message


def test_a_called_deal_ends_its_projection_with_the_notes_paid_off() -> None:
    deal, pool = example()
    called = replace(deal, clean_up_call=CleanUpCall(Decimal("0.10")))
    (full,) = project(deal, pool, [Scenario(0.0, 0.1, 0.0, 0)])
    (short,) = project(called, pool, [Scenario(0.0, 0.1, 0.0, 0)])
    # The first month the pool ends below 1,000,000.00 is the last: the call's price pays every tranche off.
    last = next(k for k, p in enumerate(full.periods) if p.pool_balance < 100_000_000)
    assert len(short.periods) == last + 1 and short.periods[-1].clean_up_call
    assert short.periods[-1].available - full.periods[last].available == full.periods[last].pool_balance
    assert all(t.loss == 0 for t in short.tranches)


def test_a_revolving_deal_is_not_projected() -> None:
    deal, pool = example()
    with pytest.raises(ValidationError) as refused:
        project(replace(deal, revolving=Revolving(3, True)), pool, [Scenario(0.0, 0.0, 0.0, 0)])
    assert refused.value.field == "revolving"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("-5.00,0.1,12", "p.csv line 2, balance"),
        ("5.00,abc,12", "p.csv line 2, rate"),
        ("5.00,0.1,0", "p.csv line 2, remaining_term"),
        ("5.00,0.1,1.5", "p.csv line 2, remaining_term"),
    ],
)
def test_a_bad_pool_cell_is_refused_naming_line_and_column(row: str, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        pool_from_csv(f"balance,rate,remaining_term\n{row}\n", "CNY", "p.csv")
    assert refused.value.field == field


def test_project_from_the_command_line() -> None:
    deal, pool = str(EXAMPLES / "deal.yaml"), str(EXAMPLES / "deal-pool.csv")
    table = openice("abs", "project", deal, "--pool", pool, "--cdr", "20%", "--recovery", "30%", "--lag", "3")
    assert table.returncode == 0, table.stderr
    assert "A " in table.stdout and "8,000,000.00" in table.stdout and "first loss" in table.stdout
    grid = openice("abs", "project", deal, "--pool", pool, "--cdr", "4%", "--grid", "--json")
    assert grid.returncode == 0, grid.stderr
    scenarios = json.loads(grid.stdout)["scenarios"]
    assert len(scenarios) == 20 and scenarios[-1]["cdr"] == 0.2 and scenarios[-1]["cpr"] == 0.3
    assert set(scenarios[0]["tranches"]["A"]) == {"wal_years", "yield", "loss", "loss_rate", "first_loss_period"}
    assert one_line_error(openice("abs", "project", deal, "--pool", pool, "--cdr", "abc")) == (
        "error: --cdr: 'abc' is not a rate; write 12% or 0.12"
    )
    assert one_line_error(openice("abs", "project", deal, "--pool", pool, "--cdr", "150%")) == (
        "error: --cdr: 1.5 is not a fraction between 0 and 1"
    )


def test_the_stress_grid_chart_plots_the_tables_figures(tmp_path: Path) -> None:
    """Each panel is a tranche, each line a CPR, each point a CDR: the loss it plots is the table's loss %, the same
    figure, on the page `--grid --html` writes (table and chart) and in the chart `--png` writes."""
    deal, pool = example()
    base = Scenario(0.1, 0.0, 0.3, 3)
    grid = project(deal, pool, stress_grid(base))
    rows = grid_rows(grid)
    fig = grid_figure(deal, grid, words("en"))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["A", "B", "R"]
    assert axes[0].get_ylabel() == "loss, % of the tranche's balance"
    assert all(ax.get_xlabel() == "annual default rate (CDR) (%)" for ax in axes)
    legend = axes[-1].get_legend()
    assert [x.get_text() for x in legend.get_texts()] == ["0%", "10%", "20%", "30%"]
    colours = {tuple(line.get_color()) for line in axes[0].lines}
    assert len(colours) == 4  # one colour a CPR
    for k, ax in enumerate(axes):
        for j, line in enumerate(ax.lines):
            table = [r for r in rows if r[1] == legend.get_texts()[j].get_text()]
            assert [f"{x:.1f}%" for x in line.get_xdata()] == [r[0] for r in table]
            assert [f"{y:.2f}%" for y in line.get_ydata()] == [r[2 + 2 * k] for r in table]
    # The legend stands beside the panels: right of the last panel's plotting area, so it covers no line.
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= axes[-1].get_window_extent().x1

    deal_file, pool_file = str(EXAMPLES / "deal.yaml"), str(EXAMPLES / "deal-pool.csv")
    page, chart = tmp_path / "grid.html", tmp_path / "grid.png"
    args = ["abs", "project", deal_file, "--pool", pool_file, "--cdr", "10%", "--recovery", "30%", "--lag", "3"]
    done = openice(*args, "--grid", "--html", str(page), "--png", str(chart), "--lang", "zh")
    assert done.returncode == 0 and done.stdout == "", done.stderr
    html = page.read_text(encoding="utf-8")
    assert "压力测试" in html and "A 损失" in html and 'alt="各分层在不同违约率下的损失' in html
    cells = re.findall(r'<td class="num">([^<]*)</td>', html)
    assert cells == [cell for row in rows for cell in row]
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert one_line_error(openice(*args, "--html", str(page))) == (
        "error: --html: the page and the chart are the stress grid's: add --grid"
    )
