"""The platform's expected margin on a drawdown funded by each institution, vectorised.

margin = fees + interest kept - expected loss borne - funding cost borne, in minor units:
- fees: the product's upfront facilitation fee and monthly service fees, which servicing books to the platform;
- interest kept: with an institution funding, the spread between the borrower's rate and the rate the
  institution takes; on the platform's own balance sheet, all the interest;
- expected loss borne: capital-heavy (the platform guarantees) and on balance sheet; lifetime PD from the
  12-month PD, times LGD, times the amount;
- funding cost borne: on balance sheet only (the institution's funding cost is inside its rate otherwise).
Average exposure of an amortising loan is approximated as amount x (tenor + 1) / 2 months.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from openice.matching.boxes import Drawdowns
from openice.matching.institutions import Institution

LGD = 0.8  # unsecured consumer credit


def fee_rates(products: Mapping[str, tuple[float, float]], codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(upfront fee rate, monthly fee rate) per drawdown, from each product's definition."""
    uniques, inverse = np.unique(codes.astype(str), return_inverse=True)
    table = np.array([products.get(u, (0.0, 0.0)) for u in uniques], dtype=float).reshape(len(uniques), 2)
    rows = table[inverse.reshape(-1)]
    return rows[:, 0], rows[:, 1]


def margins(
    d: Drawdowns, institutions: Sequence[Institution], products: Mapping[str, tuple[float, float]], lgd: float = LGD
) -> np.ndarray:
    """(n, m) expected platform margin in minor units."""
    amount = d.amount.astype(float)
    tenor = d.tenor.astype(float)
    upfront, monthly = fee_rates(products, d.product)
    fees = amount * (upfront + monthly * tenor)
    exposure_years = amount * (tenor + 1) / 24.0
    lifetime_pd = 1.0 - (1.0 - d.pd.astype(float)) ** (tenor / 12.0)
    loss = lifetime_pd * lgd * amount
    model = np.array([i.business_model for i in institutions])
    inst_rate = np.array([float(i.rate) for i in institutions])
    funding = np.array([float(i.funding_cost) for i in institutions])
    own = model == "on-balance-sheet"
    bears_loss = own | (model == "capital-heavy")
    kept_rate = np.where(own, d.rate.astype(float)[:, None] - funding, d.rate.astype(float)[:, None] - inst_rate)
    margin: np.ndarray = fees[:, None] + exposure_years[:, None] * kept_rate - np.where(bears_loss, loss[:, None], 0.0)
    return margin
