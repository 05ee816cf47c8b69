"""Flat trees give LightGBM's raw scores exactly, whatever the mask width, missing rule or checkpoint spacing."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from openice.scoring import kernel
from tests.scoring.helpers import tree_raw_score

BUDGET = kernel.ROWS_BUDGET


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 4000
    x = rng.normal(size=(n, 5))
    x[:, 1] = rng.integers(0, 12, n)  # a categorical feature (codes)
    x[rng.random(n) < 0.1, 0] = np.nan
    x[rng.random(n) < 0.2, 2] = 0.0
    x[:, 4] = np.round(x[:, 4], 1)  # ties at thresholds
    y = (np.nan_to_num(x[:, 0]) + 0.3 * (x[:, 1] % 3) + x[:, 2] * x[:, 4] + rng.normal(size=n) > 0.5).astype(int)
    test = x.copy()
    test[rng.random(n) < 0.05, 1] = 15  # a category never seen
    test[rng.random(n) < 0.05, 1] = np.nan
    test[rng.random(n) < 0.1, 2] = 0.0
    test[rng.random(n) < 0.05, 3] = np.nan
    return x, y, test


@pytest.mark.parametrize("leaves", [4, 15, 17, 40])
@pytest.mark.parametrize("zero_as_missing", [False, True])
@pytest.mark.parametrize("budget", [BUDGET, 2_000])
def test_flat_trees_equal_booster(
    leaves: int, zero_as_missing: bool, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "ROWS_BUDGET", budget)  # a small budget spaces the checkpoints out
    x, y, test = _data(leaves)
    params = {
        "objective": "binary",
        "num_leaves": leaves,
        "verbose": -1,
        "zero_as_missing": zero_as_missing,
        "min_data_in_leaf": 5,
        "max_cat_to_onehot": 4,
        "num_threads": 1,
        "seed": 0,
    }
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[1]), num_boost_round=30)
    trees = kernel.FlatTrees.from_booster(booster)
    step, _, width = kernel.section(trees.ints, kernel.TREE_PARAMS)
    most = max(tree["num_leaves"] for tree in booster.dump_model()["tree_info"])
    assert width == next(w for w in kernel.MASK_WIDTHS if w >= most)
    assert (step > 1) == (budget < BUDGET)
    expected = booster.predict(test, raw_score=True)
    assert np.array_equal(trees.predict_columns(np.ascontiguousarray(test.T)), expected)
    assert all(tree_raw_score(trees, np.ascontiguousarray(test[i])) == expected[i] for i in range(0, len(test), 53))
