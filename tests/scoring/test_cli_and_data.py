"""CLI smoke on a small labelled CSV, and the bundled data sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from openice.cli import app
from openice.datasets import load
from tests.cli import openice

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_bundled_data_sets_are_typed_with_bad_as_one() -> None:
    lc = load("lending_club")
    assert len(lc.frame) == 9857 and int(lc.target.sum()) == 517
    assert "sub_grade" not in lc.frame and "int_rate" not in lc.frame
    assert {"sub_grade", "int_rate"} <= set(load("lending_club", include_leaky=True).frame.columns)
    cd = load("credit_data")
    assert len(cd.frame) == 4454 and int(cd.target.sum()) == 1254
    assert cd.frame["Income"].dtype == np.float64 and cd.frame["Income"].isna().any()
    assert set(np.unique(cd.target)) == {0, 1}


def test_cli_train_score_report_monitor_export(tmp_path: Path) -> None:
    raw = pd.read_csv(Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv")
    raw = raw.sample(900, random_state=3).reset_index(drop=True)
    raw["applied_on"] = pd.date_range("2025-01-01", periods=len(raw), freq="160min").strftime("%Y-%m-%d")
    data = tmp_path / "loans.csv"
    raw.drop(columns="applied_on").to_csv(data, index=False)
    pkg = tmp_path / "pkg"
    out = _ok(
        [
            "model",
            "train",
            "--data",
            str(data),
            "--target",
            "Status",
            "--bad",
            "bad",
            "--out",
            str(pkg),
            "--inner-folds",
            "2",
            "--registry",
            str(tmp_path / "reg"),
        ]
    )
    assert "oof: AUC" in out and (pkg / "MANIFEST.json").exists()
    scored = tmp_path / "scored.csv"
    out = _ok(
        [
            "model",
            "score",
            str(pkg),
            "--input",
            str(data),
            "--output",
            str(scored),
            "--target",
            "Status",
            "--bad",
            "bad",
        ]
    )
    assert "AUC" in out and "KS" in out and "Brier" in out
    frame = pd.read_csv(scored)
    assert {"Status", "pd", "score", "grade", "reason_1", "reason_4"} <= set(frame.columns)
    assert frame["pd"].between(0, 1).all() and len(frame) == 900
    _ok(["model", "report", str(pkg), "--out", str(tmp_path / "report")])
    html = (tmp_path / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1]
    assert json.loads((tmp_path / "report" / "report.json").read_text())["performance"]["out-of-fold"]["auc"] > 0.7
    recent = tmp_path / "recent.csv"
    raw.drop(columns="Status").to_csv(recent, index=False)
    monitor_json = tmp_path / "monitor.json"
    _ok(
        [
            "model",
            "monitor",
            str(tmp_path / "reg"),
            "--input",
            str(recent),
            "--by",
            "month",
            "--date-column",
            "applied_on",
            "--json-out",
            str(monitor_json),
        ]
    )
    rows = json.loads(monitor_json.read_text())
    assert rows[0]["group"] == "all" and {r["group"] for r in rows[1:]} == {"2025-01", "2025-02", "2025-03", "2025-04"}
    assert "CASE" in _ok(["model", "export-sql", str(pkg)])


def test_train_score_and_monitor_print_json_for_scripts(tmp_path: Path) -> None:
    """`--json` prints the result alone on stdout: the package, its hash and metrics; the scoring summary; the
    monitoring rows (`--json-out FILE` writes them as well)."""
    raw = pd.read_csv(Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv")
    data = tmp_path / "loans.csv"
    raw.sample(900, random_state=5).to_csv(data, index=False)
    pkg, scored, written = tmp_path / "pkg", tmp_path / "out" / "scored.csv", tmp_path / "monitor.json"
    labelled = ("--target", "Status", "--bad", "bad")
    trained = openice(
        "model", "train", "--data", str(data), *labelled, "--out", str(pkg), "--inner-folds", "2", "--json"
    )
    assert trained.returncode == 0, trained.stderr
    package = json.loads(trained.stdout)
    manifest_hash = json.loads((pkg / "MANIFEST.json").read_text())
    assert package["package"] == str(pkg) and package["hash"] in json.dumps(manifest_hash)
    assert set(package["metrics"]) == {"oof", "test"} and package["metrics"]["oof"]["auc"] > 0.7
    assert package["refit"] is True and package["rows"]["final"] == 900 and package["registry"] is None
    done = openice("model", "score", str(pkg), "--input", str(data), "--output", str(scored), *labelled, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["output"], summary["absent_features"]) == (900, str(scored), [])
    assert summary["metrics"]["n"] == 900 and 0.5 < summary["metrics"]["auc"] <= 1 and scored.exists()
    unlabelled = json.loads(
        openice("model", "score", str(pkg), "--input", str(data), "--output", str(scored), "--json").stdout
    )
    assert unlabelled["metrics"] is None
    done = openice("model", "monitor", str(pkg), "--input", str(data), "--json", "--json-out", str(written))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows == json.loads(written.read_text()) and rows[0]["group"] == "all" and rows[0]["n"] == 900


@pytest.mark.parametrize("args", [["--dataset", "nope"], ["--data", "missing.csv", "--target", "y", "--bad", "1"]])
def test_cli_bad_input_is_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["model", "train", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2 and "error" in result.output


def test_special_codes_and_application_date_from_the_cli(tmp_path: Path) -> None:
    raw = pd.read_csv(Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv")
    raw = raw.sample(900, random_state=4).reset_index(drop=True)
    raw["applied_on"] = pd.date_range("2025-01-01", periods=len(raw), freq="160min").strftime("%Y-%m-%d")
    data = tmp_path / "loans.csv"
    raw.to_csv(data, index=False)
    pkg = tmp_path / "pkg"
    _ok(
        [
            "model",
            "train",
            "--data",
            str(data),
            "--target",
            "Status",
            "--bad",
            "bad",
            "--out",
            str(pkg),
            "--inner-folds",
            "2",
            "--special",
            "Assets=0",
            "--special",
            "Debt=0,-1",
        ]
    )
    meta = json.loads((pkg / "metadata.json").read_text())
    assert meta["config"]["special"] == {"Assets": [0.0], "Debt": [0.0, -1.0]}
    assert meta["date_column"] == "applied_on" and "applied_on" not in {f["name"] for f in meta["features"]}
    cards = json.loads((pkg / "scorecard.json").read_text())
    assets = next(c for c in cards["cards"] + cards["excluded"] if c["name"] == "Assets")
    assert "Special" in assets["labels"] and assets["counts"][assets["special_bin"]] > 0
    # --by month finds the application date in the package's metadata, then in the file itself
    recent = tmp_path / "recent.csv"
    raw.drop(columns="Status").rename(columns={"applied_on": "issue_d"}).to_csv(recent, index=False)
    for package in (pkg, tmp_path / "old"):
        monitor_json = tmp_path / "monitor.json"
        if package != pkg:  # a package trained without any date column
            _ok(
                [
                    "model",
                    "train",
                    "--data",
                    str(data),
                    "--target",
                    "Status",
                    "--bad",
                    "bad",
                    "--out",
                    str(package),
                    "--inner-folds",
                    "2",
                    "--drop",
                    "applied_on",
                ]
            )
        _ok(
            ["model", "monitor", str(package), "--input", str(recent), "--by", "month", "--json-out", str(monitor_json)]
        )
        assert {r["group"] for r in json.loads(monitor_json.read_text())[1:]} == {
            "2025-01",
            "2025-02",
            "2025-03",
            "2025-04",
        }
    undated = tmp_path / "undated.csv"
    raw.drop(columns=["Status", "applied_on"]).to_csv(undated, index=False)
    result = runner.invoke(app, ["model", "monitor", str(pkg), "--input", str(undated), "--by", "month"])
    assert result.exit_code == 2 and "--date-column" in result.output and "applied_on" in result.output


@pytest.mark.parametrize(
    ("special", "named"),
    [("Nope=1", "Nope"), ("Home=1", "Home"), ("Assets=abc", "Assets"), ("Assets=inf", "Assets"), ("Assets", "special")],
)
def test_special_codes_are_checked(tmp_path: Path, special: str, named: str) -> None:
    data = tmp_path / "loans.csv"
    pd.read_csv(Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv").iloc[:300].to_csv(
        data, index=False
    )
    result = runner.invoke(
        app,
        [
            "model",
            "train",
            "--data",
            str(data),
            "--target",
            "Status",
            "--bad",
            "bad",
            "--out",
            str(tmp_path / "x"),
            "--special",
            special,
        ],
    )
    assert result.exit_code == 2 and f"{named}:" in result.output, result.output
    assert not (tmp_path / "x").exists()
