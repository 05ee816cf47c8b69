"""`openice abs waterfall` over the example deal: the tables in major units, --json in the issue's shape with money as
decimal strings, and one line on stderr naming the field of a bad deal or collections file (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from openice.cli import app
from tests.cli import one_line_error, openice

EXAMPLES = Path(__file__).resolve().parents[2] / "openice" / "examples"
DEAL = EXAMPLES / "deal.yaml"
COLLECTIONS = EXAMPLES / "deal-collections.csv"


def test_the_example_deal_as_tables() -> None:
    out = CliRunner().invoke(app, ["abs", "waterfall", str(DEAL), "--collections", str(COLLECTIONS)])
    assert out.exit_code == 0, out.output
    cash, notes = out.output.split("OPENICE 2026-1: tranches, in CNY")
    rows = {line.split()[0]: line.split() for line in cash.splitlines() if line.strip()[:2] in ("1 ", "6 ")}
    # Period 1: 149,400.00 interest + 763,732.73 principal + the 100,000.00 reserve = 1,013,132.73; fees 1% / 12 and
    # 0.05% / 12 of 10,000,000.00 = 8,333.33 + 416.67 = 8,750.00; A's 3.5% / 12 of 8,000,000.00 = 23,333.33.
    assert rows["1"][:5] == ["1", "1,013,132.73", "8,750.00", "100,000.00", "72,733.34"]
    assert "OPENICE 2026-1: available funds, in CNY" in cash
    assert ["1", "A", "23,333.33", "23,333.33", "0.00", "642,986.18", "7,357,013.82"] in [
        r.split() for r in notes.splitlines()
    ]
    # Defaults to period 6 are 333,950.99, above 3% of the pool (300,000.00): breached from period 6 on.
    assert rows["6"][-1] == "breached"


def test_the_example_deal_as_json() -> None:
    out = CliRunner().invoke(app, ["abs", "waterfall", str(DEAL), "--collections", str(COLLECTIONS), "--json"])
    assert out.exit_code == 0, out.output
    periods = json.loads(out.output)["periods"]
    assert len(periods) == 12
    first = periods[0]
    assert set(first) == {
        "period",
        "available",
        "fees",
        "reserve_balance",
        "trigger_breached",
        "residual_income",
        "revolving",
        "reinvested",
        "clean_up_call",
        "pool_balance",
        "tranches",
    }
    assert (first["revolving"], first["reinvested"], first["clean_up_call"]) == (False, "0.00", False)
    # Principal 763,732.73 + defaults 40,000.00 = 803,732.73 pro rata 80:10:10: through A 642,986.184 -> 642,986.18,
    # through B 723,359.457 -> 723,359.46, so B 80,373.28 and R the rest, 80,373.27.
    assert first["tranches"] == {
        "A": {
            "interest_due": "23333.33",
            "interest_paid": "23333.33",
            "interest_shortfall": "0.00",
            "principal_paid": "642986.18",
            "balance": "7357013.82",
            "loss": "0.00",
        },
        "B": {
            "interest_due": "4583.33",
            "interest_paid": "4583.33",
            "interest_shortfall": "0.00",
            "principal_paid": "80373.28",
            "balance": "919626.72",
            "loss": "0.00",
        },
        "R": {
            "interest_due": "0.00",
            "interest_paid": "0.00",
            "interest_shortfall": "0.00",
            "principal_paid": "80373.27",
            "balance": "919626.73",
            "loss": "0.00",
        },
    }
    assert [p["trigger_breached"] for p in periods] == [False] * 5 + [True] * 7
    assert all(t["balance"] == "0.00" for t in periods[-1]["tranches"].values())  # the pool paid off in full


def test_the_revolving_example_reinvests_then_is_called() -> None:
    """deal-revolving.yaml is deal.yaml revolving through period 1 with a call below 10% of 10,000,000.00."""
    deal = EXAMPLES / "deal-revolving.yaml"
    out = CliRunner().invoke(app, ["abs", "waterfall", str(deal), "--collections", str(COLLECTIONS)])
    assert out.exit_code == 0, out.output
    cash = out.output.split("OPENICE 2026-R1: tranches, in CNY")[0]
    rows = {line.split()[0]: line.split() for line in cash.splitlines() if line.strip()[:3] in ("1  ", "2  ", "12 ")}
    # Period 1 as deal.yaml's, but its 763,732.73 + 40,000.00 = 803,732.73 of principal buys loans instead of notes.
    assert rows["1"][1:] == ["1,013,132.73", "8,750.00", "100,000.00", "72,733.34", "803,732.73", "revolving"]
    assert rows["2"][-1] == "0.00"  # amortising from period 2 on
    assert rows["12"][-1] == "called"
    out = CliRunner().invoke(app, ["abs", "waterfall", str(deal), "--collections", str(COLLECTIONS), "--json"])
    periods = json.loads(out.output)["periods"]
    # deal.yaml's collections pay its 10,000,000.00 off by period 12, so this pool ends the month holding what period 1
    # bought, 803,732.73, below 1,000,000.00: the servicer pays that for it. Available = 12,019.72 interest +
    # 801,314.46 principal + 14,761.41 recoveries + the 100,000.00 reserve + 803,732.73 = 1,731,828.32.
    assert len(periods) == 12 and [p["clean_up_call"] for p in periods] == [False] * 11 + [True]
    assert (periods[-1]["available"], periods[-1]["pool_balance"]) == ("1731828.32", "0.00")
    assert all(t["balance"] == "0.00" for t in periods[-1]["tranches"].values())


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"tranches": [{"name": "A", "balance": "9000000.00", "coupon": 0.035}, {"name": "R", "balance": "-1.00"}]},
            "error: tranches[1].balance: -1.00 is negative",
        ),
        ({"sponsor": "x"}, "error: sponsor: unknown key"),
        ({"pool_balance": "9000000.00"}, "error: tranches: balances add up to 10,000,000.00 CNY, not the pool_balance"),
    ],
)
def test_an_invalid_deal_is_one_line_naming_the_field(tmp_path: Path, change: dict[str, object], line: str) -> None:
    deal = yaml.safe_load(DEAL.read_text(encoding="utf-8")) | change
    (tmp_path / "deal.yaml").write_text(yaml.safe_dump(deal), encoding="utf-8")
    result = openice("abs", "waterfall", str(tmp_path / "deal.yaml"), "--collections", str(COLLECTIONS))
    assert one_line_error(result).startswith(line)


def test_a_period_missing_from_the_collections_is_one_line_naming_row_and_column(tmp_path: Path) -> None:
    lines = COLLECTIONS.read_text(encoding="utf-8").splitlines()
    (tmp_path / "c.csv").write_text("\n".join(lines[:3] + lines[4:]) + "\n", encoding="utf-8")  # no period 3
    result = openice("abs", "waterfall", str(DEAL), "--collections", str(tmp_path / "c.csv"))
    assert one_line_error(result) == (
        "error: c.csv line 4, period: period 3 is missing: periods run 1, 2, ... one a row in order"
    )


def test_a_missing_collections_file_is_one_line(tmp_path: Path) -> None:
    result = openice("abs", "waterfall", str(DEAL), "--collections", str(tmp_path / "none.csv"))
    assert one_line_error(result).startswith("error: --collections: cannot read")
