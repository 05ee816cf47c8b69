"""Monitoring's outcome figures on frames small enough to work by hand: KS, AUC and bad rate, the PD bands taken
from the training deciles, calibration by band, and score PSI with outcomes by month from stored decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from openice.errors import ValidationError
from openice.scoring.metrics import auc, ks
from openice.scoring.monitor import band_calibration, by_month, outcome_column, outcomes, pd_bands, training_figures

# Riskiest first the outcomes read bad, bad, good, good, bad, good.
Y = np.array([1, 1, 0, 0, 1, 0])
P = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
CALIBRATION = [  # as training stores it: PD deciles, each with its highest PD
    {"n": 2, "mean_pd": 0.05, "bad_rate": 0.0, "pd_min": 0.01, "pd_max": 0.1},
    {"n": 2, "mean_pd": 0.2, "bad_rate": 0.5, "pd_min": 0.15, "pd_max": 0.3},
    {"n": 2, "mean_pd": 0.3, "bad_rate": 1.0, "pd_min": 0.3, "pd_max": 0.3},
    {"n": 4, "mean_pd": 0.6, "bad_rate": 0.75, "pd_min": 0.4, "pd_max": 0.9},
]


def test_ks_is_the_widest_gap_between_the_cumulative_shares_of_bads_and_goods() -> None:
    # cumulative bads 1/3 2/3 2/3 2/3 1 1, goods 0 0 1/3 2/3 2/3 1: widest after the second row
    assert ks(Y, P) == pytest.approx(2 / 3)
    found = outcomes(Y, P, pd_bands(CALIBRATION))
    # AUC: the bads at 0.9 and 0.8 outrank all three goods, the bad at 0.2 only the good at 0.1: 7 of 9 pairs
    assert (found["n"], found["bads"], found["bad_rate"]) == (6, 3, 0.5)
    assert found["auc"] == pytest.approx(7 / 9) and found["ks"] == pytest.approx(2 / 3)


def test_auc_on_ranks_is_scikit_learns_with_ties_counted_half() -> None:
    rng = np.random.default_rng(3)
    for n in (7, 80, 5000):
        y, p = rng.integers(0, 2, n), np.round(rng.random(n), 1)  # rounded: many ties
        assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_and_ks_are_none_when_a_period_has_only_goods_or_only_bads() -> None:
    for y in (np.zeros(3), np.ones(3)):
        found = outcomes(y, np.array([0.1, 0.2, 0.3]), pd_bands(CALIBRATION))
        assert found["auc"] is None and found["ks"] is None and found["bad_rate"] == y[0]


def test_the_bands_are_the_training_deciles_with_those_sharing_an_upper_pd_merged() -> None:
    bands = pd_bands(CALIBRATION)
    assert [(b["lower"], b["upper"], b["n"]) for b in bands] == [(0.0, 0.1, 2), (0.1, 0.3, 4), (0.3, 1.0, 4)]
    # the merged band: (2 x 0.2 + 2 x 0.3) / 4 mean PD, (2 x 0.5 + 2 x 1.0) / 4 bad rate
    assert bands[1]["mean_pd"] == pytest.approx(0.25) and bands[1]["bad_rate"] == pytest.approx(0.75)


def test_calibration_by_band_counts_each_pd_in_the_band_it_closes() -> None:
    rows = band_calibration(np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.5, 0.95]), pd_bands(CALIBRATION))
    assert [r["n"] for r in rows] == [1, 2, 2]  # 0.1 closes the first band, 0.3 the second
    assert [r["mean_pd"] for r in rows] == pytest.approx([0.1, 0.25, 0.725])
    assert [r["bad_rate"] for r in rows] == pytest.approx([0.0, 0.5, 1.0])
    assert [r["training_bad_rate"] for r in rows] == pytest.approx([0.0, 0.75, 0.75])
    empty = band_calibration(np.array([0]), np.array([0.05]), pd_bands(CALIBRATION))
    assert empty[2] | {"lower": 0} == {
        "lower": 0,
        "upper": 1.0,
        "n": 0,
        "mean_pd": None,
        "bad_rate": None,
        "training_mean_pd": 0.6,
        "training_bad_rate": 0.75,
    }


METADATA = {
    "reference": {"score": {"edges": [600.0], "shares": [0.5, 0.5, 0.0]}, "features": {}},
    "metrics": {
        "oof": {"n": 10, "bad_rate": 0.5, "auc": 0.8, "ks": 0.6},
        "oof_calibration": CALIBRATION,
    },
    "source": {"file": "loans.csv", "target": "Status", "bad": "bad"},
}


def test_by_month_compares_stored_scores_with_the_reference_and_uses_only_known_outcomes() -> None:
    months = ["2026-02", "2026-01", "2026-01", "2026-02", "2026-02", "2026-02"]
    scores = [550, 550, 650, 550, 550, 650]
    pds = [0.2, 0.05, 0.5, 0.2, 0.8, 0.05]
    bad = [1, -1, -1, 0, 1, 0]  # January's two decisions have no loan yet
    january, february = by_month(METADATA, months, scores, pds, bad)
    # January: one score either side of 600, as the reference: PSI 0. February: 3 of 4 below.
    assert (january["group"], january["n"], january["score_psi"], january["outcomes"]) == ("2026-01", 2, 0.0, None)
    psi = 0.25 * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert february["score_psi"] == pytest.approx(psi) and february["score_status"] == "act"
    known = february["outcomes"]
    # bads at PD 0.2 and 0.8, goods at 0.2 and 0.05: 3 pairs won and one tie of 4
    assert (known["n"], known["bads"], known["auc"]) == (4, 2, pytest.approx(3.5 / 4))
    assert [b["n"] for b in known["calibration"]] == [1, 2, 1]


def test_the_training_figures_and_outcome_column_come_from_the_package_metadata() -> None:
    figures = training_figures(METADATA)
    assert figures is not None and (figures["auc"], figures["ks"], figures["bad_rate"]) == (0.8, 0.6, 0.5)
    assert training_figures({"metrics": {}}) is None
    assert outcome_column(METADATA) == ("Status", "bad")
    assert outcome_column({"source": {"dataset": "credit_data"}}) == ("Status", "bad")
    assert outcome_column({"source": {}}) is None
    with pytest.raises(ValidationError, match="no reference"):
        by_month({}, ["2026-01"], [600], [0.1], [0])
