"""The model metrics used by training, reports, monitoring and the benchmark: one definition each."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

__all__ = ["auc", "brier", "calibration_table", "ece", "ks", "psi", "quantile_edges", "summary"]

EPS = 1e-6


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve of a PD (higher PD = more likely bad): the Mann-Whitney statistic on the PDs' ranks
    (ties ranked as their average, so a tied pair counts one half), as scikit-learn's `roc_auc_score` computes it
    to the last bit or two, without its input checks, which cost far more than the sum on a month of decisions."""
    y = np.asarray(y)
    ranks = rankdata(p)
    bads = int(np.count_nonzero(y == 1))
    goods = len(y) - bads
    return float((ranks[y == 1].sum() - bads * (bads + 1) / 2) / (bads * goods))


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the cumulative PD distributions of bads and goods."""
    y = np.asarray(y)
    order = np.argsort(-np.asarray(p), kind="mergesort")
    ys = y[order]
    cum_bad = np.cumsum(ys) / max(ys.sum(), 1)
    cum_good = np.cumsum(1 - ys) / max((1 - ys).sum(), 1)
    return float(np.max(np.abs(cum_bad - cum_good)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the PD: calibration and sharpness together."""
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean PD against observed bad rate in equal-count PD bins (deciles by default)."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(p, kind="mergesort")
    rows = []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            rows.append(
                {
                    "n": int(len(chunk)),
                    "mean_pd": float(p[chunk].mean()),
                    "bad_rate": float(y[chunk].mean()),
                    "pd_min": float(p[chunk].min()),
                    "pd_max": float(p[chunk].max()),
                }
            )
    return rows


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: count-weighted |mean PD - bad rate| over PD deciles."""
    rows = calibration_table(y, p, bins)
    total = sum(r["n"] for r in rows)
    return float(sum(r["n"] * abs(r["mean_pd"] - r["bad_rate"]) for r in rows) / total)


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, Gini, KS, Brier and ECE of one PD vector."""
    a = auc(y, p)
    return {
        "auc": a,
        "gini": 2 * a - 1,
        "ks": ks(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p),
        "n": int(len(y)),
        "bad_rate": float(np.mean(y)),
    }


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Inner edges of the reference sample's quantile bins (duplicates removed), for PSI and CSI."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return []
    return [float(e) for e in np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))]


def psi(expected: ArrayLike, actual: ArrayLike) -> float:
    """Population stability index between two vectors of bin shares (same bins, each summing to 1)."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))
