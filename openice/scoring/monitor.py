"""Stability monitoring: PSI of the score and CSI of each feature, on the reference sample's bins.

The reference (the training sample) is stored in the package as bin edges and shares, so monitoring
needs only the package and the recent applications. Thresholds: below 0.1 stable, 0.1-0.25 watch,
0.25 and above act.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from openice.errors import ValidationError
from openice.scoring.features import FeatureSpec, Prepared, date_columns
from openice.scoring.metrics import psi, quantile_edges

__all__ = ["ACT", "WATCH", "application_date_column", "build_reference", "compare", "monitor", "status"]

WATCH = 0.1
ACT = 0.25


def status(value: float) -> str:
    return "act" if value >= ACT else "watch" if value >= WATCH else "stable"


def _numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares in the quantile bins, then a last bin for missing values."""
    miss = np.isnan(values)
    counts = np.bincount(np.searchsorted(np.asarray(edges), values[~miss], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, miss.sum()).astype(float)
    return [float(share) for share in counts / max(counts.sum(), 1)]


def _categorical_shares(codes: np.ndarray, n_categories: int) -> list[float]:
    """Shares per training category, then unseen ("other"), then missing."""
    idx = np.where(codes >= 0, codes, n_categories - 1 - codes)
    counts = np.bincount(idx, minlength=n_categories + 2).astype(float)
    return [float(share) for share in counts / max(counts.sum(), 1)]


def _feature_shares(spec: FeatureSpec, values: np.ndarray, edges: list[float]) -> list[float]:
    return (
        _numeric_shares(values, edges) if spec.kind == "numeric" else _categorical_shares(values, len(spec.categories))
    )


def build_reference(prep: Prepared, scores: np.ndarray, schema: list[FeatureSpec]) -> dict[str, Any]:
    """Quantile bins (deciles) of the score and of each numeric feature, category shares otherwise."""
    score_edges = quantile_edges(scores)
    features = {}
    for s in schema:
        edges = quantile_edges(prep.columns[s.name]) if s.kind == "numeric" else []
        features[s.name] = {"edges": edges, "shares": _feature_shares(s, prep.columns[s.name], edges)}
    return {
        "n": prep.n,
        "score": {"edges": score_edges, "shares": _numeric_shares(scores, score_edges)},
        "features": features,
    }


def compare(reference: dict[str, Any], prep: Prepared, scores: np.ndarray, schema: list[FeatureSpec]) -> dict[str, Any]:
    ref_score = reference["score"]
    row: dict[str, Any] = {
        "n": prep.n,
        "score_psi": psi(ref_score["shares"], _numeric_shares(scores, ref_score["edges"])),
    }
    csi = {}
    for s in schema:
        ref = reference["features"][s.name]
        csi[s.name] = psi(ref["shares"], _feature_shares(s, prep.columns[s.name], ref["edges"]))
    row["score_status"] = status(row["score_psi"])
    row["csi"] = csi
    row["features_to_act"] = sorted(k for k, v in csi.items() if v >= ACT)
    row["features_to_watch"] = sorted(k for k, v in csi.items() if WATCH <= v < ACT)
    return row


def application_date_column(frame: pd.DataFrame, given: str | None, recorded: str | None) -> str:
    """The column ``--by month`` groups on: the one given, else the package's recorded application
    date, else the input's only date column; otherwise an error saying to pass ``--date-column``."""
    if given:
        if given not in frame.columns:
            raise ValidationError(f"no column {given!r} in the input", field="date_column")
        return given
    if recorded and recorded in frame.columns:
        return recorded
    found = date_columns(frame)
    if len(found) == 1:
        return found[0]
    lacks = f" (the package's application date {recorded!r} is not in it)" if recorded else ""
    if not found:
        raise ValidationError(
            f"--by month needs the application date, and the input has no date column{lacks}: pass --date-column NAME",
            field="date_column",
        )
    raise ValidationError(
        f"--by month: the input has several date columns {found}{lacks}: pass --date-column with the application date",
        field="date_column",
    )


def _months(values: pd.Series) -> np.ndarray:
    """ "YYYY-MM" of each date ("unknown" where it is not a date); distinct values are parsed once."""
    codes, uniques = pd.factorize(values.astype("str"), use_na_sentinel=True)
    months = pd.to_datetime(pd.Series(uniques), errors="coerce", format="mixed").dt.strftime("%Y-%m")
    by_code: np.ndarray = np.append(months.fillna("unknown").to_numpy(dtype=object), "unknown")
    months_of_rows: np.ndarray = by_code[codes]
    return months_of_rows


def monitor(
    scorer: Any, frame: pd.DataFrame, *, by: str | None = None, date_column: str | None = None
) -> list[dict[str, Any]]:
    """PSI/CSI of a recent sample against the package's reference, overall and per group.

    ``by="month"`` groups by the month of the application date (see ``application_date_column``);
    any other value groups by that column.
    """
    reference = scorer.metadata.get("reference")
    if reference is None:
        raise ValidationError("the package has no reference sample for monitoring", field="package")
    model = scorer.model
    prep = model.prepare(frame)
    scores = scorer.score_frame(frame, reasons=False)["score"].to_numpy()
    rows = [{"group": "all", **compare(reference, prep, scores, model.schema)}]
    if by:
        if by == "month":
            keys = _months(frame[application_date_column(frame, date_column, scorer.metadata.get("date_column"))])
        elif by in frame.columns:
            keys = frame[by].astype("str").fillna("(missing)").to_numpy()
        else:
            raise ValidationError(f"no column {by!r} to group by", field="by")
        for key in sorted(set(keys)):
            idx = np.flatnonzero(keys == key)
            sub = Prepared({k: v[idx] for k, v in prep.columns.items()}, len(idx))
            rows.append({"group": str(key), **compare(reference, sub, scores[idx], model.schema)})
    return rows
