"""One compiled pass from prepared values to PD, score, grade and reason codes, for one row or a batch.

Every number the scorer returns comes from ``score_row``: ``Scorer.score`` calls it on one row and
``Scorer.score_frame`` calls it on every row of a batch, in parallel over chunks of rows (numba
``prange``), so the two paths give identical results by construction (a test checks it on real
data). The model — scorecard bins and points, the linear model, LightGBM's trees, the blend and its
calibration, the score scaling and the grades — is packed into one int64 and one float64 array at
load time (``pack``): a numba call pays for every array argument, and one application is scored in
a few microseconds. Everything numba compiles lives in this one module: numba's on-disk cache is
invalidated by a change of the module that defines a function, not of the modules it calls.

LightGBM's trees are evaluated feature by feature rather than node by node, with a leaf mask per
tree: every split a row's value fails clears the leaves of that node's left subtree in its tree's
leaf mask, and the row's leaf in each tree is the lowest bit left. A mask takes the fewest bits that
hold the model's largest tree (8, 16, 32 or 64), and the masks of several trees share one 64-bit
word (a model of 15-leaf trees: four trees a word). For a numeric feature the splits are sorted by
threshold, so the splits a value fails are the first k (a branch-free bisection): the masks they
leave are precomputed per k as one row of words (beyond ``ROWS_BUDGET`` every ``step``-th k, the rest
applied one by one). Missing values and categories have their rows too, computed with LightGBM's own
rules (``_go_left``). A row's masks are then the AND of one precomputed row per feature, word by
word. Leaf values are summed in tree order, so the raw scores equal ``Booster.predict`` (a test
checks equality on real data). The arrays are derived from the package's JSON files and LightGBM
text model: nothing executable is stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numba.extending
import numpy as np
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros

from openice.errors import ValidationError
from openice.scoring.features import MISSING, UNSEEN

__all__ = [
    "LINEAR_FIELDS",
    "N_LINEAR",
    "N_REASONS",
    "PD_FLOOR",
    "Compiled",
    "FlatTrees",
    "pack",
    "score_columns",
    "score_row",
]

PD_FLOOR = 1e-6  # a PD is kept within [PD_FLOOR, 1 - PD_FLOOR]
MISSING_CODES = {"None": 0, "Zero": 1, "NaN": 2}
MAX_LEAVES = 64  # one bit per leaf in a mask of at most 64 bits
CHUNKS = 1024  # a batch is split into this many chunks of rows, taken by the threads one at a time
BLOCK = 64  # rows of a chunk gathered side by side at a time
# int sections; openice.scoring.kernel appends its own after these
(
    TREE_LEAF0,
    SPLIT_AT,
    SPLIT_WORD,
    SPLIT_MASK,
    SPLIT_ZERO,
    NAN_ROW,
    ZERO_ROW,
    CAT_ROW,
    CAT_SLOTS,
    CHECKPOINT_AT,
    TREE_PARAMS,
    ROWS,
) = range(12)
STEP, WORDS, WIDTH = range(3)  # TREE_PARAMS: checkpoint spacing, 64-bit words per row of masks, bits per tree
N_INT_SECTIONS = 12
ROWS_BUDGET = 8 << 20  # bytes of precomputed mask rows; beyond it checkpoints are spaced out
MASK_WIDTHS = (8, 16, 32, 64)
# float sections
SPLIT_THRESHOLD, LEAF_VALUE = range(2)
N_FLOAT_SECTIONS = 2


def pack(sections: list[Any], dtype: type) -> np.ndarray:
    """Sections behind a header of offsets: section ``k`` is ``a[a[k]:a[k + 1]]``."""
    body: list[np.ndarray] = [np.asarray(s, dtype=dtype).ravel() for s in sections]
    offsets = len(sections) + 1 + np.cumsum([0] + [len(b) for b in body])
    return np.concatenate([offsets.astype(dtype), *body]).astype(dtype)


@numba.njit(cache=True, nogil=True, inline="always")
def section(a: np.ndarray, k: int) -> np.ndarray:
    return a[int(a[k]) : int(a[k + 1])]


@numba.njit(cache=True, nogil=True, inline="always")
def _count_below(a: np.ndarray, lo: int, hi: int, v: float) -> int:
    """How many of the sorted ``a[lo:hi]`` (not empty) are below ``v``, as ``np.searchsorted(side="left")``:
    a bisection whose steps are selects rather than branches, so a new value costs no misprediction."""
    n = hi - lo
    base = lo
    while n > 1:
        half = n >> 1
        base = base + half if a[base + half] < v else base
        n -= half
    return base - lo + (1 if a[base] < v else 0)


@numba.njit(cache=True, nogil=True)
def tree_sum(x: np.ndarray, ints: np.ndarray, floats: np.ndarray, scratch: np.ndarray) -> float:
    """Raw score (sum of leaf values) of one row; ``scratch``: ``FlatTrees.scratch`` int64s.

    Categorical features hold their code; a negative or NaN code takes LightGBM's not-in-set branch.
    """
    split_at, split_word, split_mask = section(ints, SPLIT_AT), section(ints, SPLIT_WORD), section(ints, SPLIT_MASK)
    split_zero, nan_row, zero_row = section(ints, SPLIT_ZERO), section(ints, NAN_ROW), section(ints, ZERO_ROW)
    cat_row, cat_slots, checkpoint_at = section(ints, CAT_ROW), section(ints, CAT_SLOTS), section(ints, CHECKPOINT_AT)
    prm, rows, threshold = section(ints, TREE_PARAMS), section(ints, ROWS), section(floats, SPLIT_THRESHOLD)
    step, words, width = prm[STEP], prm[WORDS], prm[WIDTH]
    nf = x.shape[0]
    at, extra = words, words + nf  # scratch: the masks, where each feature's row starts, (feature, k) to finish
    n_rows = n_extra = 0
    for f in range(nf):
        v = x[f]
        r = -1
        k = 0
        if cat_row[f] >= 0:
            r = cat_row[f] + (int(v) if v >= 0 and v < cat_slots[f] - 1 else cat_slots[f] - 1)
        elif np.isnan(v):
            r = nan_row[f]
        elif zero_row[f] >= 0 and abs(v) <= 1e-35:  # "zero as missing" splits send it the default way
            r, k = zero_row[f], -1
        elif split_at[f + 1] > split_at[f]:
            # the splits failed are the first k (thresholds below v): a precomputed row, then the rest one by one
            k = _count_below(threshold, split_at[f], split_at[f + 1], v)
            r = checkpoint_at[f] + k // step
            k = k if k % step else 0
        if r >= 0:
            scratch[at + n_rows] = r * words
            n_rows += 1
        if k != 0:
            scratch[extra + 2 * n_extra] = f
            scratch[extra + 2 * n_extra + 1] = k
            n_extra += 1
    for w in range(words):
        m = -1
        for i in range(n_rows):
            m &= rows[scratch[at + i] + w]
        scratch[w] = m
    for e in range(n_extra):
        f, k = scratch[extra + 2 * e], scratch[extra + 2 * e + 1]
        if k < 0:  # a zero: the other splits by their threshold
            for q in range(split_at[f], split_at[f + 1]):
                if split_zero[q] == 0 and x[f] > threshold[q]:
                    scratch[split_word[q]] &= split_mask[q]
        else:
            for q in range(split_at[f] + k - k % step, split_at[f] + k):
                scratch[split_word[q]] &= split_mask[q]
    leaf0, leaf = section(ints, TREE_LEAF0), section(floats, LEAF_VALUE)
    lanes = 64 // width
    total = 0.0
    for w in range(words):
        word = np.uint64(scratch[w])
        t0 = w * lanes
        for j in range(min(lanes, leaf0.shape[0] - t0)):
            lowest: int = trailing_zeros(word >> np.uint64(j * width))
            total += float(leaf[leaf0[t0 + j] + lowest])
    return total


@numba.njit(cache=True, parallel=True, nogil=True)
def _sum_rows(cols: np.ndarray, ints: np.ndarray, floats: np.ndarray, scratch_size: int) -> np.ndarray:
    n = cols.shape[1]
    out = np.empty(n)
    chunks = min(n, CHUNKS)
    for c in numba.prange(chunks):
        scratch = np.empty(scratch_size, dtype=np.int64)
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            out[i] = tree_sum(cols[:, i], ints, floats, scratch)
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
    return bool(value <= node["threshold"])


@dataclass
class FlatTrees:
    """All trees of a binary LightGBM model as split tables per feature, packed for numba."""

    int_sections: list[np.ndarray]
    float_sections: list[np.ndarray]

    def __post_init__(self) -> None:
        self.ints = pack(self.int_sections, np.int64)
        self.floats = pack(self.float_sections, np.float64)
        self.n_trees = len(self.int_sections[TREE_LEAF0])
        n_features = len(self.int_sections[SPLIT_AT]) - 1
        self.scratch = int(self.int_sections[TREE_PARAMS][WORDS]) + 3 * n_features  # see tree_sum

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> FlatTrees:
        dump = booster.dump_model()
        n_features = len(dump["feature_names"])
        splits: list[list[tuple[dict[str, Any], int, int]]] = [[] for _ in range(n_features)]  # (node, tree, mask)
        leaf0: list[int] = []
        leaves: list[float] = []

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
            splits[node["split_feature"]].append((node, t, left_leaves))
            return lo, hi

        for t, tree in enumerate(dump["tree_info"]):
            leaf0.append(len(leaves))
            visit(tree["tree_structure"], t)

        n_trees = len(leaf0)
        most = max([b - a for a, b in zip(leaf0, [*leaf0[1:], len(leaves)], strict=True)], default=1)
        width = next(w for w in MASK_WIDTHS if w >= most)
        lanes = 64 // width
        words = -(-n_trees // lanes)
        lane = (1 << width) - 1
        rows: list[np.ndarray] = []  # the leaf masks of all trees, lanes to a word: the splits a value fails, combined

        def row(failed: list[tuple[int, int]]) -> int:
            bits = [2**64 - 1] * words
            for t, left_leaves in failed:
                bits[t // lanes] &= ~(left_leaves << (t % lanes * width))
            rows.append(np.array([b & (2**64 - 1) for b in bits], dtype=np.uint64).view(np.int64))
            return len(rows) - 1

        def failing(nodes: list[tuple[dict[str, Any], int, int]], value: float) -> int:
            return row([(t, mask) for node, t, mask in nodes if not _go_left(node, value)])

        n_splits = sum(len(nodes) for nodes in splits)
        step = max(1, math.ceil(n_splits * words * 8 / ROWS_BUDGET))
        split_at, split_word, split_mask, split_zero, threshold = [0], [], [], [], []
        nan_row, zero_row, cat_row, cat_slots, checkpoint_at = [], [], [], [], []
        for nodes in splits:
            if any(node["decision_type"] == "==" for node, _, _ in nodes):
                n_codes = max(int(c) for node, _, _ in nodes for c in str(node["threshold"]).split("||")) + 1
                cat_row.append(len(rows))
                cat_slots.append(n_codes + 1)
                for code in [*range(n_codes), -1]:
                    failing(nodes, float(code))
                nan_row.append(-1)
                zero_row.append(-1)
                checkpoint_at.append(-1)
                nodes = []
            else:
                cat_row.append(-1)
                cat_slots.append(0)
                nodes = sorted(nodes, key=lambda s: s[0]["threshold"])
                zero = [s for s in nodes if s[0]["missing_type"] == "Zero"]
                nan_row.append(failing(nodes, math.nan) if nodes else -1)
                zero_row.append(failing(zero, 0.0) if zero else -1)
                checkpoint_at.append(len(rows))
                for k in range(0, len(nodes) + 1, step):  # the first k splits failed
                    row([(t, left_leaves) for _, t, left_leaves in nodes[:k]])
            for node, t, left_leaves in nodes:
                split_word.append(t // lanes)
                split_mask.append(~((left_leaves & lane) << (t % lanes * width)) & (2**64 - 1))
                split_zero.append(int(node["missing_type"] == "Zero"))
                threshold.append(float(node["threshold"]))
            split_at.append(len(split_word))
        ints = [
            leaf0,
            split_at,
            split_word,
            np.array(split_mask, dtype=np.uint64).view(np.int64),
            split_zero,
            nan_row,
            zero_row,
            cat_row,
            cat_slots,
            checkpoint_at,
            [step, words, width],
            np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        ]
        return cls(
            [np.asarray(a, dtype=np.int64) for a in ints],
            [np.asarray(threshold, dtype=np.float64), np.asarray(leaves, dtype=np.float64)],
        )

    @classmethod
    def empty(cls, n_features: int) -> FlatTrees:
        """No trees (a package without a LightGBM model): the sections ``tree_sum`` expects, all empty."""
        none = [-1] * n_features
        ints = [[], [0] * (n_features + 1), [], [], [], none, none, none, [0] * n_features, none, [1, 0, 64], []]
        return cls([np.asarray(a, dtype=np.int64) for a in ints], [np.zeros(0), np.zeros(0)])

    def predict_columns(self, cols: np.ndarray) -> np.ndarray:
        """Raw scores of a feature-major float64 matrix (features x rows), rows in parallel."""
        with dynamic_chunks():
            return _sum_rows(cols, self.ints, self.floats, self.scratch)


N_REASONS = 4  # score_row keeps the four largest losses in four variables
# int sections, after the trees'
(
    CARD_FEATURE,
    CARD_CATEGORICAL,
    CARD_SPLIT_AT,
    CARD_SPECIAL_AT,
    CARD_SPECIAL_BIN,
    CARD_MISSING_BIN,
    CARD_OTHER_BIN,
    CARD_CODE_AT,
    CARD_CODE_BIN,
    CARD_POINT_AT,
    CARD_REASON_AT,
    CARD_REASON,
    FEATURE_CATEGORICAL,
    LINEAR_CATEGORY_AT,
    NO_REASON,
) = range(N_INT_SECTIONS, N_INT_SECTIONS + 15)
# float sections, after the trees'
(
    CARD_SPLIT,
    CARD_SPECIAL,
    CARD_POINT,
    CARD_BEST,
    LINEAR_NUMERIC,
    LINEAR_CATEGORY,
    ISO_X,
    ISO_Y,
    GRADE_BOUND,
    PARAMS,
) = range(N_FLOAT_SECTIONS, N_FLOAT_SECTIONS + 10)
BLEND_INTERCEPT, W_SCORECARD, W_TREES, W_LINEAR, ISOTONIC, LINEAR_INTERCEPT, OFFSET, FACTOR = range(8)
LINEAR_FIELDS = ("lo", "hi", "fill", "mean", "sd", "coef", "missing_coef")
N_LINEAR = len(LINEAR_FIELDS)
# columns of the outputs
PD, SCORE, POINTS, LOST = 0, 1, 2, 3  # floats; LOST .. LOST + 3: points lost by the reasons
GRADE, REASON = 0, 1  # ints; REASON .. REASON + 3: reason code indices


@numba.njit(cache=True, nogil=True)
def score_row(
    x: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    reasons: bool,
    scratch: np.ndarray,
    fout: np.ndarray,
    iout: np.ndarray,
) -> None:
    """Score one prepared row ``x`` (numbers, NaN = missing; categories as codes) into ``fout`` and ``iout``.

    Reasons are the cards with the most points below their best bin, largest first, ties in card
    order, only where points were lost and the bin is riskier than average (a bin that raised the score
    carries the "no reason" code); unused reason slots get the "no reason" code.
    """
    prm = section(floats, PARAMS)
    card_feature, card_categorical = section(ints, CARD_FEATURE), section(ints, CARD_CATEGORICAL)
    split_at, splits = section(ints, CARD_SPLIT_AT), section(floats, CARD_SPLIT)
    special_at, specials = section(ints, CARD_SPECIAL_AT), section(floats, CARD_SPECIAL)
    special_bin, missing_bin = section(ints, CARD_SPECIAL_BIN), section(ints, CARD_MISSING_BIN)
    other_bin, code_at = section(ints, CARD_OTHER_BIN), section(ints, CARD_CODE_AT)
    code_bin = section(ints, CARD_CODE_BIN)
    point_at, points, best = section(ints, CARD_POINT_AT), section(floats, CARD_POINT), section(floats, CARD_BEST)
    reason_at, reason_code = section(ints, CARD_REASON_AT), section(ints, CARD_REASON)
    no_reason = section(ints, NO_REASON)[0]
    # the four largest losses so far, largest first (l0 >= l1 >= l2 >= l3), and their reason codes
    l0 = l1 = l2 = l3 = 0.0
    c0 = c1 = c2 = c3 = no_reason
    total = 0.0
    for k in range(card_feature.shape[0]):
        v = x[card_feature[k]]
        missing = False
        if card_categorical[k]:
            code = int(v)
            missing = code == MISSING
            if missing:
                b = missing_bin[k]
            elif code == UNSEEN:
                b = other_bin[k]
            else:
                b = code_bin[code_at[k] + code]
        elif np.isnan(v):
            missing = True
            b = missing_bin[k]
        else:
            b = -1
            if special_bin[k] >= 0:
                for s in range(special_at[k], special_at[k + 1]):
                    if v == specials[s]:
                        b = special_bin[k]
            if b < 0:  # the number of (sorted) splits <= v: few, counted without a branch
                b = 0
                for s in range(split_at[k], split_at[k + 1]):
                    b += 1 if splits[s] <= v else 0
        pts = points[point_at[k] + b]
        total += pts
        if reasons:  # insert after the equal losses already in (earlier cards first), with selects, not branches
            code = reason_code[reason_at[k] + (reason_at[k + 1] - reason_at[k] - 1 if missing else b)]
            lost = best[k] - pts if code != no_reason else 0.0  # a bin that raised the score is no reason
            g0, g1, g2, g3 = lost > l0, lost > l1, lost > l2, lost > l3
            l3 = l2 if g2 else (lost if g3 else l3)
            c3 = c2 if g2 else (code if g3 else c3)
            l2 = l1 if g1 else (lost if g2 else l2)
            c2 = c1 if g1 else (code if g2 else c2)
            l1 = l0 if g0 else (lost if g1 else l1)
            c1 = c0 if g0 else (code if g1 else c1)
            l0 = lost if g0 else l0
            c0 = code if g0 else c0
    fout[LOST], fout[LOST + 1], fout[LOST + 2], fout[LOST + 3] = l0, l1, l2, l3
    iout[REASON], iout[REASON + 1], iout[REASON + 2], iout[REASON + 3] = c0, c1, c2, c3
    s = prm[BLEND_INTERCEPT]
    if prm[W_SCORECARD] != 0.0:
        s += prm[W_SCORECARD] * ((prm[OFFSET] - total) / prm[FACTOR])
    if prm[W_TREES] != 0.0:
        s += prm[W_TREES] * tree_sum(x, ints, floats, scratch)
    if prm[W_LINEAR] != 0.0:
        s += prm[W_LINEAR] * _linear(x, ints, floats, prm[LINEAR_INTERCEPT])
    if prm[ISOTONIC] != 0.0:
        p = np.interp(s, section(floats, ISO_X), section(floats, ISO_Y))
    else:
        p = 1.0 / (1.0 + math.exp(-min(max(s, -700.0), 700.0)))  # no overflow on extreme log-odds
    p = min(max(p, PD_FLOOR), 1.0 - PD_FLOOR)
    bounds = section(floats, GRADE_BOUND)
    g = 0
    for q in range(bounds.shape[0]):  # the (sorted) bounds below p
        g += 1 if p > bounds[q] else 0
    fout[PD] = p
    fout[SCORE] = np.rint((prm[OFFSET] - prm[FACTOR] * math.log(p / (1.0 - p))) * 100.0) / 100.0
    fout[POINTS] = total
    iout[GRADE] = g


@numba.njit(cache=True, nogil=True, inline="always")
def _linear(x: np.ndarray, ints: np.ndarray, floats: np.ndarray, intercept: float) -> float:
    categorical, category_at = section(ints, FEATURE_CATEGORICAL), section(ints, LINEAR_CATEGORY_AT)
    numeric, category_coef = section(floats, LINEAR_NUMERIC), section(floats, LINEAR_CATEGORY)
    z = intercept
    for j in range(x.shape[0]):
        v = x[j]
        if categorical[j]:
            if v >= 0:
                z += category_coef[category_at[j] + int(v)]
        else:
            a = N_LINEAR * j  # lo, hi, fill, mean, sd, coef, missing_coef
            miss = np.isnan(v)
            u = min(max(numeric[a + 2] if miss else v, numeric[a]), numeric[a + 1])
            z += numeric[a + 5] * (u - numeric[a + 3]) / numeric[a + 4] + (numeric[a + 6] if miss else 0.0)
    return z


@numba.extending.intrinsic
def _pointer(typingctx: Any, address: Any) -> Any:
    """The int64 ``address`` as a pointer, for ``numba.carray`` over a column its caller keeps alive."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return numba.types.voidptr(numba.types.int64), codegen


@numba.njit(cache=True, parallel=True, nogil=True)
def _score_columns(
    addresses: np.ndarray,
    n: int,
    ints: np.ndarray,
    floats: np.ndarray,
    reasons: bool,
    scratch_size: int,
    out: np.ndarray,
    codes: np.ndarray,
) -> None:
    categorical = section(ints, FEATURE_CATEGORICAL)
    nf = addresses.shape[0]
    chunks = min(n, CHUNKS)
    for c in numba.prange(chunks):
        scratch = np.empty(scratch_size, dtype=np.int64)
        fout, iout = np.empty(LOST + N_REASONS), np.empty(REASON + N_REASONS, dtype=np.int64)
        rows = np.empty((BLOCK, nf))  # a block of rows, each row's values side by side
        lo, hi = c * n // chunks, (c + 1) * n // chunks
        for start in range(lo, hi, BLOCK):
            m = min(BLOCK, hi - start)
            for j in range(nf):
                if categorical[j]:
                    codes_j = numba.carray(_pointer(addresses[j]), n, np.int64)
                    for r in range(m):
                        rows[r, j] = codes_j[start + r]
                else:
                    values_j = numba.carray(_pointer(addresses[j]), n, np.float64)
                    for r in range(m):
                        rows[r, j] = values_j[start + r]
            for r in range(m):
                score_row(rows[r], ints, floats, reasons, scratch, fout, iout)
                out[PD, start + r], out[SCORE, start + r] = fout[PD], fout[SCORE]
                for q in range(1 + N_REASONS):
                    codes[q, start + r] = iout[GRADE + q]


def score_columns(
    columns: list[np.ndarray], n: int, compiled: Compiled, reasons: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``score_row`` for every one of the ``n`` rows of prepared columns (one per feature of the schema:
    numbers, category codes), in parallel over chunks of rows. Returns PD and score (2 x n) and the
    grade and reason indices (1 + N_REASONS x n, int32)."""
    flags = section(compiled.ints, FEATURE_CATEGORICAL)
    columns = [
        np.ascontiguousarray(col, dtype=np.int64 if cat else np.float64)
        for col, cat in zip(columns, flags, strict=True)
    ]
    if any(col.shape != (n,) for col in columns):
        raise ValueError(f"every column must hold {n} values")
    out, codes = np.empty((2, n)), np.empty((1 + N_REASONS, n), dtype=np.int32)
    addresses = np.array([col.ctypes.data for col in columns], dtype=np.int64)  # `columns` lives until we return
    with dynamic_chunks():
        _score_columns(addresses, n, compiled.ints, compiled.floats, reasons, compiled.scratch, out, codes)
    return out, codes


@dataclass
class Compiled:
    """A model packed for ``score_row``; ``reason_codes`` are the codes its reason indices point to."""

    ints: np.ndarray
    floats: np.ndarray
    scratch: int  # int64s of scratch space score_row needs
    reason_codes: list[str]  # sorted, then "" for "no reason"
    reason_texts: dict[str, str]
