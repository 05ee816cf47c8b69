"""`openice model monitor --html`: the report is one file with no reference outside it, holding the stability
sections and, where the input has the package's target column, the performance and calibration sections, with the
same figures as the JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from openice.datasets import split_target
from openice.scoring.train import train_package
from tests.cli import one_line_error, openice
from tests.scoring.conftest import SMALL


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A package trained on a labelled file with an application date, and that file (three months)."""
    folder = tmp_path_factory.mktemp("monitor")
    raw = pd.read_csv(Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv")
    raw = raw.sample(900, random_state=7).reset_index(drop=True)
    raw["applied_on"] = pd.date_range("2025-01-01", periods=len(raw), freq="140min").strftime("%Y-%m-%d")
    data = folder / "loans.csv"
    raw.to_csv(data, index=False)
    frame, y = split_target(raw, "Status", "bad")
    source = {"file": data.name, "target": "Status", "bad": "bad"}
    train_package(frame, y, folder / "pkg", cfg=SMALL, test_size=0.2, source=source, date_column="applied_on")
    return folder / "pkg", data


def test_the_html_report_has_every_section_and_the_json_figures(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    package, data = labelled
    page = tmp_path / "out" / "monitor.html"
    by_month = ("--by", "month", "--html", str(page), "--json")
    done = openice("model", "monitor", str(package), "--input", str(data), *by_month)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["group"] for r in rows] == ["all", "2025-01", "2025-02", "2025-03"]
    html = page.read_text(encoding="utf-8")
    for section in ("score-psi", "feature-csi", "performance", "calibration"):
        assert f'id="{section}"' in html, section
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 4
    assert not re.search(r'(src|href)="(?!data:)', html), "the report reaches outside itself"
    assert "Outcomes from column <code>Status</code>" in html
    for r in rows:  # each period's figures are in the tables beside the charts
        o = r["outcomes"]
        assert f"<td>{r['score_psi']:.4f}</td>" in html and f"<td>{o['auc']:.4f}</td>" in html
        assert f"<td>{o['bads']}</td>" in html and o["n"] == r["n"]
    assert sum(b["n"] for b in rows[0]["outcomes"]["calibration"]) == 900
    training = json.loads((package / "metadata.json").read_text())["metrics"]["oof"]
    assert f"<td>{training['auc']:.4f}</td>" in html


def test_without_outcomes_the_report_has_stability_only(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    package, data = labelled
    recent = tmp_path / "recent.csv"
    pd.read_csv(data).drop(columns="Status").to_csv(recent, index=False)
    page = tmp_path / "monitor.html"
    done = openice("model", "monitor", str(package), "--input", str(recent), "--html", str(page), "--json")
    assert done.returncode == 0, done.stderr
    assert "outcomes" not in json.loads(done.stdout)[0]
    html = page.read_text(encoding="utf-8")
    assert 'id="score-psi"' in html and 'id="performance"' not in html and "No outcomes in the input" in html


def test_a_target_column_of_another_name_needs_its_bad_value(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    package, data = labelled
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(data).rename(columns={"Status": "outcome"}).to_csv(renamed, index=False)
    refused = openice("model", "monitor", str(package), "--input", str(renamed), "--target", "outcome")
    assert "--bad" in one_line_error(refused)
    done = openice(
        "model", "monitor", str(package), "--input", str(renamed), "--target", "outcome", "--bad", "bad", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["outcomes"]["n"] == 900


def test_a_recent_sample_with_only_goods_is_monitored_without_auc(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    package, data = labelled
    goods = tmp_path / "goods.csv"
    raw = pd.read_csv(data)
    raw[raw["Status"] == "good"].to_csv(goods, index=False)
    done = openice("model", "monitor", str(package), "--input", str(goods), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)[0]["outcomes"]
    assert (found["bads"], found["bad_rate"], found["auc"], found["ks"]) == (0, 0.0, None, None)
    mistyped = openice("model", "monitor", str(package), "--input", str(data), "--target", "Status", "--bad", "Bad")
    assert "bad value 'Bad' never occurs" in one_line_error(mistyped)
