"""Monitoring: PSI of the score and CSI of each feature, on the reference sample's bins; and, where outcomes are
known, bad rate, AUC, KS and calibration by PD band against the training figures.

The reference (the training sample) is stored in the package as bin edges and shares, and its out-of-fold figures
with its calibration by PD decile, so monitoring needs only the package and the recent applications. Thresholds:
below 0.1 stable, 0.1-0.25 watch, 0.25 and above act.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from openice.datasets import DATASETS
from openice.errors import ValidationError
from openice.scoring.features import FeatureSpec, Prepared, date_columns
from openice.scoring.metrics import auc, ks, psi, quantile_edges

__all__ = [
    "ACT",
    "WATCH",
    "application_date_column",
    "band_calibration",
    "build_reference",
    "by_month",
    "compare",
    "monitor",
    "outcome_column",
    "outcomes",
    "pd_bands",
    "score_psi",
    "status",
    "training_figures",
]

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


def score_psi(reference: dict[str, Any], scores: np.ndarray) -> float:
    """PSI of scores against the reference's score bins."""
    return psi(
        reference["score"]["shares"], _numeric_shares(np.asarray(scores, dtype=float), reference["score"]["edges"])
    )


def compare(reference: dict[str, Any], prep: Prepared, scores: np.ndarray, schema: list[FeatureSpec]) -> dict[str, Any]:
    row: dict[str, Any] = {"n": prep.n, "score_psi": score_psi(reference, scores)}
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


def pd_bands(calibration: list[dict[str, float]]) -> list[dict[str, Any]]:
    """The PD bands monitoring compares calibration on: the training sample's out-of-fold PD deciles (as the
    package's ``oof_calibration`` holds them), each band up to its decile's highest PD, the last one open. Deciles
    sharing an upper PD are merged; each band keeps the training figures (n, mean PD, bad rate) to compare with."""
    bands: list[dict[str, Any]] = []
    for row in calibration:
        if bands and bands[-1]["upper"] == row["pd_max"]:
            last = bands[-1]
            n = last["n"] + row["n"]
            last["mean_pd"] = (last["mean_pd"] * last["n"] + row["mean_pd"] * row["n"]) / n
            last["bad_rate"] = (last["bad_rate"] * last["n"] + row["bad_rate"] * row["n"]) / n
            last["n"] = n
        else:
            bands.append(
                {"upper": row["pd_max"], "n": row["n"], "mean_pd": row["mean_pd"], "bad_rate": row["bad_rate"]}
            )
    for lower, band in zip([0.0] + [b["upper"] for b in bands], bands, strict=False):
        band["lower"] = lower
    if bands:
        bands[-1]["upper"] = 1.0
    return bands


def band_calibration(y: np.ndarray, p: np.ndarray, bands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per PD band (lower, upper]: how many, their mean PD and observed bad rate (None when the band is empty),
    beside the training sample's mean PD and bad rate in that band."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    inner = np.asarray([b["upper"] for b in bands[:-1]])
    index = np.searchsorted(inner, p, side="left")
    rows = []
    for k, band in enumerate(bands):
        mask = index == k
        n = int(mask.sum())
        rows.append(
            {
                "lower": band["lower"],
                "upper": band["upper"],
                "n": n,
                "mean_pd": float(p[mask].mean()) if n else None,
                "bad_rate": float(y[mask].mean()) if n else None,
                "training_mean_pd": band["mean_pd"],
                "training_bad_rate": band["bad_rate"],
            }
        )
    return rows


def outcomes(y: np.ndarray, p: np.ndarray, bands: list[dict[str, Any]]) -> dict[str, Any]:
    """Bad rate, AUC and KS of the PDs given the known outcomes (1 = bad), and calibration by PD band. AUC and KS
    are None unless there are both goods and bads: neither ranks anything otherwise."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    bads = int(y.sum())
    ranks = 0 < bads < len(y)
    return {
        "n": int(len(y)),
        "bads": bads,
        "bad_rate": bads / len(y) if len(y) else None,
        "auc": auc(y, p) if ranks else None,
        "ks": ks(y, p) if ranks else None,
        "calibration": band_calibration(y, p, bands),
    }


def training_figures(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The training reference's out-of-fold bad rate, AUC, KS and PD bands, which monitoring compares with (None
    for a package that does not record them)."""
    metrics = metadata.get("metrics", {})
    if "oof" not in metrics or "oof_calibration" not in metrics:
        return None
    oof = metrics["oof"]
    return {
        "n": oof["n"],
        "bad_rate": oof["bad_rate"],
        "auc": oof["auc"],
        "ks": oof["ks"],
        "bands": pd_bands(metrics["oof_calibration"]),
    }


def outcome_column(metadata: dict[str, Any]) -> tuple[str, str] | None:
    """The target column the package was trained on and its bad value: from the file's recorded source, or the
    bundled data set's definition; None when the package does not say."""
    source = metadata.get("source", {})
    if "target" in source and "bad" in source:
        return str(source["target"]), str(source["bad"])
    if source.get("dataset") in DATASETS:
        spec = DATASETS[source["dataset"]]
        return spec.target, spec.bad
    return None


def _group_keys(frame: pd.DataFrame, by: str, date_column: str | None, recorded: str | None) -> np.ndarray:
    if by == "month":
        return _months(frame[application_date_column(frame, date_column, recorded)])
    if by in frame.columns:
        keys: np.ndarray = frame[by].astype("str").fillna("(missing)").to_numpy()
        return keys
    raise ValidationError(f"no column {by!r} to group by", field="by")


def monitor(
    scorer: Any,
    frame: pd.DataFrame,
    *,
    by: str | None = None,
    date_column: str | None = None,
    y: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """PSI/CSI of a recent sample against the package's reference, overall and per group; with the outcomes ``y``
    (1 = bad), each row also has its ``outcomes`` (see ``outcomes``) on the training sample's PD bands.

    ``by="month"`` groups by the month of the application date (see ``application_date_column``);
    any other value groups by that column.
    """
    reference = scorer.metadata.get("reference")
    if reference is None:
        raise ValidationError("the package has no reference sample for monitoring", field="package")
    training = training_figures(scorer.metadata) if y is not None else None
    if y is not None and training is None:
        raise ValidationError("the package records no training figures to compare outcomes with", field="package")
    model = scorer.model
    prep = model.prepare(frame)
    scored = scorer.score_frame(frame, reasons=False)
    scores, pds = scored["score"].to_numpy(), scored["pd"].to_numpy()
    groups = [("all", np.arange(len(frame)))]
    if by:
        keys = _group_keys(frame, by, date_column, scorer.metadata.get("date_column"))
        groups += [(str(key), np.flatnonzero(keys == key)) for key in sorted(set(keys))]
    rows = []
    for name, idx in groups:
        sub = Prepared({k: v[idx] for k, v in prep.columns.items()}, len(idx))
        row = {"group": name, **compare(reference, sub, scores[idx], model.schema)}
        if y is not None and training is not None:
            row["outcomes"] = outcomes(np.asarray(y)[idx], pds[idx], training["bands"])
        rows.append(row)
    return rows


def by_month(
    metadata: dict[str, Any], months: Sequence[str], scores: ArrayLike, pds: ArrayLike, bad: ArrayLike
) -> list[dict[str, Any]]:
    """The champion's stability and, where outcomes are known, performance per month, from stored decisions:
    each decision's month, score and PD, and ``bad`` 1 or 0 where its outcome is known, -1 where it is not."""
    reference = metadata.get("reference")
    if reference is None:
        raise ValidationError("the package has no reference sample for monitoring", field="package")
    training = training_figures(metadata)
    keys, score, pd_, outcome = np.asarray(months), np.asarray(scores, float), np.asarray(pds, float), np.asarray(bad)
    rows = []
    for month in sorted(set(months)):
        idx = np.flatnonzero(keys == month)
        known = idx[outcome[idx] >= 0]
        psi_value = score_psi(reference, score[idx])
        row: dict[str, Any] = {"group": month, "n": len(idx), "score_psi": psi_value, "score_status": status(psi_value)}
        row["outcomes"] = outcomes(outcome[known], pd_[known], training["bands"]) if len(known) and training else None
        rows.append(row)
    return rows
