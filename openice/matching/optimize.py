"""Batch assignment of approved drawdowns to institutions with HiGHS, against the greedy waterfall.

The linear programme maximises expected platform margin subject to: each drawdown funded at most once;
each institution's quota; its maximum amount-weighted average PD; and its minimum volume commitment (soft,
a shortfall costs `penalty` per unit of amount). With only 3 constraints per institution coupling all the
drawdowns, an optimal vertex has at most that many fractional drawdowns, so rounding costs almost nothing;
an upper bound is reported beside the rounded objective.

Column generation keeps the LP small: it starts from each drawdown's best few institutions and adds any
pair whose reduced cost (computed for all pairs at once with numpy) shows it would improve the solution,
until none does; the result is then optimal for the full LP. The row duals of the institution rows are
kept as prices (per unit of amount) that real-time routing subtracts from margins.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np

from openice.matching.institutions import Institution

SCALE = 1e-4  # amounts enter the constraint rows in units of 10,000 minor units
EPS = 1e-6  # relative to the largest margin


@dataclass(frozen=True)
class Capacity:
    """What each institution can still take in this batch."""

    quota: np.ndarray  # minor units
    min_volume: np.ndarray  # minor units
    max_avg_pd: np.ndarray
    pd_room: np.ndarray | None = None  # sum of amount x (max_avg_pd - pd) already funded; None: nothing yet

    def room_for_pd(self) -> np.ndarray:
        return np.zeros(len(self.quota)) if self.pd_room is None else self.pd_room

    @classmethod
    def of(cls, institutions: Sequence[Institution], used: Sequence[int] | None = None) -> Capacity:
        used_arr = np.zeros(len(institutions)) if used is None else np.asarray(used, dtype=float)
        quota = np.array([i.daily_quota for i in institutions], dtype=float) - used_arr
        return cls(
            np.maximum(quota, 0),
            np.array([i.min_monthly_volume for i in institutions], dtype=float),
            np.array([i.max_avg_pd for i in institutions], dtype=float),
        )


@dataclass
class Assignment:
    institution: np.ndarray  # index per drawdown, -1 when unfunded
    margin: float  # sum of expected margins of the funded pairs
    objective: float  # margin - shortfall penalties
    shortfall: np.ndarray
    seconds: float
    lp_bound: float | None = None
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: int = 0
    columns: int = 0


def evaluate(
    assign: np.ndarray, value: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity, penalty: float
) -> tuple[float, float, np.ndarray]:
    """(margin, objective, shortfall) of an integral assignment; asserts it respects quotas and PD caps."""
    funded = assign >= 0
    rows = np.flatnonzero(funded)
    margin = float(value[rows, assign[rows]].sum())
    m = len(cap.quota)
    volume = np.bincount(assign[rows], weights=amount[rows], minlength=m)
    pd_volume = np.bincount(assign[rows], weights=amount[rows] * pd_[rows], minlength=m)
    if np.any(volume > cap.quota + 0.5):
        raise AssertionError("assignment exceeds a quota")
    if np.any(pd_volume > cap.max_avg_pd * volume + 1e-6 * np.maximum(volume, 1)):
        raise AssertionError("assignment exceeds a maximum average PD")
    shortfall = np.maximum(cap.min_volume - volume, 0)
    return margin, margin - penalty * float(shortfall.sum()), shortfall


def greedy(
    value: np.ndarray, eligible: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity, penalty: float = 0.0
) -> Assignment:
    """The real-time waterfall on a batch: in arrival order, the best-margin institution with room."""
    start = time.perf_counter()
    score = np.where(eligible & (value > 0), value, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    n, m = value.shape
    room = cap.quota.copy()
    pd_room = np.zeros(m)  # sum of amount x (max_avg_pd - pd) so far; must stay >= 0
    assign = np.full(n, -1, dtype=np.int64)
    finite = np.isfinite(score)
    for i in range(n):
        a, p = amount[i], pd_[i]
        for j in order[i]:
            if not finite[i, j]:
                break
            if room[j] >= a and pd_room[j] + a * (cap.max_avg_pd[j] - p) >= 0:
                room[j] -= a
                pd_room[j] += a * (cap.max_avg_pd[j] - p)
                assign[i] = j
                break
    margin, objective, shortfall = evaluate(assign, value, amount, pd_, cap, penalty)
    return Assignment(assign, margin, objective, shortfall, time.perf_counter() - start)


class _Lp:
    """The LP over a growing set of (drawdown, institution) columns."""

    def __init__(self, value: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity, penalty: float) -> None:
        self.value, self.amount, self.pd, self.cap = value, amount, pd_, cap
        n, m = value.shape
        self.n, self.m = n, m
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", 1)
        inf = highspy.kHighsInf
        # rows: n assignment rows, then m quota, m PD and m volume rows
        lower = np.concatenate([np.full(n, -inf), np.full(m, -inf), np.full(m, -inf), cap.min_volume * SCALE])
        upper = np.concatenate([np.ones(n), cap.quota * SCALE, cap.room_for_pd() * SCALE, np.full(m, inf)])
        self.h.addRows(
            len(lower),
            lower,
            upper,
            0,
            np.zeros(len(lower), dtype=np.int32),
            np.array([], dtype=np.int32),
            np.array([]),
        )
        # shortfall columns s_j >= 0, one per volume row, cost penalty per minor unit
        self.h.addCols(
            m,
            np.full(m, penalty / SCALE),
            np.zeros(m),
            np.full(m, inf),
            m,
            np.arange(m, dtype=np.int32),
            (n + 2 * m + np.arange(m)).astype(np.int32),
            np.ones(m),
        )
        self.cols_i = np.zeros(0, dtype=np.int64)
        self.cols_j = np.zeros(0, dtype=np.int64)
        self.in_model = np.zeros((n, m), dtype=bool)

    def add(self, rows: np.ndarray, insts: np.ndarray) -> None:
        k = len(rows)
        a = self.amount[rows] * SCALE
        n, m = self.n, self.m
        index = np.stack([rows, n + insts, n + m + insts, n + 2 * m + insts], axis=1).astype(np.int32).ravel()
        coef = np.stack([np.ones(k), a, a * (self.pd[rows] - self.cap.max_avg_pd[insts]), a], axis=1).ravel()
        self.h.addCols(
            k,
            -self.value[rows, insts],
            np.zeros(k),
            np.ones(k),
            len(index),
            np.arange(0, 4 * k, 4, dtype=np.int32),
            index,
            coef,
        )
        self.cols_i = np.concatenate([self.cols_i, rows])
        self.cols_j = np.concatenate([self.cols_j, insts])
        self.in_model[rows, insts] = True

    def solve(self) -> tuple[np.ndarray, np.ndarray, float]:
        self.h.run()
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS stopped with {self.h.modelStatusToString(status)}")
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)[self.m :]
        return x, np.asarray(sol.row_dual), -self.h.getInfo().objective_function_value


@dataclass(frozen=True)
class Prices:
    """Shadow prices per minor unit of amount: quota (lambda), PD cap (mu) and volume commitment (nu)."""

    quota: np.ndarray
    pd: np.ndarray
    volume: np.ndarray

    def adjusted(self, value: np.ndarray, amount: np.ndarray, pd_: np.ndarray, max_avg_pd: np.ndarray) -> np.ndarray:
        """Margin less the opportunity cost of the capacity a drawdown takes: what routing should rank by."""
        adjusted: np.ndarray = value - amount[:, None] * (
            self.quota + (pd_[:, None] - max_avg_pd) * self.pd - self.volume
        )
        return adjusted

    def bound(self, value: np.ndarray, usable: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity) -> float:
        """The Lagrangian dual value: an upper bound on the LP (so on any assignment) for any valid prices."""
        adjusted = np.where(usable, self.adjusted(value, amount, pd_, cap.max_avg_pd), 0.0)
        return float(np.maximum(adjusted.max(axis=1), 0).sum() + cap.quota @ self.quota - cap.min_volume @ self.volume)


def _solve_lp(
    value: np.ndarray,
    usable: np.ndarray,
    amount: np.ndarray,
    pd_: np.ndarray,
    cap: Capacity,
    penalty: float,
    start_columns: int,
    max_rounds: int,
) -> tuple[_Lp, np.ndarray, Prices, float, int]:
    """The LP by column generation: start from each drawdown's best few institutions, add improving pairs."""
    n, m = value.shape
    score = np.where(usable, value, -np.inf)
    k = min(start_columns, m)
    top = np.argpartition(-score, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    insts = top.ravel()
    keep = usable[rows, insts]
    lp = _Lp(value, amount, pd_, cap, penalty)
    lp.add(rows[keep], insts[keep])
    rounds = 0
    while True:
        rounds += 1
        x, dual, objective = lp.solve()
        y_row = dual[:n]
        prices = Prices(
            np.maximum(-dual[n : n + m], 0) * SCALE,
            np.maximum(-dual[n + m : n + 2 * m], 0) * SCALE,
            np.clip(dual[n + 2 * m :], 0, penalty / SCALE) * SCALE,
        )
        reduced = -y_row[:, None] - prices.adjusted(value, amount, pd_, cap.max_avg_pd)  # < 0 improves
        reduced[~usable | lp.in_model] = np.inf
        best = np.argmin(reduced, axis=1)
        improving = np.flatnonzero(reduced[np.arange(n), best] < -EPS * max(float(np.abs(value).max()), 1.0))
        if len(improving) == 0 or rounds == max_rounds:
            break
        lp.add(improving, best[improving])
    return lp, x, prices, objective, rounds


def optimise(
    value: np.ndarray,
    eligible: np.ndarray,
    amount: np.ndarray,
    pd_: np.ndarray,
    cap: Capacity,
    codes: Sequence[str],
    penalty: float = 0.0,
    sample: int = 10_000,
    seed: int = 0,
    start_columns: int = 4,
    max_rounds: int = 30,
) -> Assignment:
    """Maximise expected margin with HiGHS and return an integral assignment, its prices and an upper bound.

    Up to `sample` drawdowns: the exact LP, whose whole assignments are kept and whose few fractional ones
    are filled by price. Above it (simplex time grows faster than the number of drawdowns), see
    `_core`. Either way the Lagrangian value at the prices bounds the optimum, so the reported gap is certified.
    """
    start = time.perf_counter()
    n, m = value.shape
    usable = eligible & (value > 0)
    if n <= sample:
        lp, x, prices, lp_value, rounds = _solve_lp(value, usable, amount, pd_, cap, penalty, start_columns, max_rounds)
        assign = _keep_whole(x, lp.cols_i, lp.cols_j, np.arange(n), n)
        _repair_pd(assign, value, amount, pd_, cap)
        columns, bound = len(lp.cols_i), min(lp_value, prices.bound(value, usable, amount, pd_, cap))
    else:
        assign, prices, bound, rounds, columns = _core(
            value, usable, amount, pd_, cap, penalty, sample, seed, start_columns, max_rounds
        )
    adjusted = np.where(usable, prices.adjusted(value, amount, pd_, cap.max_avg_pd), -np.inf)
    _fill(assign, adjusted, usable, amount, pd_, cap)
    margin, objective, shortfall = evaluate(assign, value, amount, pd_, cap, penalty)
    named = {
        code: {"quota": float(prices.quota[j]), "pd": float(prices.pd[j]), "volume": float(prices.volume[j])}
        for j, code in enumerate(codes)
    }
    return Assignment(assign, margin, objective, shortfall, time.perf_counter() - start, bound, named, rounds, columns)


def _keep_whole(
    x: np.ndarray, ci: np.ndarray, cj: np.ndarray, rows: np.ndarray, n: int, assign: np.ndarray | None = None
) -> np.ndarray:
    """The LP's whole assignments (all but at most a few hundred drawdowns); `rows` maps LP rows to drawdowns."""
    assign = np.full(n, -1, dtype=np.int64) if assign is None else assign
    whole = x > 1 - 1e-6
    assign[rows[ci[whole]]] = cj[whole]
    return assign


def _core(
    value: np.ndarray,
    usable: np.ndarray,
    amount: np.ndarray,
    pd_: np.ndarray,
    cap: Capacity,
    penalty: float,
    sample: int,
    seed: int,
    start_columns: int,
    max_rounds: int,
) -> tuple[np.ndarray, Prices, float, int, int]:
    """A batch too large for one LP: prices from an LP on a random sample (capacities scaled to it) settle the
    drawdowns whose best choice is clear; an exact LP over the `sample` most contested ones and those the
    repairs dropped, within the room the settled ones leave, decides the rest."""
    n = len(amount)
    idx = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    share = sample / n
    part = Capacity(cap.quota * share, cap.min_volume * share, cap.max_avg_pd)
    lp, _, prices, _, rounds = _solve_lp(
        value[idx], usable[idx], amount[idx], pd_[idx], part, penalty, start_columns, max_rounds
    )
    bound = prices.bound(value, usable, amount, pd_, cap)
    assign, rows, room = _settle(value, usable, amount, pd_, cap, prices, sample)
    core, x, prices, _, more = _solve_lp(
        value[rows], usable[rows], amount[rows], pd_[rows], room, penalty, start_columns, max_rounds
    )
    _keep_whole(x, core.cols_i, core.cols_j, rows, n, assign)
    _repair_pd(assign, value, amount, pd_, cap)
    bound = min(bound, prices.bound(value, usable, amount, pd_, cap))
    return assign, prices, bound, rounds + more, len(lp.cols_i) + len(core.cols_i)


def _settle(
    value: np.ndarray, usable: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity, prices: Prices, size: int
) -> tuple[np.ndarray, np.ndarray, Capacity]:
    """Assign every drawdown but the `size` most contested to its best price-adjusted institution, repair quotas
    and PD caps (what that drops joins the contested); return that, the contested rows and the room they have."""
    n, m = value.shape
    adjusted = np.where(usable, prices.adjusted(value, amount, pd_, cap.max_avg_pd), -np.inf)
    top2 = -np.partition(-adjusted, 1, axis=1)[:, :2] if m > 1 else np.hstack([adjusted, np.full((n, 1), -np.inf)])
    best, runner_up = top2.max(axis=1), top2.min(axis=1)
    clearness = np.where(best > 0, best - np.maximum(runner_up, 0), -best) / amount
    contested = np.zeros(n, dtype=bool)
    contested[np.argpartition(clearness, size - 1)[:size]] = True
    assign = np.where(~contested & (best > 0), np.argmax(adjusted, axis=1), -1).astype(np.int64)
    settled = assign >= 0
    _repair_quota(assign, adjusted, amount, cap)
    _repair_pd(assign, value, amount, pd_, cap)
    contested |= settled & (assign < 0)  # what the repairs dropped is contested too
    funded = assign >= 0
    volume = np.bincount(assign[funded], weights=amount[funded], minlength=m)
    room = Capacity(
        np.maximum(cap.quota - volume, 0),
        np.maximum(cap.min_volume - volume, 0),
        cap.max_avg_pd,
        np.bincount(
            assign[funded], weights=amount[funded] * (cap.max_avg_pd[assign[funded]] - pd_[funded]), minlength=m
        ),
    )
    return assign, np.flatnonzero(contested), room


def _repair_quota(assign: np.ndarray, adjusted: np.ndarray, amount: np.ndarray, cap: Capacity) -> None:
    """Where an institution is over quota, drop its least valuable drawdowns until it fits."""
    for j in range(len(cap.quota)):
        mine = np.flatnonzero(assign == j)
        over = amount[mine].sum() - cap.quota[j]
        if over > 0:
            cheapest = mine[np.argsort(adjusted[mine, j], kind="stable")]
            assign[cheapest[: int(np.searchsorted(np.cumsum(amount[cheapest]), over)) + 1]] = -1


def _repair_pd(assign: np.ndarray, value: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity) -> None:
    """Where an institution's average PD is above its cap, drop the drawdowns giving least margin per unit of
    excess risk until it holds (the price-settled part must leave the LP a feasible remainder)."""
    for j in range(len(cap.quota)):
        mine = np.flatnonzero(assign == j)
        excess = amount[mine] * (pd_[mine] - cap.max_avg_pd[j])
        total = excess.sum()
        if total <= 0:
            continue
        risky = excess > 0
        candidates = mine[risky][np.argsort(value[mine[risky], j] / excess[risky], kind="stable")]
        removed = np.cumsum(amount[candidates] * (pd_[candidates] - cap.max_avg_pd[j]))
        assign[candidates[: int(np.searchsorted(removed, total)) + 1]] = -1


def _fill(
    assign: np.ndarray, adjusted: np.ndarray, usable: np.ndarray, amount: np.ndarray, pd_: np.ndarray, cap: Capacity
) -> None:
    """Give the drawdowns still open, best price-adjusted margin first, to the best institution with room."""
    m = adjusted.shape[1]
    funded = assign >= 0
    room = cap.quota - np.bincount(assign[funded], weights=amount[funded], minlength=m)
    pd_room = np.bincount(
        assign[funded], weights=amount[funded] * (cap.max_avg_pd[assign[funded]] - pd_[funded]), minlength=m
    )
    rest = np.flatnonzero(~funded & usable.any(axis=1))
    rank = np.argsort(-adjusted[rest], axis=1, kind="stable")
    order = np.argsort(-adjusted[rest, rank[:, 0]], kind="stable")
    for r in order:
        i = rest[r]
        a, p = amount[i], pd_[i]
        for j in rank[r]:
            if not usable[i, j]:
                break
            if room[j] >= a and pd_room[j] + a * (cap.max_avg_pd[j] - p) >= -1e-9:
                assign[i] = j
                room[j] -= a
                pd_room[j] += a * (cap.max_avg_pd[j] - p)
                break
