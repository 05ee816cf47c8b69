"""The simulated world keeps what the real data says: default rate, AUC ceiling, feature correlations."""

from __future__ import annotations

from datetime import date

import numpy as np

from openice.datasets import load
from openice.decisioning.identity import check_mobile, check_resident_id
from openice.simulation.population import World, observed_auc

TODAY = date(2026, 1, 1)


def test_ground_truth_reproduces_default_rate_and_auc_ceiling(world: World) -> None:
    pop = world.population(20_000, 300, seed=1)
    genuine = pop.ring < 0
    defaults = (np.random.default_rng(2).random(len(pop)) < pop.true_pd).astype(int)[genuine]
    real_rate = float(load("lending_club").target.mean())
    assert abs(defaults.mean() - real_rate) < 0.01  # 5.2% real, within one percentage point
    # the best any model can do on simulated outcomes is what the truth model reached out of fold on real loans
    auc = observed_auc(world.truth, pop.frame[genuine], defaults)
    assert abs(auc - world.truth.cv_auc) < 0.03
    assert 0.70 < world.truth.cv_auc < 0.80


def test_simulated_population_keeps_the_real_correlations(world: World) -> None:
    real = load("lending_club", include_leaky=True).frame
    # columns where one value covers 90%+ of rows (acc_now_delinq, delinq_amnt) carry no rank information
    cols = [c for c in real.columns if real[c].dtype == float and real[c].value_counts(normalize=True).iloc[0] < 0.9]
    sim = world.population(20_000, 300, seed=3).frame[cols].astype(float)
    gap = np.abs(real[cols].corr("spearman").to_numpy() - sim.corr("spearman").to_numpy())
    assert gap.max() < 0.12
    assert gap.mean() < 0.03
    # and not independent columns: the strongest real correlations survive
    assert sim.corr("spearman").loc["open_il_12m", "open_il_24m"] > 0.5


def test_identities_are_valid_and_rings_share_device_and_mobile(world: World) -> None:
    pop = world.population(600, 200, seed=5, ring_share=0.05)
    regs = [pop.registration(i, TODAY) for i in range(len(pop))]
    for reg in regs:
        check_resident_id(reg["national_id"], reg["date_of_birth"], TODAY)
        check_mobile(reg["mobile"])
    rings = {int(r) for r in pop.ring if r >= 0}
    assert rings
    for r in rings:
        members = [regs[i] for i in np.flatnonzero(pop.ring == r)]
        assert len(members) >= 3
        assert len({m["device_id"] for m in members}) == 1 and len({m["mobile"] for m in members}) == 1
    genuine = [regs[i]["device_id"] for i in np.flatnonzero(pop.ring < 0)]
    assert len(set(genuine)) == len(genuine)


def test_same_seed_same_population(world: World) -> None:
    a, b = world.population(300, 100, seed=9), world.population(300, 100, seed=9)
    assert a.frame.equals(b.frame) and np.array_equal(a.true_pd, b.true_pd) and np.array_equal(a.arrival, b.arrival)
    assert not a.frame.equals(world.population(300, 100, seed=10).frame)
