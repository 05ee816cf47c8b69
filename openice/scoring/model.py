"""The champion: a calibrated stack of the scorecard, LightGBM and a linear model, tuned by inner CV only.

Each component is fitted on inner folds of the training data to get out-of-fold (OOF) log-odds; the
number of boosting rounds is the inner folds' early-stopping average; a non-negative logistic stack of
the OOF log-odds, then Platt or isotonic calibration, is chosen by cross-validating on the OOF rows.
The champion is the candidate (each component alone or the stack) with the best cross-validated OOF
AUC. The scorecard is always kept: reason codes come from its points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence, Sized
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from openice.errors import ValidationError
from openice.scoring.features import FeatureSpec, Prepared, infer_schema, prepare_frame
from openice.scoring.kernel import LINEAR_FIELDS, N_LINEAR, PD_FLOOR, Compiled, FlatTrees, pack
from openice.scoring.metrics import auc, brier
from openice.scoring.scorecard import Scaling, Scorecard, fit_scorecard

__all__ = ["COMPONENTS", "Blend", "Linear", "Model", "TrainConfig", "fit_model"]

COMPONENTS = ("scorecard", "lightgbm", "linear")
CANDIDATES = {"scorecard": (0,), "lightgbm": (1,), "linear": (2,), "blend": (0, 1, 2)}
DEFAULT_GRADES = (("A", 0.02), ("B", 0.05), ("C", 0.10), ("D", 0.15), ("E", 0.25), ("F", 0.40), ("G", 1.0))


@dataclass(frozen=True)
class TrainConfig:
    """Training options; the defaults are meant for any tabular credit data, not tuned to one set.

    Checked once, when built (from the command line or a package's metadata), so nothing downstream checks again.
    Whether a special code names a numeric feature depends on the data: `fit_model` checks that.
    """

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    inner_folds: int = 4
    seed: int = 0
    learning_rate: float = 0.05
    num_leaves: int = 15
    max_rounds: int = 1000
    threads: int = 2
    min_iv: float = 0.02
    special: dict[str, list[float]] = field(default_factory=dict)
    no_trend: tuple[str, ...] = ()  # numeric features binned without a monotonic trend, as the analyst asked
    grades: tuple[tuple[str, float], ...] = DEFAULT_GRADES

    def __post_init__(self) -> None:
        if not (isinstance(self.pdo, int | float) and math.isfinite(self.pdo) and self.pdo > 0):
            raise ValidationError(f"points to double the odds must be a positive number, got {self.pdo!r}", field="pdo")
        names = [name for name, _ in self.grades]
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ValidationError(f"grades need distinct, non-empty names, got {names!r}", field="grades")
        bounds = [bound for _, bound in self.grades]
        if not all(isinstance(b, int | float) and 0 < b <= 1 for b in bounds):
            raise ValidationError(f"grade bounds are PDs in (0, 1], got {bounds!r}", field="grades")
        if any(low >= high for low, high in zip(bounds, bounds[1:], strict=False)):  # score_row counts bounds below
            raise ValidationError(f"grade bounds are not in ascending order: {bounds!r}", field="grades")
        for name, codes in self.special.items():
            if not codes or not all(isinstance(c, int | float) and math.isfinite(c) for c in codes):
                raise ValidationError(f"special codes must be finite numbers, got {codes!r}", field=name)

    @property
    def scaling(self) -> Scaling:
        return Scaling(self.base_points, self.base_odds, self.pdo)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    p: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return p


# --- linear component ---------------------------------------------------------------------------------


@dataclass
class Linear:
    """Logistic regression on winsorised, standardised numbers (+ missing flags) and one-hot categories."""

    intercept: float
    numeric: dict[str, dict[str, float]]  # name -> lo, hi, fill, mean, sd, coef, missing_coef
    categorical: dict[str, dict[str, float]]  # name -> category -> coef

    def logit(self, prep: Prepared, schema: list[FeatureSpec]) -> np.ndarray:
        z = np.full(prep.n, self.intercept)
        for spec in schema:
            v = prep.columns[spec.name]
            if spec.kind == "numeric":
                p = self.numeric[spec.name]
                miss = np.isnan(v)
                x = np.clip(np.where(miss, p["fill"], v), p["lo"], p["hi"])
                z += p["coef"] * (x - p["mean"]) / p["sd"] + p["missing_coef"] * miss
            else:
                coefs = self.categorical[spec.name]
                lut = np.array([coefs.get(c, 0.0) for c in spec.categories] + [0.0, 0.0])
                z += lut[np.where(v >= 0, v, len(spec.categories) - 1 - v)]
        return z

    @classmethod
    def fit(cls, prep: Prepared, y: np.ndarray, schema: list[FeatureSpec]) -> Linear:
        cols, stats, names = [], {}, []
        for spec in schema:
            v = prep.columns[spec.name]
            if spec.kind == "numeric":
                miss = np.isnan(v)
                finite = v[~miss]
                lo, hi = np.quantile(finite, [0.005, 0.995]) if finite.size else (0.0, 0.0)
                x = np.clip(np.where(miss, spec.median, v), lo, hi)
                mean, sd = float(x.mean()), float(x.std()) or 1.0
                stats[spec.name] = {
                    "lo": float(lo),
                    "hi": float(hi),
                    "fill": spec.median,
                    "mean": mean,
                    "sd": sd,
                }
                cols += [(x - mean) / sd, miss.astype(float)]
                names += [(spec.name, "coef"), (spec.name, "missing_coef")]
            else:
                for k, cat in enumerate(spec.categories):
                    cols.append((v == k).astype(float))
                    names.append((spec.name, cat))
        lr = LogisticRegression(C=1.0, max_iter=2000).fit(np.column_stack(cols), y)
        numeric = {n: dict(s) for n, s in stats.items()}
        categorical: dict[str, dict[str, float]] = {s.name: {} for s in schema if s.kind == "categorical"}
        for (name, key), coef in zip(names, lr.coef_[0], strict=True):
            (numeric[name] if name in numeric else categorical[name])[key] = float(coef)
        return cls(float(lr.intercept_[0]), numeric, categorical)


# --- LightGBM component -------------------------------------------------------------------------------


def lgb_columns(prep: Prepared, schema: list[FeatureSpec]) -> np.ndarray:
    """Feature-major float64 matrix (features x rows): categorical codes as numbers, missing/unseen as NaN."""
    out = np.empty((len(schema), prep.n))
    for j, spec in enumerate(schema):
        v = prep.columns[spec.name]
        out[j] = v if spec.kind == "numeric" else np.where(v >= 0, v, np.nan)
    return out


def lgb_matrix(prep: Prepared, schema: list[FeatureSpec]) -> np.ndarray:
    """The same values row-major (rows x features), as LightGBM's own API wants them."""
    return lgb_columns(prep, schema).T


def lgb_params(cfg: TrainConfig, schema: list[FeatureSpec], directions: dict[str, int], n: int) -> dict[str, Any]:
    """Regularised defaults scaled to the data size; monotone constraints where the direction is known."""
    return {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": max(20, n // 200),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 5.0,
        "max_cat_to_onehot": 8,
        "cat_smooth": 20.0,
        "cat_l2": 10.0,
        "min_data_per_group": 50,
        "monotone_constraints": [directions.get(s.name, 0) for s in schema],
        "monotone_constraints_method": "intermediate",
        "num_threads": cfg.threads,
        "seed": cfg.seed,
        "deterministic": True,
        "verbose": -1,
    }


def _cat_index(schema: list[FeatureSpec]) -> list[int]:
    return [j for j, s in enumerate(schema) if s.kind == "categorical"]


# --- blend and calibration ----------------------------------------------------------------------------


@dataclass
class Blend:
    """Stack weights over the component log-odds, then Platt (identity on the stack) or isotonic."""

    candidate: str
    intercept: float
    weights: list[float]  # one per component, 0 for unused
    calibration: str  # "platt" or "isotonic"
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)

    def pd(self, z: np.ndarray) -> np.ndarray:
        s = self.intercept + z @ np.asarray(self.weights)
        p = np.interp(s, self.iso_x, self.iso_y) if self.calibration == "isotonic" else _sigmoid(s)
        pd_: np.ndarray = np.clip(p, PD_FLOOR, 1 - PD_FLOOR)
        return pd_

    @classmethod
    def fit(cls, candidate: str, z: np.ndarray, y: np.ndarray, calibration: str) -> Blend:
        use = list(CANDIDATES[candidate])
        while True:
            lr = LogisticRegression(C=100.0, max_iter=1000).fit(z[:, use], y)
            coefs = lr.coef_[0]
            if len(use) == 1 or (coefs >= 0).all():
                break
            use.pop(int(np.argmin(coefs)))
        weights = [0.0] * len(COMPONENTS)
        for i, c in zip(use, coefs, strict=True):
            weights[i] = float(c)
        blend = cls(candidate, float(lr.intercept_[0]), weights, calibration)
        if calibration == "isotonic":
            s = blend.intercept + z @ np.asarray(weights)
            iso = IsotonicRegression(out_of_bounds="clip", y_min=PD_FLOOR, y_max=1 - PD_FLOOR).fit(s, y)
            blend.iso_x, blend.iso_y = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        return blend


def _choose_blend(z: np.ndarray, y: np.ndarray, seed: int) -> tuple[Blend, dict[str, Any], np.ndarray]:
    """Cross-validate every candidate x calibration on the OOF log-odds; keep the best AUC (Brier breaks ties)."""
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed + 1).split(z, y))
    table, preds = {}, {}
    for cand in CANDIDATES:
        for cal in ("platt", "isotonic"):
            p = np.empty(len(y))
            for tr, va in folds:
                p[va] = Blend.fit(cand, z[tr], y[tr], cal).pd(z[va])
            table[f"{cand}/{cal}"] = {"auc": auc(y, p), "brier": brier(y, p)}
            preds[f"{cand}/{cal}"] = p
    # per candidate the calibration with the lower Brier; across candidates the best AUC
    best_per = {
        c: "platt" if table[f"{c}/platt"]["brier"] <= table[f"{c}/isotonic"]["brier"] else "isotonic"
        for c in CANDIDATES
    }
    champ = max(
        CANDIDATES, key=lambda c: (round(table[f"{c}/{best_per[c]}"]["auc"], 4), -table[f"{c}/{best_per[c]}"]["brier"])
    )
    key = f"{champ}/{best_per[champ]}"
    return Blend.fit(champ, z, y, best_per[champ]), {"candidates": table, "champion": key}, preds[key]


# --- the model ----------------------------------------------------------------------------------------


@dataclass
class Model:
    """Everything needed to score: schema, the three components and the blend."""

    schema: list[FeatureSpec]
    scorecard: Scorecard
    booster: lgb.Booster | None
    linear: Linear
    blend: Blend
    config: TrainConfig
    directions: dict[str, int]
    selection: dict[str, Any] = field(default_factory=dict)
    oof_pd: np.ndarray | None = None
    fit_seconds: float = 0.0

    def prepare(self, frame: pd.DataFrame) -> Prepared:
        return prepare_frame(frame, self.schema, self.config.special)

    @cached_property
    def trees(self) -> FlatTrees:
        """The booster as flat arrays walked by numba (same raw scores, much less overhead)."""
        if self.booster is None:
            raise ValueError("a model without its LightGBM component has no trees")
        return FlatTrees.from_booster(self.booster)

    def components(self, prep: Prepared, points: np.ndarray | None = None) -> np.ndarray:
        """Log-odds of each component (n x 3); unused components are zero. ``points``: the scorecard's, if known."""
        z = np.zeros((prep.n, len(COMPONENTS)))
        w = self.blend.weights
        if w[0]:
            total = (self.scorecard.points_matrix(prep)[1] if points is None else points).sum(axis=1)
            z[:, 0] = self.scorecard.scaling.logit_of_score(total)
        if w[1] and self.booster is not None:
            z[:, 1] = self.trees.predict_columns(lgb_columns(prep, self.schema))
        if w[2]:
            z[:, 2] = self.linear.logit(prep, self.schema)
        return z

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return self.blend.pd(self.components(self.prepare(frame)))

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        names = np.array([g for g, _ in self.config.grades])
        bounds = np.array([b for _, b in self.config.grades[:-1]])
        return names[np.searchsorted(bounds, pd_, side="left")]

    def config_json(self) -> dict[str, Any]:
        d = asdict(self.config)
        d["grades"] = [list(g) for g in self.config.grades]
        return d

    def compiled(self) -> Compiled:
        """The model packed for ``kernel.score_row``; refuses scorecard splits out of order (a package's own file)."""
        schema = self.schema
        pos = {s.name: j for j, s in enumerate(schema)}
        cards = self.scorecard.cards
        bounds = [b for _, b in self.config.grades[:-1]]
        for card in cards:
            if any(np.diff(card.splits) < 0):  # score_row counts the splits below a value
                raise ValidationError(f"scorecard splits of {card.name} are not in ascending order", field="package")
        codes = sorted({code for c in cards for code in c.codes}) + [""]
        index = {code: i for i, code in enumerate(codes)}

        def offsets(parts: Sequence[Sized]) -> list[int]:
            return [int(at) for at in np.cumsum([0] + [len(p) for p in parts])]

        code_bins = [c._code_bins.tolist() if c.kind == "categorical" else [] for c in cards]
        ints = [
            [pos[c.name] for c in cards],
            [int(c.kind == "categorical") for c in cards],
            offsets([c.splits for c in cards]),
            offsets([c.special for c in cards]),
            [-1 if c.special_bin is None else c.special_bin for c in cards],
            [c.missing_bin for c in cards],
            [-1 if c.other_bin is None else c.other_bin for c in cards],
            offsets(code_bins),
            [b for bins in code_bins for b in bins],
            offsets([c.points for c in cards]),
            offsets([c.codes for c in cards]),
            [index[code] for c in cards for code in c.adverse_codes],
            [int(s.kind == "categorical") for s in schema],
            offsets([list(s.categories) if s.kind == "categorical" else [] for s in schema]),
            [len(codes) - 1],
        ]
        lin = self.linear
        numeric = [
            [lin.numeric[s.name][f] for f in LINEAR_FIELDS] if s.kind == "numeric" else [0.0] * N_LINEAR for s in schema
        ]
        category = [
            lin.categorical[s.name].get(cat, 0.0) for s in schema if s.kind == "categorical" for cat in s.categories
        ]
        blend, scaling = self.blend, self.scorecard.scaling
        trees = self.trees if self.booster is not None else FlatTrees.empty(len(schema))
        weights = [blend.weights[0], blend.weights[1] if self.booster is not None else 0.0, blend.weights[2]]
        params = [
            blend.intercept,
            *weights,
            float(blend.calibration == "isotonic"),
            lin.intercept,
            scaling.offset,
            scaling.factor,
        ]
        floats = [
            [v for c in cards for v in c.splits],
            [v for c in cards for v in c.special],
            [v for c in cards for v in c.points],
            [c.max_points for c in cards],
            numeric,
            category,
            blend.iso_x,
            blend.iso_y,
            bounds,
            params,
        ]
        texts = {code: text for c in cards for code, text in zip(c.codes, c.texts, strict=True)}
        return Compiled(
            pack(trees.int_sections + ints, np.int64),
            pack(trees.float_sections + floats, np.float64),
            trees.scratch,
            codes,
            texts,
        )


def _fit_components(
    frame: pd.DataFrame,
    prep: Prepared,
    y: np.ndarray,
    schema: list[FeatureSpec],
    cfg: TrainConfig,
    rounds: int | None,
    valid: tuple[Prepared, np.ndarray] | None,
) -> tuple[Scorecard, lgb.Booster, Linear, dict[str, int], int]:
    sc = fit_scorecard(
        frame, y, schema, prep, cfg.scaling, special=cfg.special, no_trend=cfg.no_trend, min_iv=cfg.min_iv
    )
    # a known direction becomes a LightGBM constraint only where the monotone binning held up in this data
    binned_with_trend = {c.name for c in sc.cards + sc.excluded if c.trend != "none"}
    directions = {
        s.name: s.direction for s in schema if s.kind == "numeric" and s.direction and s.name in binned_with_trend
    }
    params = lgb_params(cfg, schema, directions, len(y))
    train = lgb.Dataset(lgb_matrix(prep, schema), y, categorical_feature=_cat_index(schema), free_raw_data=False)
    if valid is not None:
        vset = lgb.Dataset(lgb_matrix(valid[0], schema), valid[1], reference=train)
        booster = lgb.train(
            params, train, cfg.max_rounds, valid_sets=[vset], callbacks=[lgb.early_stopping(50, verbose=False)]
        )
        best = booster.best_iteration or cfg.max_rounds
    else:
        booster = lgb.train(params, train, rounds or cfg.max_rounds)
        best = rounds or cfg.max_rounds
    return sc, booster, Linear.fit(prep, y, schema), directions, best


def _subset(prep: Prepared, idx: np.ndarray) -> Prepared:
    return Prepared({k: v[idx] for k, v in prep.columns.items()}, len(idx))


def _check_numeric_features(cfg: TrainConfig, schema: list[FeatureSpec]) -> None:
    """Special codes and --no-trend must name numeric features of the data (TrainConfig checked the codes)."""
    kinds = {s.name: s.kind for s in schema}
    for what, names in (("special codes", list(cfg.special)), ("--no-trend", list(cfg.no_trend))):
        for name in names:
            if name not in kinds:
                raise ValidationError(f"{what} given for a column that is not a feature of the data", field=name)
            if kinds[name] != "numeric":
                raise ValidationError(f"{what} apply to numeric features; this feature is categorical", field=name)


def fit_model(frame: pd.DataFrame, y: np.ndarray | pd.Series, cfg: TrainConfig | None = None) -> Model:
    """Fit the three components with inner CV, choose blend and calibration on OOF data, refit on all rows."""
    started = time.perf_counter()
    cfg = cfg or TrainConfig()
    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) != 2 or min(np.bincount(y)) < 2 * cfg.inner_folds:
        raise ValidationError("need at least a few good and a few bad rows to train", field="target")
    frame = frame.reset_index(drop=True)
    schema = infer_schema(frame)
    if not schema:
        raise ValidationError("no usable feature columns", field="features")
    _check_numeric_features(cfg, schema)
    prep = prepare_frame(frame, schema, cfg.special)
    z = np.zeros((len(y), len(COMPONENTS)))
    rounds = []
    for tr, va in StratifiedKFold(cfg.inner_folds, shuffle=True, random_state=cfg.seed).split(frame, y):
        ptr, pva = _subset(prep, tr), _subset(prep, va)
        sc, booster, lin, _, best = _fit_components(frame.iloc[tr], ptr, y[tr], schema, cfg, None, (pva, y[va]))
        z[va, 0] = sc.logit(pva)
        z[va, 1] = booster.predict(lgb_matrix(pva, schema), raw_score=True, num_iteration=best)
        z[va, 2] = lin.logit(pva, schema)
        rounds.append(best)
    n_rounds = max(10, int(round(np.mean(rounds) * 1.1)))
    blend, selection, oof = _choose_blend(z, y, cfg.seed)
    selection["rounds"] = n_rounds
    sc, booster, lin, directions, _ = _fit_components(frame, prep, y, schema, cfg, n_rounds, None)
    return Model(schema, sc, booster, lin, blend, cfg, directions, selection, oof, time.perf_counter() - started)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PD_FLOOR, 1 - PD_FLOOR)
    log_odds: np.ndarray = np.log(p / (1 - p))
    return log_odds


def score_of_pd(pd_: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The champion's PD on the scorecard's points scale (higher = safer)."""
    return np.round(scaling.score_of_logit(logit(pd_)), 2)
