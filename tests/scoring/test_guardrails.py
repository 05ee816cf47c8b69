"""Training guardrails: columns that cannot be features, monotonic bins, reasons that point only to what lowered the
score, and the final refit on every row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openice.errors import ValidationError
from openice.scoring.loaded_model import Scorer
from openice.scoring.package import read_json
from openice.scoring.report import write_report
from openice.scoring.screen import screen
from openice.scoring.train import train_package
from tests.scoring.conftest import SMALL


def _with_bad_columns(credit, rows: int = 800) -> tuple[pd.DataFrame, np.ndarray]:
    """A credit_data sample with an application id, a row number, a constant, an empty column, a leak and a twin."""
    frame = credit.frame.sample(rows, random_state=5)
    y = credit.target.loc[frame.index].to_numpy()
    frame = frame.reset_index(drop=True)
    rng = np.random.default_rng(0)
    frame["application_id"] = rng.permutation(np.arange(100_000, 100_000 + rows)).astype(float)
    frame["row_number"] = np.arange(rows, dtype=float)
    frame["channel"] = "web"
    frame["bureau_score"] = np.nan
    frame["collection_flag"] = np.where(y == 1, "yes", "no")  # recorded after the outcome
    frame.loc[:9, "collection_flag"] = "no"
    frame["log_income"] = np.log1p(frame["Income"])
    return frame, y


def test_screen_finds_each_kind_of_column_that_cannot_be_a_feature(credit) -> None:
    frame, y = _with_bad_columns(credit)
    found = {f.column: f for f in screen(frame, y)}
    assert {name: f.check for name, f in found.items()} == {
        "application_id": "identifier",
        "row_number": "identifier",
        "channel": "constant",
        "bureau_score": "all missing",
        "collection_flag": "leakage",
        "log_income": "correlated",
    }
    assert "'Income'" in found["log_income"].why and not any(f.allowed for f in found.values())
    allowed = {f.column: f.allowed for f in screen(frame, y, allow=["application_id"])}
    assert allowed["application_id"] and not allowed["row_number"]


def test_screen_passes_the_bundled_data_sets_and_refuses_what_cannot_be_allowed(credit) -> None:
    assert screen(credit.frame, credit.target.to_numpy()) == []
    frame, y = _with_bad_columns(credit, 200)
    with pytest.raises(ValidationError, match="no such columns"):
        screen(frame, y, allow=["nope"])
    with pytest.raises(ValidationError, match="every value is missing"):
        screen(frame, y, allow=["bureau_score"])


def test_training_leaves_out_screened_columns_and_records_them(tmp_path: Path, credit) -> None:
    frame, y = _with_bad_columns(credit)
    trained = train_package(frame, y, tmp_path / "pkg", cfg=SMALL, test_size=0.25, allow=["row_number"])
    meta = read_json(tmp_path / "pkg" / "metadata.json")
    features = {f["name"] for f in meta["features"]}
    assert "row_number" in features
    assert not features & {"application_id", "channel", "bureau_score", "collection_flag", "log_income"}
    notes = {f["column"]: (f["check"], f["allowed"]) for f in meta["screening"]}
    assert notes["application_id"] == ("identifier", False) and notes["row_number"] == ("identifier", True)
    assert [f.column for f in trained.findings] == list(notes)
    html, _ = write_report(tmp_path / "pkg", tmp_path / "report")
    page = html.read_text()
    assert "Columns screened before training" in page and "collection_flag" in page and "used: allowed" in page


def test_the_package_is_refit_on_every_row_unless_asked_not_to(tmp_path: Path, credit) -> None:
    frame = credit.frame.sample(900, random_state=2)
    y = credit.target.loc[frame.index].to_numpy()
    refit = train_package(frame, y, tmp_path / "refit", cfg=SMALL, test_size=0.25)
    kept = train_package(frame, y, tmp_path / "kept", cfg=SMALL, test_size=0.25, refit=False)
    assert refit.refit and refit.rows == {"train": 675, "test": 225, "final": 900}
    assert not kept.refit and kept.rows["final"] == 675
    # the same evaluation either way; the model that scores is not the same
    assert refit.metrics["test"] == kept.metrics["test"] and refit.metrics["oof"] == kept.metrics["oof"]
    meta = read_json(tmp_path / "refit" / "metadata.json")
    assert meta["refit"] is True and meta["reference"]["n"] == 900
    assert read_json(tmp_path / "kept" / "metadata.json")["reference"]["n"] == 675
    a = Scorer.load(tmp_path / "refit").score_frame(frame, reasons=False)["pd"]
    b = Scorer.load(tmp_path / "kept").score_frame(frame, reasons=False)["pd"]
    assert not np.allclose(a, b)
    html, _ = write_report(tmp_path / "refit", tmp_path / "report")
    assert "refit on all 900 rows" in html.read_text()


def _u_shaped_seniority(rows: int = 3000) -> tuple[pd.DataFrame, np.ndarray]:
    """Years with the employer: new hires are the riskiest, 3-12 years the safest, longer a little riskier than
    that but still safer than average; exact bad counts, so the shape is not left to chance."""
    years = np.tile(np.arange(30, dtype=float), rows // 30)
    rate = np.select([years < 3, years < 12], [0.40, 0.04], 0.09)
    y = np.zeros(rows, dtype=int)
    for value in np.unique(years):
        at = np.flatnonzero(years == value)
        y[at[: int(round(rate[at[0]] * len(at)))]] = 1
    noise = np.random.default_rng(1).normal(size=rows)
    return pd.DataFrame({"Seniority": years, "Noise": noise}), y


def test_a_bin_that_raised_the_score_is_never_an_adverse_reason(tmp_path: Path) -> None:
    frame, y = _u_shaped_seniority()
    cfg = SMALL.__class__(**{**SMALL.__dict__, "no_trend": ("Seniority",)})
    train_package(frame, y, tmp_path / "free", cfg=cfg, test_size=0)
    scorer = Scorer.load(tmp_path / "free")
    card = next(c for c in scorer.model.scorecard.cards if c.name == "Seniority")
    assert card.trend == "none" and "as asked" in scorer.model.scorecard.notes["Seniority"]
    long_service = int(np.searchsorted(card.splits, 18.0, side="right"))
    assert card.points[long_service] < card.max_points and card.woe[long_service] < 0  # lower than best, above par
    result = scorer.score({"Seniority": 18, "Noise": 0.0})
    assert not any(r.code.startswith("SENIORITY") for r in result.reasons)
    assert scorer.score({"Seniority": 1, "Noise": 0.0}).reasons[0].code == "SENIORITY_LOW"


def test_bins_follow_a_monotonic_trend_unless_asked(tmp_path: Path) -> None:
    frame, y = _u_shaped_seniority()
    train_package(frame, y, tmp_path / "pkg", cfg=SMALL, test_size=0)
    scorecard = Scorer.load(tmp_path / "pkg").model.scorecard
    card = next(c for c in scorecard.cards + scorecard.excluded if c.name == "Seniority")
    assert card.trend == "descending"
    regular = [r for r, label in zip(card.bads, card.labels, strict=False) if label.startswith("[")]
    counts = [n for n, label in zip(card.counts, card.labels, strict=False) if label.startswith("[")]
    rates = [b / n for b, n in zip(regular, counts, strict=True)]
    assert rates == sorted(rates, reverse=True)


def test_no_trend_must_name_a_numeric_feature(tmp_path: Path) -> None:
    frame, y = _u_shaped_seniority(600)
    frame["Band"] = np.where(frame["Seniority"] > 10, "long", "short")
    for name, why in (("Missing", "not a feature"), ("Band", "categorical")):
        cfg = SMALL.__class__(**{**SMALL.__dict__, "no_trend": (name,)})
        with pytest.raises(ValidationError, match=why):
            train_package(frame, y, tmp_path / name, cfg=cfg, test_size=0)


def test_screening_survives_the_json_round_trip(tmp_path: Path, credit) -> None:
    frame, y = _with_bad_columns(credit, 400)
    train_package(frame, y, tmp_path / "pkg", cfg=SMALL, test_size=0)
    report = json.loads((write_report(tmp_path / "pkg", tmp_path / "r")[1]).read_text())
    assert {f["column"] for f in report["screening"]} >= {"application_id", "collection_flag"}
    assert report["refit"] is False
