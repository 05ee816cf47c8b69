"""Training a package end to end: screen the columns, hold out a test sample, fit the champion, measure,
refit on every row, write the package."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from openice.errors import ValidationError
from openice.scoring.features import date_columns
from openice.scoring.metrics import calibration_table, summary
from openice.scoring.model import TrainConfig, fit_model, score_of_pd
from openice.scoring.monitor import build_reference, compare
from openice.scoring.package import frame_hash, save_model
from openice.scoring.screen import Finding, screen

__all__ = ["Trained", "train_package"]

EVAL_ROWS = 20_000  # rows of OOF/test predictions kept in the package for the report


def _sample(y: np.ndarray, p: np.ndarray, seed: int) -> dict[str, list[float]]:
    idx = np.arange(len(y))
    if len(idx) > EVAL_ROWS:
        idx = np.sort(np.random.default_rng(seed).choice(idx, EVAL_ROWS, replace=False))
    return {"y": [int(v) for v in y[idx]], "pd": [round(float(v), 6) for v in p[idx]]}


def _application_date(frame: pd.DataFrame, date_column: str | None) -> tuple[str | None, list[str]]:
    """The application-date column to record for monitoring, and every date column (none is a feature)."""
    dates = date_columns(frame)
    if date_column is None:
        return (dates[0] if len(dates) == 1 else None), dates
    if date_column not in frame.columns:
        raise ValidationError(f"no such column; columns are {list(frame.columns)}", field="date_column")
    if date_column not in dates:
        raise ValidationError(f"column {date_column!r} does not hold dates", field="date_column")
    return date_column, dates


@dataclass(frozen=True)
class Trained:
    """What training wrote: the package's hash, its metrics, the columns screened out or allowed, and whether the
    model that scores was refit on every row."""

    package_hash: str
    metrics: dict[str, Any]
    findings: list[Finding]
    refit: bool
    rows: dict[str, int]


def train_package(
    frame: pd.DataFrame,
    y: pd.Series | np.ndarray,
    out: str | Path,
    *,
    cfg: TrainConfig | None = None,
    test_size: float = 0.2,
    source: dict[str, Any] | None = None,
    date_column: str | None = None,
    allow: Iterable[str] = (),
    refit: bool = True,
) -> Trained:
    """Screen the columns, fit on a stratified training part, evaluate OOF and on the held-out part, then refit
    on every row (as scikit-learn's ``refit`` does) unless ``refit`` is false, and save.

    The metrics are those of the evaluated fit; with ``refit`` the package scores with the same procedure
    run on all the rows, so that the held-out part is not lost to the final model. Date columns are left
    out of the features; the application date (``date_column``, or the only date column found) is
    recorded in the metadata so that monitoring can group by month. Columns caught by the screening
    (`openice.scoring.screen`) are left out unless allowed.
    """
    cfg = cfg or TrainConfig()
    y = np.asarray(y, dtype=int)
    date_column, dates = _application_date(frame, date_column)
    frame = frame.drop(columns=dates).reset_index(drop=True)
    findings = screen(frame, y, allow)
    frame = frame.drop(columns=[f.column for f in findings if not f.allowed])
    if test_size > 0:
        tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=cfg.seed)
    else:
        tr, te = np.arange(len(y)), np.arange(0)
    xtr, ytr = frame.iloc[tr], y[tr]
    model = fit_model(xtr, ytr, cfg)
    oof_pd = model.oof_pd
    assert oof_pd is not None, "fit_model records the out-of-fold PDs"
    metrics: dict[str, Any] = {
        "oof": summary(ytr, oof_pd),
        "fit_seconds": model.fit_seconds,
        "oof_calibration": calibration_table(ytr, oof_pd),
    }
    evaluation = {"oof": _sample(ytr, oof_pd, cfg.seed)}
    if len(te):
        xte, yte = frame.iloc[te], y[te]
        test_pd = model.predict_pd(xte)
        metrics["test"] = summary(yte, test_pd)
        metrics["test_calibration"] = calibration_table(yte, test_pd)
        ref = build_reference(
            model.prepare(xtr), score_of_pd(model.predict_pd(xtr), model.scorecard.scaling), model.schema
        )
        drift = compare(ref, model.prepare(xte), score_of_pd(test_pd, model.scorecard.scaling), model.schema)
        metrics["psi_train_test"] = {"score_psi": drift["score_psi"], "csi": drift["csi"]}
        evaluation["test"] = _sample(yte, test_pd, cfg.seed)
    refit = refit and len(te) > 0
    if refit:
        model = fit_model(frame, y, cfg)
        metrics["refit_seconds"] = model.fit_seconds
        xfit, yfit = frame, y
    else:
        xfit, yfit = xtr, ytr
    fit_scores = score_of_pd(model.predict_pd(xfit), model.scorecard.scaling)
    evaluation["train_scores"] = _sample(yfit, fit_scores, cfg.seed)
    rows = {"train": int(len(tr)), "test": int(len(te)), "final": int(len(yfit))}
    extra = {
        "training_data_sha256": frame_hash(frame, y),
        "rows": rows,
        "refit": refit,
        "screening": [f.to_json() for f in findings],
        "source": source or {},
        "metrics": metrics,
        "date_column": date_column,
        "reference": build_reference(model.prepare(xfit), fit_scores, model.schema),
    }
    package_hash = save_model(model, out, extra=extra, files={"evaluation.json": evaluation})
    return Trained(package_hash, metrics, findings, refit, rows)
