"""LightGBM trees compiled into flat arrays and walked by numba: the fast path for one row and for batches.

``Booster.predict`` spends most of its time per call and per row outside the trees; a flat walk gives
the same raw scores (a test checks equality on real data) at a fraction of the cost. The arrays are
derived from the package's LightGBM text model at load time, so nothing executable is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

__all__ = ["FlatTrees"]

CATEGORICAL = 1
MISSING_CODES = {"None": 0, "Zero": 1, "NaN": 2}


@numba.njit(cache=True, nogil=True)
def _walk(cols: np.ndarray, i: int, roots: np.ndarray, feat: np.ndarray, thr: np.ndarray, kind: np.ndarray,
          missing: np.ndarray, default_left: np.ndarray, left: np.ndarray, right: np.ndarray, leaf: np.ndarray,
          cat_start: np.ndarray, cat_len: np.ndarray, cat_mask: np.ndarray) -> float:
    """Sum of leaf values of row ``i`` of a feature-major matrix (LightGBM's rules for missing and categorical)."""
    total = 0.0
    for t in range(roots.shape[0]):
        node = roots[t]
        while node >= 0:
            f = cols[feat[node], i]
            if kind[node] == CATEGORICAL:
                go_left = False
                if not np.isnan(f) and f >= 0:
                    c = int(f)
                    go_left = c < cat_len[node] and cat_mask[cat_start[node] + c]
            else:
                mt = missing[node]
                if np.isnan(f) and mt != 2:
                    f = 0.0
                if (mt == 1 and abs(f) <= 1e-35) or (mt == 2 and np.isnan(f)):
                    go_left = default_left[node]
                else:
                    go_left = f <= thr[node]
            node = left[node] if go_left else right[node]
        total += leaf[-node - 1]
    return total


@numba.njit(cache=True, parallel=True, nogil=True)
def _walk_rows(cols: np.ndarray, roots: np.ndarray, feat: np.ndarray, thr: np.ndarray, kind: np.ndarray,
               missing: np.ndarray, default_left: np.ndarray, left: np.ndarray, right: np.ndarray, leaf: np.ndarray,
               cat_start: np.ndarray, cat_len: np.ndarray, cat_mask: np.ndarray) -> np.ndarray:
    out = np.empty(cols.shape[1])
    for i in numba.prange(cols.shape[1]):
        out[i] = _walk(cols, i, roots, feat, thr, kind, missing, default_left, left, right, leaf, cat_start, cat_len,
                       cat_mask)
    return out


@dataclass
class FlatTrees:
    """All trees of a binary LightGBM model as node arrays; children < 0 are leaves (-index - 1)."""

    arrays: tuple[np.ndarray, ...]

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> FlatTrees:
        feat, thr, kind, missing, dleft, left, right, cstart, clen = ([] for _ in range(9))
        leaf: list[float] = []
        mask: list[bool] = []
        roots = []

        def add(node: dict[str, Any]) -> int:
            if "leaf_value" in node:
                leaf.append(node["leaf_value"])
                return -len(leaf)
            i = len(feat)
            feat.append(node["split_feature"])
            dleft.append(node["default_left"])
            missing.append(MISSING_CODES[node["missing_type"]])
            if node["decision_type"] == "==":
                cats = [int(c) for c in str(node["threshold"]).split("||")]
                kind.append(CATEGORICAL)
                thr.append(0.0)
                cstart.append(len(mask))
                clen.append(max(cats) + 1)
                bits = [False] * (max(cats) + 1)
                for c in cats:
                    bits[c] = True
                mask.extend(bits)
            else:
                kind.append(0)
                thr.append(float(node["threshold"]))
                cstart.append(0)
                clen.append(0)
            left.append(0)
            right.append(0)
            left[i] = add(node["left_child"])
            right[i] = add(node["right_child"])
            return i

        for tree in booster.dump_model()["tree_info"]:
            roots.append(add(tree["tree_structure"]))
        ints = [np.asarray(a, dtype=np.int64) for a in (roots, feat)]
        return cls((*ints, np.asarray(thr, dtype=np.float64), np.asarray(kind, dtype=np.int8),
                    np.asarray(missing, dtype=np.int8), np.asarray(dleft, dtype=np.bool_),
                    np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64),
                    np.asarray(leaf, dtype=np.float64), np.asarray(cstart, dtype=np.int64),
                    np.asarray(clen, dtype=np.int64), np.asarray(mask + [False], dtype=np.bool_)))

    def predict_row(self, x: np.ndarray) -> float:
        """Raw score (log-odds) of one float64 row."""
        return _walk(x.reshape(-1, 1), 0, *self.arrays)

    def predict_columns(self, cols: np.ndarray) -> np.ndarray:
        """Raw scores of a feature-major float64 matrix (features x rows), rows in parallel."""
        return _walk_rows(cols, *self.arrays)
