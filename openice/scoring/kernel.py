"""One compiled pass from prepared values to PD, score, grade and reason codes, for one row or a batch.

Every number the scorer returns comes from ``score_row``: ``Scorer.score`` calls it on one row and
``Scorer.score_frame`` calls it on every row of a batch, in parallel over rows (numba ``prange``), so
the two paths give identical results by construction (a test checks it on real data). The model —
scorecard bins and points, the linear model, the trees, the blend and its calibration, the score
scaling and the grades — is packed into one int64 and one float64 array at load time (see
``openice.scoring.trees.pack``) so a call from Python costs about a microsecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from openice.scoring.features import MISSING, UNSEEN
from openice.scoring.model import PD_FLOOR, Model
from openice.scoring.trees import (
    CHUNKS,
    N_FLOAT_SECTIONS,
    N_INT_SECTIONS,
    FlatTrees,
    dynamic_chunks,
    pack,
    section,
    tree_sum,
)

__all__ = ["N_REASONS", "Compiled", "score_columns", "score_row"]

N_REASONS = 4
# int sections, after the trees'
(CARD_FEATURE, CARD_CATEGORICAL, CARD_SPLIT_AT, CARD_SPECIAL_AT, CARD_SPECIAL_BIN, CARD_MISSING_BIN, CARD_OTHER_BIN,
 CARD_CODE_AT, CARD_CODE_BIN, CARD_POINT_AT, CARD_REASON_AT, CARD_REASON, FEATURE_CATEGORICAL, LINEAR_CATEGORY_AT,
 NO_REASON) = range(N_INT_SECTIONS, N_INT_SECTIONS + 15)
# float sections, after the trees'
(CARD_SPLIT, CARD_SPECIAL, CARD_POINT, CARD_BEST, LINEAR_NUMERIC, LINEAR_CATEGORY, ISO_X, ISO_Y, GRADE_BOUND,
 PARAMS) = range(N_FLOAT_SECTIONS, N_FLOAT_SECTIONS + 10)
BLEND_INTERCEPT, W_SCORECARD, W_TREES, W_LINEAR, ISOTONIC, LINEAR_INTERCEPT, OFFSET, FACTOR = range(8)
LINEAR_FIELDS = ("lo", "hi", "fill", "mean", "sd", "coef", "missing_coef")
N_LINEAR = len(LINEAR_FIELDS)
# columns of the outputs
PD, SCORE, POINTS, LOST = 0, 1, 2, 3  # floats; LOST .. LOST + 3: points lost by the reasons
GRADE, REASON = 0, 1  # ints; REASON .. REASON + 3: reason code indices


@numba.njit(cache=True, nogil=True)
def score_row(x: np.ndarray, ints: np.ndarray, floats: np.ndarray, reasons: bool, masks: np.ndarray,
              fout: np.ndarray, iout: np.ndarray) -> None:
    """Score one prepared row ``x`` (numbers, NaN = missing; categories as codes) into ``fout`` and ``iout``.

    Reasons are the cards with the most points below their best bin, largest first, ties in card
    order, only where points were lost; unused reason slots get the "no reason" code.
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
    for r in range(N_REASONS):
        fout[LOST + r] = 0.0
        iout[REASON + r] = no_reason
    total = 0.0
    n_found = 0
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
            if b < 0:  # the number of splits <= v (few: a linear scan beats a bisection)
                b = 0
                while split_at[k] + b < split_at[k + 1] and splits[split_at[k] + b] <= v:
                    b += 1
        pts = points[point_at[k] + b]
        total += pts
        lost = best[k] - pts
        if reasons and lost > 0:
            pos = n_found
            while pos > 0 and fout[LOST + pos - 1] < lost:
                pos -= 1
            if pos < N_REASONS:
                for q in range(min(n_found, N_REASONS - 1), pos, -1):
                    fout[LOST + q] = fout[LOST + q - 1]
                    iout[REASON + q] = iout[REASON + q - 1]
                fout[LOST + pos] = lost
                iout[REASON + pos] = reason_code[reason_at[k] + (reason_at[k + 1] - reason_at[k] - 1 if missing else b)]
                n_found = min(n_found + 1, N_REASONS)
    s = prm[BLEND_INTERCEPT]
    if prm[W_SCORECARD] != 0.0:
        s += prm[W_SCORECARD] * ((prm[OFFSET] - total) / prm[FACTOR])
    if prm[W_TREES] != 0.0:
        s += prm[W_TREES] * tree_sum(x, ints, floats, masks)
    if prm[W_LINEAR] != 0.0:
        s += prm[W_LINEAR] * _linear(x, ints, floats, prm[LINEAR_INTERCEPT])
    if prm[ISOTONIC] != 0.0:
        p = np.interp(s, section(floats, ISO_X), section(floats, ISO_Y))
    else:
        p = 1.0 / (1.0 + math.exp(-min(max(s, -700.0), 700.0)))  # no overflow on extreme log-odds
    p = min(max(p, PD_FLOOR), 1.0 - PD_FLOOR)
    bounds = section(floats, GRADE_BOUND)
    g = 0
    while g < bounds.shape[0] and p > bounds[g]:
        g += 1
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


@numba.njit(cache=True, parallel=True, nogil=True)
def _score_columns(cols: np.ndarray, ints: np.ndarray, floats: np.ndarray, reasons: bool, n_trees: int,
                   fout: np.ndarray, iout: np.ndarray) -> None:
    n = cols.shape[1]
    chunks = min(n, CHUNKS)
    for c in numba.prange(chunks):
        masks = np.empty(n_trees, dtype=np.int64)
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            score_row(cols[:, i], ints, floats, reasons, masks, fout[i], iout[i])


def score_columns(cols: np.ndarray, compiled: Compiled, reasons: bool, fout: np.ndarray, iout: np.ndarray) -> None:
    """``score_row`` for every column of a feature-major matrix, in parallel over chunks of rows."""
    with dynamic_chunks():
        _score_columns(cols, compiled.ints, compiled.floats, reasons, compiled.n_trees, fout, iout)


@dataclass
class Compiled:
    """A model packed for ``score_row``; ``reason_codes`` are the codes its reason indices point to."""

    ints: np.ndarray
    floats: np.ndarray
    n_trees: int
    reason_codes: list[str]  # sorted, then "" for "no reason"
    reason_texts: dict[str, str]

    @classmethod
    def of(cls, model: Model) -> Compiled:
        schema = model.schema
        pos = {s.name: j for j, s in enumerate(schema)}
        cards = model.scorecard.cards
        codes = sorted({code for c in cards for code in c.codes}) + [""]
        index = {code: i for i, code in enumerate(codes)}

        def offsets(parts: list[list[float]]) -> list[int]:
            return np.cumsum([0] + [len(p) for p in parts]).tolist()

        code_bins = [c._code_bins.tolist() if c.kind == "categorical" else [] for c in cards]
        ints = [
            [pos[c.name] for c in cards], [int(c.kind == "categorical") for c in cards],
            offsets([c.splits for c in cards]), offsets([c.special for c in cards]),
            [-1 if c.special_bin is None else c.special_bin for c in cards], [c.missing_bin for c in cards],
            [-1 if c.other_bin is None else c.other_bin for c in cards], offsets(code_bins),
            [b for bins in code_bins for b in bins], offsets([c.points for c in cards]),
            offsets([c.codes for c in cards]), [index[code] for c in cards for code in c.codes],
            [int(s.kind == "categorical") for s in schema],
            offsets([list(s.categories) if s.kind == "categorical" else [] for s in schema]),
            [len(codes) - 1],
        ]
        lin = model.linear
        numeric = [[lin.numeric[s.name][f] for f in LINEAR_FIELDS] if s.kind == "numeric" else [0.0] * N_LINEAR
                   for s in schema]
        category = [lin.categorical[s.name].get(cat, 0.0) for s in schema if s.kind == "categorical"
                    for cat in s.categories]
        blend, scaling = model.blend, model.scorecard.scaling
        trees = model.trees if model.booster is not None else FlatTrees.empty(len(schema))
        weights = [blend.weights[0], blend.weights[1] if model.booster is not None else 0.0, blend.weights[2]]
        params = [blend.intercept, *weights, float(blend.calibration == "isotonic"), lin.intercept, scaling.offset,
                  scaling.factor]
        floats = [
            [v for c in cards for v in c.splits], [v for c in cards for v in c.special],
            [v for c in cards for v in c.points], [c.max_points for c in cards], numeric, category, blend.iso_x,
            blend.iso_y, [b for _, b in model.config.grades[:-1]], params,
        ]
        texts = {code: text for c in cards for code, text in zip(c.codes, c.texts, strict=True)}
        return cls(pack(trees.int_sections + ints, np.int64), pack(trees.float_sections + floats, np.float64),
                   trees.n_trees, codes, texts)
