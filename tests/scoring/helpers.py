"""Single-value views of the vectorised scoring code, for tests that check one row at a time."""

from __future__ import annotations

import numpy as np

from openice.scoring import kernel
from openice.scoring.scorecard import FeatureCard


def bin_of(card: FeatureCard, value: float) -> int:
    """The bin of one prepared value (a float, or a category code), through the card's own `bins_of`."""
    return int(card.bins_of(np.array([value], dtype=float if card.kind == "numeric" else np.int64))[0])


def tree_raw_score(trees: kernel.FlatTrees, row: np.ndarray) -> float:
    """One float64 row's raw score (log-odds) by `kernel.tree_sum`, the walk `score_row` makes per application."""
    return float(kernel.tree_sum(row, trees.ints, trees.floats, np.empty(trees.scratch, dtype=np.int64)))
