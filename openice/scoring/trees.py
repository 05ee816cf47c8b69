"""LightGBM trees compiled into flat arrays and evaluated by numba: the fast path for one row and for batches.

The trees are evaluated feature by feature rather than node by node, with a leaf mask per tree: every
split a row's value fails clears the leaves of that node's left subtree in its tree's 64-bit leaf
mask, and the row's leaf in each tree is the leftmost one left. For a numeric feature the splits are
sorted by threshold, so a row visits exactly the splits it fails, in a loop the CPU predicts well;
missing values and categories use lists of failed splits precomputed with LightGBM's own rules
(``_go_left``). Leaf values are summed in tree order, so the raw scores equal ``Booster.predict``
(a test checks equality on real data). The arrays are derived from the package's LightGBM text
model at load time: nothing executable is stored.

All arrays are packed into one int64 and one float64 array (``pack``): a numba call pays for every
array argument, and one application is scored in a few microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

from openice.errors import ValidationError

__all__ = ["FlatTrees", "dynamic_chunks", "pack", "section", "tree_sum"]

MISSING_CODES = {"None": 0, "Zero": 1, "NaN": 2}
MAX_LEAVES = 64  # one bit per leaf in an int64 mask
CHUNKS = 1024  # a batch is split into this many chunks of rows, taken by the threads one at a time
# int sections; openice.scoring.kernel appends its own after these
TREE_LEAF0, SPLIT_AT, SPLIT_TREE, SPLIT_MASK, SPLIT_ZERO, NAN_LIST, ZERO_LIST, CAT_LIST, CAT_SLOTS, LIST_AT, \
    LIST_TREE, LIST_MASK = range(12)
N_INT_SECTIONS = 12
# float sections
SPLIT_THRESHOLD, LEAF_VALUE = range(2)
N_FLOAT_SECTIONS = 2
_DEBRUIJN = 0x03F79D71B4CB0A89
_LOWEST_BIT = np.zeros(64, dtype=np.int64)
for _i in range(64):
    _LOWEST_BIT[(((1 << _i) * _DEBRUIJN) & (2**64 - 1)) >> 58] = _i


def pack(sections: list[Any], dtype: type) -> np.ndarray:
    """Sections behind a header of offsets: section ``k`` is ``a[a[k]:a[k + 1]]``."""
    body = [np.asarray(s, dtype=dtype).ravel() for s in sections]
    offsets = len(sections) + 1 + np.cumsum([0] + [len(b) for b in body])
    return np.concatenate([offsets.astype(dtype), *body]).astype(dtype)


@numba.njit(cache=True, nogil=True, inline="always")
def section(a: np.ndarray, k: int) -> np.ndarray:
    return a[int(a[k]):int(a[k + 1])]


@numba.njit(cache=True, nogil=True, inline="always")
def _apply(masks: np.ndarray, at: np.ndarray, trees: np.ndarray, bits: np.ndarray, list_id: int) -> None:
    for k in range(at[list_id], at[list_id + 1]):
        masks[trees[k]] &= bits[k]


@numba.njit(cache=True, nogil=True)
def tree_sum(x: np.ndarray, ints: np.ndarray, floats: np.ndarray, masks: np.ndarray) -> float:
    """Raw score (sum of leaf values) of one row; ``masks`` is scratch space of one int64 per tree.

    Categorical features hold their code; a negative or NaN code takes LightGBM's not-in-set branch.
    """
    split_at, split_tree, split_mask = section(ints, SPLIT_AT), section(ints, SPLIT_TREE), section(ints, SPLIT_MASK)
    split_zero, nan_list, zero_list = section(ints, SPLIT_ZERO), section(ints, NAN_LIST), section(ints, ZERO_LIST)
    cat_list, cat_slots = section(ints, CAT_LIST), section(ints, CAT_SLOTS)
    at, trees, bits = section(ints, LIST_AT), section(ints, LIST_TREE), section(ints, LIST_MASK)
    threshold = section(floats, SPLIT_THRESHOLD)
    masks[:] = -1
    for f in range(x.shape[0]):
        v = x[f]
        if cat_list[f] >= 0:
            slot = int(v) if v >= 0 and v < cat_slots[f] - 1 else cat_slots[f] - 1
            _apply(masks, at, trees, bits, cat_list[f] + slot)
        elif np.isnan(v):
            if nan_list[f] >= 0:
                _apply(masks, at, trees, bits, nan_list[f])
        elif zero_list[f] >= 0 and abs(v) <= 1e-35:  # "zero as missing" splits send it the default way
            _apply(masks, at, trees, bits, zero_list[f])
            for k in range(split_at[f], split_at[f + 1]):
                if split_zero[k] == 0 and v > threshold[k]:
                    masks[split_tree[k]] &= split_mask[k]
        else:
            k, end = split_at[f], split_at[f + 1]
            while k < end and v > threshold[k]:
                masks[split_tree[k]] &= split_mask[k]
                k += 1
    leaf0, leaf = section(ints, TREE_LEAF0), section(floats, LEAF_VALUE)
    total = 0.0
    for t in range(masks.shape[0]):
        low = np.uint64(masks[t] & -masks[t])
        total += leaf[leaf0[t] + _LOWEST_BIT[(low * np.uint64(_DEBRUIJN)) >> np.uint64(58)]]
    return total


@numba.njit(cache=True, parallel=True, nogil=True)
def _sum_rows(cols: np.ndarray, ints: np.ndarray, floats: np.ndarray) -> np.ndarray:
    n = cols.shape[1]
    out = np.empty(n)
    chunks = min(n, CHUNKS)
    for c in numba.prange(chunks):
        masks = np.empty(section(ints, TREE_LEAF0).shape[0], dtype=np.int64)
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            out[i] = tree_sum(cols[:, i], ints, floats, masks)
    return out


@contextmanager
def dynamic_chunks() -> Iterator[None]:
    """Parallel loops inside hand out one iteration at a time: a thread slowed by a busy machine takes fewer."""
    previous = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(previous)


def _go_left(node: dict[str, Any], value: float) -> bool:
    """LightGBM's decision at one split (numeric with its missing type, or category in set)."""
    if node["decision_type"] == "==":
        if math.isnan(value) or value < 0:
            return False
        return int(value) in {int(c) for c in str(node["threshold"]).split("||")}
    mt = MISSING_CODES[node["missing_type"]]
    if math.isnan(value) and mt != 2:
        value = 0.0
    if (mt == 1 and abs(value) <= 1e-35) or (mt == 2 and math.isnan(value)):
        return bool(node["default_left"])
    return value <= node["threshold"]


@dataclass
class FlatTrees:
    """All trees of a binary LightGBM model as split tables per feature, packed for numba."""

    int_sections: list[np.ndarray]
    float_sections: list[np.ndarray]

    def __post_init__(self) -> None:
        self.ints = pack(self.int_sections, np.int64)
        self.floats = pack(self.float_sections, np.float64)
        self.n_trees = len(self.int_sections[TREE_LEAF0])

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> FlatTrees:
        dump = booster.dump_model()
        n_features = len(dump["feature_names"])
        splits: list[list[tuple[dict[str, Any], int, int]]] = [[] for _ in range(n_features)]  # (node, tree, mask)
        leaf0, leaves = [], []

        def visit(node: dict[str, Any], t: int) -> tuple[int, int]:
            if "leaf_value" in node:
                leaves.append(node["leaf_value"])
                k = len(leaves) - 1 - leaf0[t]
                return k, k + 1
            lo, mid = visit(node["left_child"], t)
            _, hi = visit(node["right_child"], t)
            if hi > MAX_LEAVES:
                raise ValidationError(f"a tree has more than {MAX_LEAVES} leaves", field="lightgbm")
            left_leaves = ((1 << mid) - 1) ^ ((1 << lo) - 1)
            splits[node["split_feature"]].append((node, t, ~left_leaves))
            return lo, hi

        for t, tree in enumerate(dump["tree_info"]):
            leaf0.append(len(leaves))
            visit(tree["tree_structure"], t)

        lists: list[list[tuple[int, int]]] = []

        def failed(nodes: list[tuple[dict[str, Any], int, int]], value: float) -> int:
            lists.append([(t, mask) for node, t, mask in nodes if not _go_left(node, value)])
            return len(lists) - 1

        split_at, split_tree, split_mask, split_zero, threshold = [0], [], [], [], []
        nan_list, zero_list, cat_list, cat_slots = [], [], [], []
        for nodes in splits:
            if any(node["decision_type"] == "==" for node, _, _ in nodes):
                n_codes = max(int(c) for node, _, _ in nodes for c in str(node["threshold"]).split("||")) + 1
                cat_list.append(len(lists))
                cat_slots.append(n_codes + 1)
                for code in [*range(n_codes), -1]:
                    failed(nodes, float(code))
                nan_list.append(-1)
                zero_list.append(-1)
            else:
                cat_list.append(-1)
                cat_slots.append(0)
                nodes = sorted(nodes, key=lambda s: s[0]["threshold"])
                zero = [s for s in nodes if s[0]["missing_type"] == "Zero"]
                nan_list.append(failed(nodes, math.nan) if nodes else -1)
                zero_list.append(failed(zero, 0.0) if zero else -1)
                for node, t, mask in nodes:
                    split_tree.append(t)
                    split_mask.append(mask)
                    split_zero.append(int(node["missing_type"] == "Zero"))
                    threshold.append(float(node["threshold"]))
            split_at.append(len(split_tree))
        list_at = np.cumsum([0] + [len(entries) for entries in lists])
        flat = [entry for entries in lists for entry in entries]
        masks = np.array([m for _, m in flat] + split_mask, dtype=object)
        as_int64 = np.array([int(m) & (2**64 - 1) for m in masks], dtype=np.uint64).view(np.int64)
        ints = [leaf0, split_at, split_tree, as_int64[len(flat):], split_zero, nan_list, zero_list, cat_list,
                cat_slots, list_at, [t for t, _ in flat], as_int64[:len(flat)]]
        return cls([np.asarray(a, dtype=np.int64) for a in ints],
                   [np.asarray(threshold, dtype=np.float64), np.asarray(leaves, dtype=np.float64)])

    @classmethod
    def empty(cls, n_features: int) -> FlatTrees:
        """No trees (a package without a LightGBM model): the sections ``tree_sum`` expects, all empty."""
        none = [-1] * n_features
        ints = [[], [0] * (n_features + 1), [], [], [], none, none, none, [0] * n_features, [0], [], []]
        return cls([np.asarray(a, dtype=np.int64) for a in ints], [np.zeros(0), np.zeros(0)])

    def predict_row(self, x: np.ndarray) -> float:
        """Raw score (log-odds) of one float64 row."""
        return tree_sum(x, self.ints, self.floats, np.empty(self.n_trees, dtype=np.int64))

    def predict_columns(self, cols: np.ndarray) -> np.ndarray:
        """Raw scores of a feature-major float64 matrix (features x rows), rows in parallel."""
        with dynamic_chunks():
            return _sum_rows(cols, self.ints, self.floats)
