import numpy as np
import pandas as pd
import pytest

from openice.matching.optimize import Capacity, evaluate, greedy, optimise


def problem(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    amount = rng.integers(1_000, 50_000, n).astype(float) * 100
    pd_ = rng.beta(1.5, 25, n)
    value = amount[:, None] * (0.02 + 0.03 * rng.random((n, m))) - amount[:, None] * pd_[:, None] * 0.8 * (
        rng.random(m) < 0.4
    )
    eligible = rng.random((n, m)) < 0.6
    total = amount.sum()
    cap = Capacity(np.full(m, total * 0.9 / m), np.where(rng.random(m) < 0.3, total * 0.25 / m, 0.0), np.full(m, 0.05))
    return value, eligible, amount, pd_, cap


@pytest.mark.parametrize("n, sample", [(2_000, 10_000), (6_000, 2_000)])
def test_optimiser_beats_greedy_within_its_bound(n: int, sample: int) -> None:
    value, eligible, amount, pd_, cap = problem(n, 8)
    base = greedy(value, eligible, amount, pd_, cap, penalty=0.01)
    best = optimise(value, eligible, amount, pd_, cap, [f"I{j}" for j in range(8)], penalty=0.01, sample=sample)
    evaluate(best.institution, value, amount, pd_, cap, 0.01)  # quotas and PD caps hold
    assert best.objective > base.objective
    assert best.objective <= best.lp_bound + 1e-6 * abs(best.lp_bound)
    assert best.objective >= 0.995 * best.lp_bound
    assert set(best.prices) == {f"I{j}" for j in range(8)}
    assert all(p["quota"] >= 0 and p["pd"] >= 0 and p["volume"] >= 0 for p in best.prices.values())


def test_exact_lp_is_nearly_integral_on_a_small_batch() -> None:
    value, eligible, amount, pd_, cap = problem(500, 4, seed=3)
    best = optimise(value, eligible, amount, pd_, cap, list("ABCD"))
    assert best.objective >= 0.99 * best.lp_bound


def test_greedy_respects_quota_and_pd_cap() -> None:
    value = np.array([[5.0], [4.0], [3.0]])
    amount = np.array([100.0, 100.0, 100.0])
    pd_ = np.array([0.02, 0.10, 0.01])
    cap = Capacity(np.array([200.0]), np.array([0.0]), np.array([0.05]))
    result = greedy(value, np.ones((3, 1), bool), amount, pd_, cap)
    assert list(result.institution) == [0, -1, 0]  # the risky one would lift the average above 5%


def test_a_batch_file_is_typed_in_major_units_of_its_currency() -> None:
    """10,000.50 CNY is 1,000,050 fen; an income of 15,000 CNY is 1,500,000 fen; the other columns are left alone."""
    from openice.errors import ValidationError
    from openice.matching.boxes import batch_in_minor

    typed = pd.DataFrame({"amount": [10000.5, 300], "income": ["15000", "0.01"], "tenor": [12, 6], "currency": "CNY"})
    read = batch_in_minor(typed, "CNY", "batch.csv")
    assert read["amount"].tolist() == [1_000_050, 30_000] and read["income"].tolist() == [1_500_000, 1]
    assert read["tenor"].tolist() == [12, 6] and typed["amount"].tolist() == [10000.5, 300]  # the file's frame kept
    bare = typed.drop(columns="currency")
    assert batch_in_minor(bare, "CNY", "batch.csv", "CNY")["amount"].tolist() == [1_000_050, 30_000]
    with pytest.raises(ValidationError, match="batch.csv has no currency column: add one"):
        batch_in_minor(bare, "CNY", "batch.csv")
    with pytest.raises(ValidationError, match="batch.csv line 3 is in USD, but the book lends in CNY"):
        batch_in_minor(typed.assign(currency=["CNY", "USD"]), "CNY", "batch.csv")
