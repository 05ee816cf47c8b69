"""Columns that cannot be features, caught before training instead of silently used or dropped.

An application id learns the row order, a constant or empty column learns nothing, a column that
separates goods from bads almost perfectly on its own was most likely recorded after the outcome
(leakage), and a near copy of another feature splits one effect between two. Each finding is left out
of the features and named in the training output, the package's metadata and the report; the analyst
may allow a column back by name once they know why it looks that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from openice.errors import ValidationError
from openice.scoring.metrics import auc

__all__ = ["CORRELATION", "LEAKAGE_AUC", "Finding", "screen"]

# The best whole credit models reach an AUC of about 0.85; no honest application field comes near
# 0.95 alone, while a field written after the outcome (recoveries, a collection flag) does.
LEAKAGE_AUC = 0.95
# Rank correlation (Spearman), so that a column and its logarithm or its share of another count as copies.
CORRELATION = 0.95
ID_MIN_ROWS = 20  # below this, distinct values per row are a matter of chance
GROUPS = 20  # quantile groups of a numeric column for its single-feature AUC
RARE = 0.01  # categories rarer than this are pooled for the single-feature AUC, so rarity cannot score


@dataclass(frozen=True)
class Finding:
    """One column caught by a check: why it cannot be a feature, and whether the analyst allowed it."""

    column: str
    check: str  # "all missing", "constant", "identifier", "leakage" or "correlated"
    why: str
    allowed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(**d)


def _is_numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col) and col.dtype != bool)


def _identifier(col: pd.Series) -> str | None:
    """Why the column looks like an identifier (distinct per row, or following the row order), else None."""
    n = len(col)
    if n < ID_MIN_ROWS or col.isna().any():
        return None
    distinct = col.nunique()
    if _is_numeric(col):
        values = col.to_numpy(dtype=float)
        if distinct >= n / 2 and (col.is_monotonic_increasing or col.is_monotonic_decreasing):
            return "follows the row order (an identifier or a time stamp, not a property of the applicant)"
        if distinct == n and np.array_equal(values, np.round(values)):
            return "a different whole number on every row (an identifier, not a property of the applicant)"
        return None
    if distinct == n:
        return "a different value on every row (an identifier, not a property of the applicant)"
    return None


def _groups(col: pd.Series) -> np.ndarray:
    """Group of each row for the single-feature AUC: quantile groups (numeric) or pooled categories; missing
    values form a group of their own."""
    if _is_numeric(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        finite = values[~np.isnan(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, GROUPS + 1)[1:-1]))
        bins: np.ndarray = np.searchsorted(edges, values, side="right")
        bins[np.isnan(values)] = len(edges) + 1
        return bins
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    pooled = np.where(counts >= RARE * len(col), np.arange(len(uniques)), len(uniques))
    groups: np.ndarray = np.where(codes >= 0, pooled[np.maximum(codes, 0)], len(uniques) + 1)
    return groups


def single_feature_auc(col: pd.Series, y: np.ndarray) -> float:
    """AUC of the column alone, scoring each row by its group's bad rate (any shape of risk, not only a trend)."""
    groups = _groups(col)
    rates = np.bincount(groups, weights=y) / np.maximum(np.bincount(groups), 1)
    return auc(y, rates[groups])


def _correlated(frame: pd.DataFrame, strength: dict[str, float]) -> list[Finding]:
    """Numeric columns with a rank correlation above CORRELATION with a stronger one (higher AUC alone)."""
    names = [c for c in sorted(strength, key=lambda c: -strength[c]) if _is_numeric(frame[c])]
    if len(names) < 2:
        return []
    rho = frame[names].rank().corr(min_periods=ID_MIN_ROWS).abs()
    kept: list[str] = []
    found = []
    for name in names:
        twin = next((k for k in kept if rho.at[name, k] > CORRELATION), None)
        if twin is None:
            kept.append(name)
        else:
            found.append(
                Finding(
                    name,
                    "correlated",
                    f"rank correlation {rho.at[name, twin]:.3f} with {twin!r}, which separates goods from bads "
                    f"as well or better (AUC alone {strength[twin]:.3f} against {strength[name]:.3f})",
                )
            )
    return found


def screen(frame: pd.DataFrame, y: np.ndarray, allow: Iterable[str] = ()) -> list[Finding]:
    """Every column that cannot be a feature, in column order; a column in ``allow`` is reported as allowed.

    Leakage and correlation are judged only on the columns that passed the checks before them.
    """
    allow = set(allow)
    unknown = sorted(allow - set(frame.columns))
    if unknown:
        raise ValidationError(f"no such columns: {unknown}", field="allow")
    y = np.asarray(y, dtype=float)
    found: list[Finding] = []
    strength: dict[str, float] = {}
    for name in frame.columns:
        col = frame[name]
        distinct = col.nunique(dropna=False)
        if col.isna().all():
            if name in allow:
                raise ValidationError("every value is missing: there is nothing to learn from", field="allow")
            found.append(Finding(name, "all missing", "every value is missing"))
            continue
        if distinct == 1:
            found.append(Finding(name, "constant", f"the same value ({col.iloc[0]!r}) on every row"))
            continue
        why = _identifier(col)
        if why:
            found.append(Finding(name, "identifier", why))
            continue
        strength[name] = single_feature_auc(col, y)
        if strength[name] > LEAKAGE_AUC:
            found.append(
                Finding(
                    name,
                    "leakage",
                    f"separates goods from bads almost perfectly on its own (AUC {strength[name]:.3f} > "
                    f"{LEAKAGE_AUC}): probably recorded after the outcome",
                )
            )
    usable = {f.column for f in found}
    candidates = {c: a for c, a in strength.items() if c not in usable or c in allow}
    found += _correlated(frame, candidates)
    order = {c: i for i, c in enumerate(frame.columns)}
    return sorted((Finding(f.column, f.check, f.why, f.column in allow) for f in found), key=lambda f: order[f.column])
