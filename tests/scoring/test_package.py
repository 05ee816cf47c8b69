from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from openice.errors import ValidationError
from openice.scoring.loaded_model import Scorer
from openice.scoring.package import promote, register
from tests.scoring.helpers import tree_raw_score


def test_round_trip_gives_identical_scores(package: Path, scorer: Scorer, credit, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    again = Scorer.load(copy)
    assert again.package_hash == scorer.package_hash
    frame = credit.frame.iloc[:300]
    a, b = scorer.score_frame(frame), again.score_frame(frame)
    assert a.equals(b)
    for i in range(0, 300, 37):
        one = again.score(frame.iloc[i].to_dict())
        assert (one.pd, one.score, one.grade) == (a["pd"].iloc[i], a["score"].iloc[i], a["grade"].iloc[i])


@pytest.mark.parametrize("which", ["scorer", "special_scorer"])
def test_batch_equals_single_rows_exactly(which: str, request: pytest.FixtureRequest, credit) -> None:
    """Every row of the real data, plus unseen categories and missing values, scored alone and in a batch."""
    scorer = request.getfixturevalue(which)
    frame = credit.frame.copy()
    frame.loc[frame.index[:40], "Home"] = "castle"
    frame.loc[frame.index[20:60], ["Income", "Job"]] = None
    batch = scorer.score_frame(frame)
    reasons = batch[[f"reason_{k}" for k in range(1, 5)]].to_numpy()
    for i, rec in enumerate(frame.to_dict("records")):
        one = scorer.score(rec)
        assert (one.pd, one.score, one.grade) == (batch["pd"].iloc[i], batch["score"].iloc[i], batch["grade"].iloc[i])
        assert [r.code for r in one.reasons] == [c for c in reasons[i] if c]
        assert ";".join(one.flags) + (";" if one.flags else "") == batch["flags"].iloc[i]
    # and both agree with the model's own vectorised components (a separate numpy implementation)
    model = scorer.model
    assert np.allclose(batch["pd"].to_numpy(), model.predict_pd(frame), rtol=1e-12, atol=0)
    assert (batch["grade"].astype(str).to_numpy() == model.grade(batch["pd"].to_numpy())).all()
    assert (batch["reason_1"] != "").mean() > 0.5


def test_package_has_no_pickle_and_records_metadata(package: Path) -> None:
    names = {p.name for p in package.iterdir()}
    assert {"metadata.json", "scorecard.json", "lightgbm.txt", "MANIFEST.json"} <= names
    assert all(p.suffix in {".json", ".txt"} for p in package.iterdir())
    meta = json.loads((package / "metadata.json").read_text())
    assert len(meta["training_data_sha256"]) == 64
    assert {"lightgbm", "optbinning", "scikit-learn"} <= set(meta["library_versions"])
    assert meta["metrics"]["oof"]["auc"] > 0.7
    assert meta["created_at"]


@pytest.mark.parametrize("attack", ["edit", "add", "remove"])
def test_tampered_package_is_refused(package: Path, tmp_path: Path, attack: str) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(package, bad)
    if attack == "edit":
        card = json.loads((bad / "scorecard.json").read_text())
        card["cards"][0]["points"][0] += 50
        (bad / "scorecard.json").write_text(json.dumps(card))
    elif attack == "add":
        (bad / "extra.json").write_text("{}")
    else:
        (bad / "linear.json").unlink()
    with pytest.raises(ValidationError) as err:
        Scorer.load(bad)
    assert err.value.field == "package"


def test_registry_versions_and_champion(package: Path, tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    assert register(package, reg) == 1
    assert register(package, reg) == 2
    assert Scorer.load(reg).package_hash == Scorer.load(reg / "v0001").package_hash
    promote(reg, 2)
    assert json.loads((reg / "registry.json").read_text())["champion"] == 2
    # tamper with the champion copy: the registry refuses it too
    (reg / "v0002" / "blend.json").write_text("{}")
    with pytest.raises(ValidationError):
        Scorer.load(reg)


def test_score_scale_follows_pdo(scorer: Scorer) -> None:
    s = scorer.model.scorecard.scaling
    assert s.score_of_logit(np.log(1 / 50)) == pytest.approx(600)
    assert s.score_of_logit(np.log(1 / 100)) == pytest.approx(620)


def test_flat_trees_equal_lightgbm_raw_scores(scorer: Scorer, credit) -> None:
    from openice.scoring.model import lgb_columns, lgb_matrix

    model = scorer.model
    frame = credit.frame.copy()
    frame.loc[frame.index[:20], "Home"] = "castle"  # unseen categories take LightGBM's path for them
    prep = model.prepare(frame)
    expected = model.booster.predict(lgb_matrix(prep, model.schema), raw_score=True)
    assert np.array_equal(model.trees.predict_columns(lgb_columns(prep, model.schema)), expected)
    cols = lgb_columns(prep, model.schema)
    assert all(tree_raw_score(model.trees, np.ascontiguousarray(cols[:, i])) == expected[i] for i in range(0, 4454, 97))
