from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openice.errors import ValidationError
from openice.scoring import package as package_files
from openice.scoring.loaded_model import Scorer
from tests.scoring.helpers import bin_of

APP = {
    "Seniority": 9,
    "Home": "rent",
    "Time": 60,
    "Age": 30,
    "Marital": "married",
    "Records": "no",
    "Job": "freelance",
    "Expenses": 73,
    "Income": 129,
    "Assets": 0,
    "Debt": 0,
    "Amount": 800,
    "Price": 846,
}


def test_reasons_are_the_scorecard_points_lost_in_bins_riskier_than_average(scorer: Scorer, credit) -> None:
    cards = scorer.model.scorecard.cards
    for rec in credit.frame.iloc[:200].to_dict("records"):
        result = scorer.score(rec)
        bins = {c.name: bin_of(c, _prepared(scorer, rec, c.name)) for c in cards}
        assert result.scorecard_points == pytest.approx(sum(c.points[bins[c.name]] for c in cards), abs=1e-6)
        lost = sorted((c.max_points - c.points[bins[c.name]] for c in cards if c.woe[bins[c.name]] > 0), reverse=True)
        expected = [round(v, 2) for v in lost if v > 0][:4]
        assert [r.impact for r in result.reasons] == pytest.approx(expected, abs=0.011)
        assert all(r.code and r.text for r in result.reasons)


def _prepared(scorer: Scorer, rec: dict, name: str) -> float:
    from openice.scoring.features import prepare_record

    values, _ = prepare_record(rec, scorer.model.schema, scorer._lookup)
    return values[scorer.feature_names.index(name)]


def test_reason_direction_follows_monotone_trend(scorer: Scorer) -> None:
    for card in scorer.model.scorecard.cards:
        regular = [p for lab, p in zip(card.labels, card.points, strict=False) if lab.startswith("[")]
        if card.trend == "ascending":  # bad rate rises with the value: points fall
            assert regular == sorted(regular, reverse=True), card.name
            assert not any(
                code.endswith("_LOW")
                for code, lab in zip(card.codes, card.labels, strict=False)
                if lab.startswith("[") and card.points[card.labels.index(lab)] < max(regular)
            )
        if card.trend == "descending":
            assert regular == sorted(regular), card.name
    # LightGBM constraints agree with the binning directions that were kept
    for name, direction in scorer.model.directions.items():
        card = next((c for c in scorer.model.scorecard.cards if c.name == name), None)
        if card is not None:
            assert card.trend == {1: "ascending", -1: "descending"}[direction]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Income", -5),
        ("Age", 300),
        ("Income", "lots"),
        ("Age", [30]),
        ("Home", 3.5),
        ("Amount", float("inf")),
        ("Seniority", True),
    ],
)
def test_bad_values_name_the_field(scorer: Scorer, field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        scorer.score({**APP, field: value})
    assert err.value.field == field


def test_missing_is_imputed_and_flagged_unseen_goes_to_other(scorer: Scorer) -> None:
    app = {k: v for k, v in APP.items() if k != "Income"}
    result = scorer.score({**app, "Home": "castle", "Assets": None})
    assert "missing:Income" in result.flags and "missing:Assets" in result.flags
    assert "unseen_category:Home" in result.flags
    assert 0 < result.pd < 1 and math.isfinite(result.score)
    home = next(c for c in scorer.model.scorecard.cards if c.name == "Home")
    assert bin_of(home, -2) == home.other_bin


def test_batch_rejects_impossible_values(scorer: Scorer, credit) -> None:
    frame = credit.frame.iloc[:10].copy()
    frame.loc[frame.index[3], "Age"] = 300
    with pytest.raises(ValidationError) as err:
        scorer.score_frame(frame)
    assert err.value.field == "Age"


@settings(max_examples=30, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "Income": st.one_of(st.none(), st.floats(0, 1e6)),
            "Age": st.one_of(st.none(), st.integers(18, 99)),
            "Home": st.one_of(st.none(), st.sampled_from(["rent", "owner", "priv", "mars"])),
            "Seniority": st.one_of(st.none(), st.integers(0, 50)),
            "Amount": st.one_of(st.none(), st.floats(0, 1e5)),
        }
    )
)
def test_any_valid_or_partial_application_gets_a_finite_score(scorer: Scorer, app: dict) -> None:
    result = scorer.score(app)
    assert 0 < result.pd < 1 and math.isfinite(result.score) and result.grade
    assert len(result.reasons) <= 4


def test_a_package_with_grade_bounds_out_of_order_is_refused(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package's config is built as a TrainConfig, so it gets the same checks as one given to training."""
    bad = tmp_path / "bad"
    shutil.copytree(package, bad)
    meta = json.loads((bad / "metadata.json").read_text())
    grades = meta["config"]["grades"]
    meta["config"]["grades"] = [grades[1], grades[0], *grades[2:]]
    (bad / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(package_files, "verify", lambda path: "hash")  # past the hash check, to the config's own
    with pytest.raises(ValidationError, match="grade bounds") as err:
        package_files.load_model(bad)
    assert err.value.field == "grades"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_trained_models_reasons_read_in_words_with_the_applicants_value(scorer: Scorer, credit, locale: str) -> None:
    """What a decision stores of the model's reasons (`CODE: text`), read back with the application: every reason of
    200 real applicants names its feature's words and never shows its code."""
    from openice.decisioning.reason_words import explained, messages

    catalog = messages(locale)
    seen = 0
    for rec in credit.frame.iloc[:200].to_dict("records"):
        stored = [f"{r.code}: {r.text}" for r in scorer.score(rec).reasons]
        for reason in explained(stored, {"application": {"bureau": rec}, "age": rec["Age"]}, "CNY", catalog):
            feature = reason["code"].rsplit("_", 1)[0].lower()
            assert reason["text"].startswith(catalog[f"reason.feature.{feature}"])
            assert reason["code"] not in reason["text"] and "_" not in reason["text"]
            seen += 1
    assert seen > 100
