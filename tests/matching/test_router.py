import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from openice.decisioning.synthetic import REGIONS
from openice.matching.boxes import Drawdowns
from openice.matching.institutions import CreditBox
from openice.matching.router import Ranking, Router
from openice.matching.service import Matching, product_currencies, product_fees
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import BASE, institution

FEES, CURRENCIES = product_fees(demo_products()), product_currencies(demo_products())


def test_ranking_by_margin_priority_and_price() -> None:
    cheap = institution("CHEAP", rate="0.05", priority=9)
    dear = institution("DEAR", rate="0.09", priority=1)
    closed = institution("CLOSED", credit_box=CreditBox(max_pd=0.01))
    drawdown = Drawdowns.one(**BASE)
    routing = Router([cheap, dear, closed], FEES, CURRENCIES).rank(drawdown)
    assert [c.code for c in routing.candidates] == ["CHEAP", "DEAR"]  # the wider spread first
    assert routing.refusals == {"CLOSED": ["pd"]}
    assert [c.code for c in Router([cheap, dear], FEES, CURRENCIES).rank(drawdown, Ranking.PRIORITY).candidates] == [
        "DEAR",
        "CHEAP",
    ]
    priced = Router([cheap, dear], FEES, CURRENCIES, {"CHEAP": {"quota": 0.05, "pd": 0.0, "volume": 0.0}})
    assert [c.code for c in priced.rank(drawdown, Ranking.PRICE).candidates] == ["DEAR", "CHEAP"]


def test_an_institution_in_another_currency_is_never_a_candidate() -> None:
    """The demo products lend in CNY: a USD institution whose box takes anything is refused on `product`."""
    dollars = institution("DOLLARS", credit_box=CreditBox(), currency="USD")
    routing = Router([dollars, institution("CHEAP", rate="0.05")], FEES, CURRENCIES).rank(Drawdowns.one(**BASE))
    assert [c.code for c in routing.candidates] == ["CHEAP"] and routing.refusals == {"DOLLARS": ["product"]}


def test_unprofitable_institutions_are_refused() -> None:
    heavy = institution(
        "HEAVY", business_model="capital-heavy", guarantee_payout_dpd=90, rate="0.149", credit_box=CreditBox()
    )
    routing = Router([heavy], FEES, CURRENCIES).rank(Drawdowns.one(**{**BASE, "pd": 0.19}))
    assert routing.candidates == [] and routing.refusals == {"HEAVY": ["expected margin not positive"]}


def test_batch_run_stores_prices_for_routing(engine: Engine, servicing: Servicing) -> None:
    rng = np.random.default_rng(2)
    n = 400
    frame = pd.DataFrame(
        {
            "amount": rng.integers(1_000, 20_000, n) * 100,
            "tenor": rng.choice([6, 12], n),
            "score": rng.uniform(600, 800, n),
            "pd": rng.beta(1.5, 25, n),
            "age": 30,
            "province": rng.choice([r[1] for r in REGIONS], n),
            "income": 1_000_000,
            "dti": rng.uniform(0.1, 0.5, n),
            "product": "CASH-EI",
            "rate": 0.18,
        }
    )
    quota = int(frame["amount"].sum() / 3)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(
        [
            institution(
                code, credit_box=CreditBox(), rate=rate, daily_quota=quota, monthly_quota=quota * 20, max_avg_pd=0.05
            )
            for code, rate in (("A", "0.06"), ("B", "0.08"))
        ]
    )
    result = matching.optimise_batch(frame, penalty=0.0)
    assert result["run_id"] >= 1 and result["objective"] >= result["greedy_objective"]
    # money in whole fen, rounded half-up once, so the gain is the difference of the figures shown
    assert all(isinstance(result[name], int) for name in ("objective", "greedy_objective", "gain", "margin"))
    assert result["gain"] == result["objective"] - result["greedy_objective"]
    assert result["objective"] <= result["lp_bound"] * (1 + 1e-9)
    assert set(result["assignment"]) <= {"A", "B", ""}
    with matching._unit(readonly=True) as unit:
        router = matching.router(unit)
    assert router.prices[:, 0].max() > 0  # the quotas bind, so they carry a price
    assert result["prices"]["A"]["quota"] == pytest.approx(router.prices[0, 0])
