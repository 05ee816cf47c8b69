"""Institutions' figures over HTTP: the referral fees they pay (settled against their loans' receivables, oldest
first), the quota they have taken, and the batch runs that price them."""

from __future__ import annotations

from sqlalchemy import select

from openice.matching.repository import MatchingRunRepository
from openice.servicing.service import Servicing
from openice.storage import api_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World


def test_an_operator_records_an_institutions_referral_payment(world: World) -> None:
    """CASH-EI's referral fee is 30 bp: INST-A owes 30.00 on borrower 1's 10,000.00 and 6.00 on a 2,000.00 loan."""
    Servicing(EngineUnits(world.engine)).originate(
        product_code="CASH-EI",
        principal=200_000,
        tenor=12,
        funder="INST-A",
        business_model="capital-light",
        idempotency_key="r1",
    )
    url = "/v1/institutions/INST-A/referral-settlements"
    body = {"amount": "33.00", "currency": "CNY"}
    assert world.call("INST-A", "POST", url, key="s1", json=body).status_code == 403
    too_much = world.call("operator", "POST", url, key="s0", json={"amount": "36.01", "currency": "CNY"})
    assert too_much.status_code == 422 and too_much.json()["field"] == "amount"
    assert (
        world.call("operator", "POST", "/v1/institutions/NOPE/referral-settlements", key="s1", json=body).status_code
        == 404
    )
    done = world.call("operator", "POST", url, key="s1", json=body)
    assert done.status_code == 201, done.text
    assert done.json()["settled"] == {"amount": "33.00", "currency": "CNY"} and done.json()["loans"] == 2
    assert done.json()["still_owed"] == {"amount": "3.00", "currency": "CNY"}
    assert world.call("operator", "POST", url, key="s1", json=body).json() == done.json()  # replayed
    with world.engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(
                select(api_tables.audit_log.c.action).where(api_tables.audit_log.c.resource == "institution/INST-A")
            )
        ]
    assert actions == ["referral.settled"]  # one settlement, one row: the replay writes none


def test_an_institution_reads_how_much_of_its_quota_it_has_taken(world: World) -> None:
    """INST-A funded borrower 1's 10,000.00 (1,000,000 minor units) on the world's first business day."""
    own = world.call("INST-A", "GET", "/v1/institutions/INST-A/quota")
    assert own.status_code == 200, own.text
    day, month = own.json()["periods"]
    assert (day["period"], month["period"]) == ("day", "month")
    assert month["used"] == 1_000_000 and month["left"] == month["quota"] - 1_000_000
    assert month["starts_on"].endswith("-01") and own.json()["business_date"] >= day["starts_on"]
    assert world.call("operator", "GET", "/v1/institutions/INST-A/quota").json() == own.json()
    assert world.call("INST-B", "GET", "/v1/institutions/INST-A/quota").status_code == 404


def test_the_operator_reads_the_batch_runs_and_their_shadow_prices(world: World) -> None:
    with world.engine.begin() as conn:
        run = MatchingRunRepository(conn).add(20_500, 400, 1_234.6, 1_200.2, {"INST-A": {"quota": 0.0125}})
    runs = world.call("operator", "GET", "/v1/matching-runs").json()["items"]
    assert [(r["id"], r["drawdowns"], r["objective"], r["prices"]) for r in runs] == [
        (run, 400, 1_234, {"INST-A": {"quota": 0.0125}})
    ]
    assert runs[0]["run_on"] == "2026-02-16"  # day 20,500
    for who in ("INST-A", "borrower1", "collections"):
        assert world.call(who, "GET", "/v1/matching-runs").status_code == 403
