"""In-process scoring: the API the decisioning stage calls.

``Scorer.load(path)`` verifies a package; ``score(dict)`` scores one application in tens of
microseconds (scorecard bins by bisect, LightGBM through ``Booster.predict`` on one float64 row with one
thread, the linear part as a dot product); ``score_frame`` is the vectorised batch path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from openice.errors import ValidationError
from openice.scoring.features import MISSING, UNSEEN, Prepared, prepare_record
from openice.scoring.model import PD_FLOOR, Model, score_of_pd
from openice.scoring.package import load_model, registry_champion

__all__ = ["N_REASONS", "Reason", "ScoreResult", "Scorer"]

N_REASONS = 4


@dataclass(frozen=True)
class Reason:
    """Why a score is lower: a stable code, plain text and the scorecard points lost."""

    code: str
    text: str
    impact: float


@dataclass(frozen=True)
class ScoreResult:
    pd: float
    score: float
    grade: str
    reasons: list[Reason] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    scorecard_points: float = 0.0


class Scorer:
    """A loaded, verified model package."""

    def __init__(self, model: Model, metadata: dict[str, Any], package_hash: str) -> None:
        self.model = model
        self.metadata = metadata
        self.package_hash = package_hash
        self.feature_names = [s.name for s in model.schema]
        self._lookup = {s.name: {c: i for i, c in enumerate(s.categories)} for s in model.schema
                        if s.kind == "categorical"}
        pos = {s.name: j for j, s in enumerate(model.schema)}
        self._cards = [(pos[c.name], c, c.max_points) for c in model.scorecard.cards]
        self._linear = [(j, s, model.linear.numeric.get(s.name), model.linear.categorical.get(s.name))
                        for j, s in enumerate(model.schema)]
        self._weights = model.blend.weights
        self._scaling = model.scorecard.scaling
        self._grades = model.config.grades
        self._numeric = [spec.kind == "numeric" for spec in model.schema]
        self._trees = model.trees if model.booster is not None else None

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        """Load a package directory, or the champion of a registry directory (hash checked against it)."""
        path = Path(path)
        if (path / "registry.json").exists():
            pkg, expected = registry_champion(path)
            model, meta, got = load_model(pkg)
            if got != expected:
                raise ValidationError("champion package hash differs from the registry's record", field="package")
            return cls(model, meta, got)
        return cls(*load_model(path))

    # --- one application ---------------------------------------------------------------------------

    def score(self, application: dict[str, Any], *, reasons: bool = True) -> ScoreResult:
        """PD, score, grade, up to four reasons and flags for one application (a dict of field -> value)."""
        if not isinstance(application, dict):
            raise ValidationError("an application must be a mapping of field to value", field="application")
        values, flags = prepare_record(application, self.model.schema, self._lookup, self.model.config.special)
        w = self._weights
        total, lost = 0.0, []
        for j, card, best in self._cards:
            b = card.bin_of(values[j])
            pts = card.points[b]
            total += pts
            if reasons and pts < best:
                v = values[j]
                k = len(card.labels) if (v != v or (card.kind == "categorical" and v == MISSING)) else b
                lost.append((best - pts, card.codes[k], card.texts[k]))
        s = self.model.blend.intercept
        if w[0]:
            s += w[0] * self._scaling.logit_of_score(total)
        if w[1]:
            row = np.array([v if (kind or v >= 0) else math.nan for v, kind in zip(values, self._numeric, strict=True)])
            s += w[1] * self._trees.predict_row(row)
        if w[2]:
            s += w[2] * self._linear_logit(values)
        if self.model.blend.calibration == "isotonic":
            p = float(np.interp(s, self.model.blend.iso_x, self.model.blend.iso_y))
        else:
            p = 1.0 / (1.0 + math.exp(-min(max(s, -700.0), 700.0)))  # no overflow on extreme log-odds
        p = min(max(p, PD_FLOOR), 1 - PD_FLOOR)
        score = round(self._scaling.offset - self._scaling.factor * math.log(p / (1 - p)), 2)
        grade = next(g for g, bound in self._grades if p <= bound)
        top = []
        if reasons:
            lost.sort(key=lambda t: -t[0])
            top = [Reason(code, text, round(imp, 2)) for imp, code, text in lost[:N_REASONS]]
        return ScoreResult(p, score, grade, top, flags, round(total, 2))

    def _linear_logit(self, values: list[float]) -> float:
        z = self.model.linear.intercept
        for j, spec, num, cat in self._linear:
            v = values[j]
            if num is not None:
                miss = v != v
                x = min(max(num["fill"] if miss else v, num["lo"]), num["hi"])
                z += num["coef"] * (x - num["mean"]) / num["sd"] + (num["missing_coef"] if miss else 0.0)
            elif v >= 0:
                z += cat.get(spec.categories[int(v)], 0.0)
        return z

    # --- a batch -----------------------------------------------------------------------------------

    def score_frame(self, frame: pd.DataFrame, *, reasons: bool = True) -> pd.DataFrame:
        """Columns pd, score, grade, reason_1..reason_4 (codes, "" when fewer) and flags for every row."""
        model = self.model
        prep = model.prepare(frame)
        bins, points = model.scorecard.points_matrix(prep)
        p = model.blend.pd(model.components(prep, points))
        out = {"pd": p, "score": score_of_pd(p, self._scaling), "grade": model.grade(p)}
        if reasons and model.scorecard.cards:
            out.update(self._reasons(prep, bins, points))
        flags = np.full(prep.n, "", dtype=object)
        for s in model.schema:
            v = prep.columns[s.name]
            for mask, what in ((np.isnan(v), "missing"),) if s.kind == "numeric" else \
                    ((v == MISSING, "missing"), (v == UNSEEN, "unseen_category")):
                if mask.any():
                    flags[mask] = flags[mask] + f"{what}:{s.name};"
        out["flags"] = flags
        return pd.DataFrame(out, index=frame.index)

    def _reasons(self, prep: Prepared, bins: np.ndarray, points: np.ndarray) -> dict[str, pd.Categorical]:
        """Top four reason codes per row (categorical columns; "" when fewer features lost points)."""
        cards = self.model.scorecard.cards
        lost = np.array([c.max_points for c in cards]) - points
        code_idx = bins  # reused in place: bins are not needed after this
        for j, c in enumerate(cards):
            v = prep.columns[c.name]
            code_idx[np.isnan(v) if c.kind == "numeric" else v == MISSING, j] = len(c.labels)
        offsets = np.cumsum([0] + [len(c.codes) for c in cards[:-1]])
        names = sorted({code for c in cards for code in c.codes}) + [""]
        position = {code: i for i, code in enumerate(names)}
        table = np.array([position[code] for c in cards for code in c.codes], dtype=np.int64)
        top = top_k(lost, N_REASONS)
        rows = np.arange(prep.n)
        out = {}
        for k in range(N_REASONS):
            j = top[:, k]
            safe = np.maximum(j, 0)
            idx = table[offsets[safe] + code_idx[rows, safe]]
            idx[j < 0] = len(names) - 1
            out[f"reason_{k + 1}"] = pd.Categorical.from_codes(idx, categories=names)
        return out


@numba.njit(cache=True, parallel=True)
def top_k(lost: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the k largest positive values, largest first (ties: first column); -1 pads."""
    n, m = lost.shape
    out = np.full((n, k), -1, dtype=np.int64)
    for i in numba.prange(n):
        for r in range(k):
            best, arg = 0.0, -1
            for j in range(m):
                v = lost[i, j]
                if v > best:
                    taken = False
                    for q in range(r):
                        if out[i, q] == j:
                            taken = True
                    if not taken:
                        best, arg = v, j
            if arg < 0:
                break
            out[i, r] = arg
    return out
