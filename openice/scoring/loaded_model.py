"""In-process scoring: the API the decisioning stage calls.

``Scorer.load(path)`` verifies a package; ``score(dict)`` scores one application in microseconds and
``score_frame`` a batch. Both run the same compiled row function (``openice.scoring.kernel``): the
batch path converts the columns to arrays once and scores rows in parallel, the single path calls it
on one row, so one application scored alone or in a batch gets exactly the same PD, score, grade
and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openice.errors import ValidationError
from openice.scoring import kernel
from openice.scoring.features import MISSING, UNSEEN, Prepared, prepare_record
from openice.scoring.kernel import N_REASONS, score_columns, score_row
from openice.scoring.model import Model
from openice.scoring.package import load_model, registry_champion

__all__ = ["N_REASONS", "Reason", "ScoreResult", "Scorer"]


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
        self._lookup = {
            s.name: {c: i for i, c in enumerate(s.categories)} for s in model.schema if s.kind == "categorical"
        }
        self._compiled = model.compiled()
        self._grades = [g for g, _ in model.config.grades]

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
        c = self._compiled
        fout, iout = np.empty(kernel.LOST + N_REASONS), np.empty(kernel.REASON + N_REASONS, dtype=np.int64)
        score_row(
            np.array(values, dtype=np.float64),
            c.ints,
            c.floats,
            reasons,
            np.empty(c.scratch, dtype=np.int64),
            fout,
            iout,
        )
        top = []
        for r in range(N_REASONS if reasons else 0):
            code = c.reason_codes[iout[kernel.REASON + r]]
            if code:
                top.append(Reason(code, c.reason_texts[code], round(float(fout[kernel.LOST + r]), 2)))
        return ScoreResult(
            float(fout[kernel.PD]),
            float(fout[kernel.SCORE]),
            self._grades[iout[kernel.GRADE]],
            top,
            flags,
            round(float(fout[kernel.POINTS]), 2),
        )

    # --- a batch -----------------------------------------------------------------------------------

    def score_frame(self, frame: pd.DataFrame, *, reasons: bool = True) -> pd.DataFrame:
        """Columns pd, score, grade, reason_1..reason_4 (codes, "" when fewer) and flags for every row."""
        model, c = self.model, self._compiled
        prep = model.prepare(frame)
        values, codes = score_columns([prep.columns[s.name] for s in model.schema], prep.n, c, reasons)
        out: dict[str, Any] = {
            "pd": values[kernel.PD],
            "score": values[kernel.SCORE],
            "grade": pd.Categorical.from_codes(codes[kernel.GRADE], categories=self._grades),
        }
        if reasons and model.scorecard.cards:
            for r in range(N_REASONS):
                out[f"reason_{r + 1}"] = pd.Categorical.from_codes(codes[kernel.REASON + r], categories=c.reason_codes)
        out["flags"] = self._flags(prep)
        return pd.DataFrame(out, index=frame.index)

    def _flags(self, prep: Prepared) -> pd.Categorical:
        """Each row's flags as a categorical: one bit per (feature, flag) that occurs, factorised once, so a
        million rows cost a few vector passes instead of a million strings."""
        names, masks = [], []
        rows: list[list[int]] | np.ndarray
        for s in self.model.schema:
            v = prep.columns[s.name]
            for mask, what in (
                ((np.isnan(v), "missing"),)
                if s.kind == "numeric"
                else ((v == MISSING, "missing"), (v == UNSEEN, "unseen_category"))
            ):
                if mask.any():
                    names.append(f"{what}:{s.name};")
                    masks.append(mask)
        if len(names) < 64:
            key = np.zeros(prep.n, dtype=np.uint64)
            for b, mask in enumerate(masks):
                key |= mask.astype(np.uint64) << np.uint64(b)
            codes, combos = pd.factorize(key)
            rows = [[int(c) >> b & 1 for b in range(len(names))] for c in combos]
        else:  # more kinds of flag than bits in a word: factorise the rows of the bit matrix
            rows, codes = np.unique(np.stack(masks, axis=1), axis=0, return_inverse=True)
        labels = ["".join(n for n, on in zip(names, row, strict=True) if on) for row in rows]
        return pd.Categorical.from_codes(codes, categories=labels)
