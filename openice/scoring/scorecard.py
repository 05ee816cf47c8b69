"""Binning/WoE logistic scorecard: optbinning finds the bins, openice owns the tables.

Bins come from optbinning (monotonic trends where asked, special and missing bins, at least 5% of rows
per bin, adjacent bins significantly different at p < 0.05 against overfitting); WoE, IV and points are
recomputed here from counts so that the table in the package is the whole model: the Python lookup,
the batch path and the SQL export all read the same numbers.
WoE is signed so that a positive value means riskier than average (log-odds of bad vs. population).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from optbinning import OptimalBinning
from sklearn.linear_model import LogisticRegression

from openice.scoring.features import FeatureSpec, Prepared, code_of

__all__ = ["FeatureCard", "Scaling", "Scorecard", "fit_scorecard"]

PRIOR = 10.0  # pseudo-count pulling a bin's bad rate toward the population's: empty bins get WoE 0
TRENDS = {1: "ascending", -1: "descending", 0: "auto_asc_desc"}
SHAPES = {"ascending": "rising", "descending": "falling", "auto_asc_desc": "monotonic"}  # trends in words


@dataclass(frozen=True)
class Scaling:
    """Points scaling: ``base_points`` at ``base_odds`` good:bad, ``pdo`` points to double the odds."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_points - self.factor * math.log(self.base_odds)

    def score_of_logit(self, logit: np.ndarray | float) -> np.ndarray | float:
        """Score of a log-odds of bad: higher score = safer."""
        return self.offset - self.factor * logit

    def logit_of_score(self, score: np.ndarray | float) -> np.ndarray | float:
        return (self.offset - score) / self.factor


@dataclass
class FeatureCard:
    """One feature's bins: regular bins, then Special / Other / Missing bins where they exist.

    ``codes`` and ``texts`` have one entry per bin plus a last entry used when the value was missing.
    """

    name: str
    kind: str
    labels: list[str]
    counts: list[int]
    bads: list[int]
    woe: list[float]
    points: list[float]
    codes: list[str]
    texts: list[str]
    missing_bin: int
    splits: list[float] = field(default_factory=list)
    special: list[float] = field(default_factory=list)
    special_bin: int | None = None
    groups: dict[str, int] = field(default_factory=dict)
    other_bin: int | None = None
    iv: float = 0.0
    coef: float = 0.0
    trend: str = ""

    @property
    def max_points(self) -> float:
        populated = [p for p, c in zip(self.points, self.counts, strict=True) if c > 0]
        return max(populated or self.points)

    @property
    def adverse_codes(self) -> list[str]:
        """``codes`` with "" where the bin raised the score (WoE <= 0: no riskier than average): such a bin may
        lose points against the best bin, but it is never an adverse reason."""
        bins = [*range(len(self.labels)), self.missing_bin]
        return [code if self.woe[b] > 0 else "" for code, b in zip(self.codes, bins, strict=True)]

    def bins_of(self, values: np.ndarray) -> np.ndarray:
        """Bins of a prepared column, vectorised."""
        if self.kind == "numeric":
            bins = np.searchsorted(np.asarray(self.splits, dtype=float), values, side="right")
            if self.special_bin is not None:
                bins[np.isin(values, self.special)] = self.special_bin
            bins[np.isnan(values)] = self.missing_bin
            return bins
        lut = np.append(self._code_bins, [self.missing_bin, self.other_bin])
        return lut[np.where(values >= 0, values, len(self._code_bins) - 1 - values)]

    def bind(self, spec: FeatureSpec) -> None:
        """Precompute the category-code -> bin table for the schema the package was trained with."""
        self._code_bins = np.array([self.groups.get(c, self.other_bin) for c in spec.categories], dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeatureCard:
        return cls(**d)


@dataclass
class Scorecard:
    """Feature cards plus scaling; the score is the sum of the cards' points."""

    cards: list[FeatureCard]
    scaling: Scaling
    notes: dict[str, str]  # feature -> why it is not in the card, or why its requested trend was not met
    ivs: dict[str, float]  # IV of every candidate feature
    excluded: list[FeatureCard] = field(default_factory=list)  # binned but left out: kept for the report

    def points_matrix(self, prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature bins and points of a batch (n x cards, column-major: filled one feature at a time)."""
        bins = np.empty((prep.n, len(self.cards)), dtype=np.int64, order="F")
        pts = np.empty((prep.n, len(self.cards)), order="F")
        for j, c in enumerate(self.cards):
            bins[:, j] = c.bins_of(prep.columns[c.name])
            pts[:, j] = np.asarray(c.points)[bins[:, j]]
        return bins, pts

    def logit(self, prep: Prepared) -> np.ndarray:
        """Log-odds of bad implied by the (rounded) points total."""
        _, pts = self.points_matrix(prep)
        return np.asarray(self.scaling.logit_of_score(pts.sum(axis=1)))

    def to_json(self) -> dict[str, Any]:
        return {
            "scaling": asdict(self.scaling),
            "notes": self.notes,
            "ivs": self.ivs,
            "cards": [c.to_json() for c in self.cards],
            "excluded": [c.to_json() for c in self.excluded],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], schema: list[FeatureSpec]) -> Scorecard:
        cards = [FeatureCard.from_json(c) for c in d["cards"]]
        specs = {s.name: s for s in schema}
        for c in cards:
            c.bind(specs[c.name])
        excluded = [FeatureCard.from_json(c) for c in d.get("excluded", [])]
        return cls(cards, Scaling(**d["scaling"]), d["notes"], d["ivs"], excluded)


def _woe(bad: np.ndarray, count: np.ndarray, rate: float) -> np.ndarray:
    shrunk = (bad + PRIOR * rate) / (count + PRIOR)
    return np.log(shrunk / (1 - shrunk)) - math.log(rate / (1 - rate))


def _optbinning(
    spec: FeatureSpec, x: np.ndarray, y: np.ndarray, trend: str | None, special: list[float]
) -> OptimalBinning:
    ob = OptimalBinning(
        name=spec.name,
        dtype="numerical" if spec.kind == "numeric" else "categorical",
        monotonic_trend=trend,
        min_bin_size=0.05,
        max_pvalue=0.05,
        special_codes=special or None,
    )
    ob.fit(x, y)
    return ob


def _iv(ob: OptimalBinning) -> float:
    if ob.status not in ("OPTIMAL", "FEASIBLE"):
        return 0.0
    with warnings.catch_warnings():  # optbinning's table builder trips a pandas 3 dtype deprecation warning
        warnings.simplefilter("ignore")
        return float(ob.binning_table.build()["IV"].iloc[-1])


def _bin_feature(
    spec: FeatureSpec, raw: pd.Series, values: np.ndarray, y: np.ndarray, special: list[float], free: bool
) -> tuple[FeatureCard, str]:
    """Bin one feature; returns the card (WoE filled, points not yet) and a note on its trend where there is one.

    A numeric feature's bins follow a monotonic trend (its known risk direction, else whichever fits), so that
    more of a thing never flips between safer and riskier from one bin to the next; ``free`` bins it without
    a trend, only when the analyst asks.
    """
    note = ""
    if spec.kind == "numeric":
        x = raw.to_numpy(dtype=float, na_value=np.nan)
        wanted = TRENDS[spec.direction]
        if free:
            ob, trend = _optbinning(spec, x, y, None, special), "none"
            note = "binned without a monotonic trend, as asked"
        else:
            ob, trend = _optbinning(spec, x, y, wanted, special), wanted
            if ob.status not in ("OPTIMAL", "FEASIBLE"):
                note = f"no {SHAPES[wanted]} binning is feasible ({ob.status}): one bin; --no-trend bins it freely"
            else:
                iv_req, iv_free = _iv(ob), _iv(_optbinning(spec, x, y, None, special))
                if iv_free >= 0.02 and iv_req < 0.5 * iv_free:
                    note = (
                        f"the bad rate is not monotonic: {SHAPES[wanted]} bins keep IV {iv_req:.3f} of {iv_free:.3f} "
                        "without a trend; --no-trend bins it freely"
                    )
        splits = [float(s) for s in ob.splits] if ob.status in ("OPTIMAL", "FEASIBLE") else []
        card = FeatureCard(
            spec.name, "numeric", [], [], [], [], [], [], [], 0, splits=splits, special=list(special), trend=trend
        )
        edges = ["-inf", *[f"{s:g}" for s in splits], "inf"]
        card.labels = [f"[{edges[i]}, {edges[i + 1]})" for i in range(len(splits) + 1)]
        bins = np.searchsorted(np.asarray(splits), values, side="right")
        if special:
            card.special_bin = special_bin = len(card.labels)
            card.labels.append("Special")
            bins[np.isin(values, special)] = special_bin
        if spec.had_missing:
            card.labels.append("Missing")
            card.missing_bin = len(card.labels) - 1
        else:
            card.missing_bin = int(np.searchsorted(np.asarray(splits), spec.median, side="right"))
        bins[np.isnan(values)] = card.missing_bin
    else:
        x = raw.to_numpy(dtype=object, na_value=np.nan)
        ob = _optbinning(spec, x, y, None, [])
        groups = {str(c): i for i, g in enumerate(ob.splits) for c in g}
        card = FeatureCard(spec.name, "categorical", [], [], [], [], [], [], [], 0, groups=groups, trend="by bad rate")
        card.labels = [", ".join(str(c) for c in g) for g in ob.splits] + ["Other"]
        card.other_bin = len(card.labels) - 1
        if spec.had_missing:
            card.labels.append("Missing")
            card.missing_bin = len(card.labels) - 1
        else:
            card.missing_bin = groups.get(str(spec.impute), card.other_bin)
        card.bind(spec)
        bins = card.bins_of(values)
    nb = len(card.labels)
    card.counts = np.bincount(bins, minlength=nb).astype(int).tolist()
    card.bads = np.bincount(bins, weights=y, minlength=nb).astype(int).tolist()
    rate = float(y.mean())
    woe = _woe(np.asarray(card.bads, float), np.asarray(card.counts, float), rate)
    card.woe = woe.tolist()
    share_bad = np.asarray(card.bads) / max(y.sum(), 1)
    share_good = (np.asarray(card.counts) - np.asarray(card.bads)) / max((1 - y).sum(), 1)
    card.iv = float(np.sum((share_bad - share_good) * woe))
    return card, note


def _reason_texts(card: FeatureCard, label: str) -> None:
    """Stable reason codes per bin: FEATURE_HIGH / _LOW / _MISSING / _SPECIAL / _CATEGORY / _OTHER."""
    base = code_of(card.name)
    populated = [i for i, c in enumerate(card.counts) if c > 0] or list(range(len(card.counts)))
    best = max(populated, key=lambda i: card.points[i])
    codes, texts = [], []
    for i, lab in enumerate(card.labels):
        if lab == "Missing":
            suffix, text = "MISSING", f"{label} is missing"
        elif lab == "Special":
            suffix, text = "SPECIAL", f"{label} has a special value"
        elif lab == "Other":
            suffix, text = "OTHER", f"{label} is an unusual category"
        elif card.kind == "categorical":
            suffix, text = "CATEGORY", f"{label} is in a higher-risk category"
        elif i > best:
            suffix, text = "HIGH", f"{label} is high"
        else:
            suffix, text = "LOW", f"{label} is low"
        codes.append(f"{base}_{suffix}")
        texts.append(text)
    codes.append(f"{base}_MISSING")
    texts.append(f"{label} is missing")
    card.codes, card.texts = codes, texts


def fit_scorecard(
    frame: pd.DataFrame,
    y: np.ndarray,
    schema: list[FeatureSpec],
    prep: Prepared,
    scaling: Scaling,
    *,
    special: dict[str, list[float]] | None = None,
    no_trend: tuple[str, ...] = (),
    min_iv: float = 0.02,
    C: float = 1.0,
) -> Scorecard:
    """Bin every feature, keep those with IV >= ``min_iv`` and a non-negative WoE coefficient, scale to points."""
    special = special or {}
    y = np.asarray(y, dtype=float)
    cards, notes = [], {}
    for spec in schema:
        card, note = _bin_feature(
            spec, frame[spec.name], prep.columns[spec.name], y, special.get(spec.name, []), spec.name in no_trend
        )
        if note:
            notes[spec.name] = note
        cards.append(card)
    ivs = {c.name: c.iv for c in cards}
    kept = [c for c in cards if c.iv >= min_iv]
    for c in cards:
        if c.iv < min_iv:
            notes[c.name] = "; ".join(filter(None, (f"left out: IV {c.iv:.4f} below {min_iv}", notes.get(c.name))))
    while kept:
        woe = np.column_stack([np.asarray(c.woe)[c.bins_of(prep.columns[c.name])] for c in kept])
        lr = LogisticRegression(C=C, max_iter=1000).fit(woe, y)
        coefs = lr.coef_[0]
        if (coefs >= 0).all():
            break
        worst = int(np.argmin(coefs))
        name = kept[worst].name
        notes[name] = "; ".join(
            filter(None, ("left out: negative WoE coefficient (collinear with other features)", notes.get(name)))
        )
        kept.pop(worst)
    if not kept:
        rate = float(y.mean())
        intercept, coefs = math.log(rate / (1 - rate)), np.zeros(0)
    else:
        intercept = float(lr.intercept_[0])
    specs = {s.name: s for s in schema}
    share = scaling.score_of_logit(intercept) / max(len(kept), 1)
    for c, coef in zip(kept, coefs, strict=True):
        c.coef = float(coef)
        c.points = [round(share - scaling.factor * coef * w, 2) for w in c.woe]
        _reason_texts(c, specs[c.name].label)
    kept_names = {c.name for c in kept}
    return Scorecard(kept, scaling, notes, ivs, [c for c in cards if c.name not in kept_names])
