"""Real-time ranking of the institutions for one drawdown: pure, so it is tested and benchmarked alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from openice.matching.boxes import CRITERIA, Boxes, Drawdowns
from openice.matching.economics import margins
from openice.matching.institutions import Institution


class Ranking(StrEnum):
    MARGIN = "margin"  # the platform's expected margin
    PRIORITY = "priority"  # the operator's priority, margin breaking ties
    PRICE = "price"  # margin less the batch optimiser's shadow prices of quota, PD cap and volume commitments


@dataclass(frozen=True)
class Candidate:
    code: str
    rank: int
    expected_margin: int  # minor units
    key: float  # what the ranking sorted on


@dataclass(frozen=True)
class Routing:
    candidates: list[Candidate]
    refusals: dict[str, list[str]]  # institution -> why it is not a candidate


class Router:
    """Institutions prepared once as arrays; `rank` then costs tens of microseconds per drawdown."""

    def __init__(
        self,
        institutions: Sequence[Institution],
        product_fees: Mapping[str, tuple[float, float]],
        currencies: Mapping[str, str],
        prices: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """`currencies`: each product's, so an institution is offered only products in its own (`Boxes`)."""
        self.institutions = list(institutions)
        self.boxes = Boxes(self.institutions, currencies)
        self.product_fees = dict(product_fees)
        self.priority = np.array([i.priority for i in self.institutions], dtype=float)
        self.max_avg_pd = np.array([i.max_avg_pd for i in self.institutions], dtype=float)
        prices = prices or {}
        self.prices = np.array(
            [[prices.get(i.code, {}).get(k, 0.0) for k in ("quota", "pd", "volume")] for i in self.institutions],
            dtype=float,
        ).reshape(len(self.institutions), 3)

    def rank(self, d: Drawdowns, ranking: Ranking = Ranking.MARGIN) -> Routing:
        """Institutions whose box accepts and whose expected margin is positive, best first."""
        masks = self.boxes.masks(d)
        passed = np.array([masks[c][0] for c in CRITERIA])  # criteria x institutions
        value = margins(d, self.institutions, self.product_fees)[0]
        inside = np.asarray(passed.all(axis=0))
        refusals: dict[str, list[str]] = {}
        for j in np.flatnonzero(~inside | (value <= 0)):
            failed = (
                [CRITERIA[k] for k in np.flatnonzero(~passed[:, j])]
                if not inside[j]
                else ["expected margin not positive"]
            )
            refusals[self.institutions[j].code] = failed
        eligible = [int(j) for j in np.flatnonzero(inside & (value > 0))]
        if ranking is Ranking.PRIORITY:
            order = sorted(eligible, key=lambda j: (self.priority[j], -value[j]))
            keys = self.priority
        else:
            keys = value
            if ranking is Ranking.PRICE:
                a, p = float(d.amount[0]), float(d.pd[0])
                keys = value - a * (self.prices[:, 0] + (p - self.max_avg_pd) * self.prices[:, 1] - self.prices[:, 2])
            order = sorted(eligible, key=lambda j: (-keys[j], self.priority[j]))
        return Routing(
            [Candidate(self.institutions[j].code, r, int(value[j]), float(keys[j])) for r, j in enumerate(order)],
            refusals,
        )
