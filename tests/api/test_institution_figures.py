"""Institutions' figures over HTTP: the referral fees they pay (settled against their loans' receivables, oldest
first), the quota they have taken, and the batch runs that price them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openice.matching.repository import InstitutionRepository, MatchingRunRepository
from openice.servicing.service import Servicing
from openice.storage import api_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World
from tests.matching.test_boxes import body, institution


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
    """INST-A funded borrower 1's 10,000.00 on the world's first business day, of a month's 100,000,000.00 CNY (its
    10^10 fen), leaving 99,990,000.00."""
    own = world.call("INST-A", "GET", "/v1/institutions/INST-A/quota")
    assert own.status_code == 200, own.text
    day, month = own.json()["periods"]
    assert (day["period"], month["period"]) == ("day", "month")
    assert month["quota"] == {"amount": "100000000.00", "currency": "CNY"}
    assert month["used"] == {"amount": "10000.00", "currency": "CNY"}
    assert month["left"] == {"amount": "99990000.00", "currency": "CNY"}
    assert month["starts_on"].endswith("-01") and own.json()["business_date"] >= day["starts_on"]
    assert world.call("operator", "GET", "/v1/institutions/INST-A/quota").json() == own.json()
    assert world.call("INST-B", "GET", "/v1/institutions/INST-A/quota").status_code == 404


def test_the_operator_reads_the_batch_runs_and_their_shadow_prices(world: World) -> None:
    """The objectives are stored in fen and read in yuan: 1,235 and 1,200 fen are 12.35 and 12.00 CNY, a gain of
    0.35 CNY."""
    with world.engine.begin() as conn:
        run = MatchingRunRepository(conn).add(20_500, 400, 1_235, 1_200, {"INST-A": {"quota": 0.0125}})
    runs = world.call("operator", "GET", "/v1/matching-runs").json()["items"]
    assert [(r["id"], r["drawdowns"], r["prices"]) for r in runs] == [(run, 400, {"INST-A": {"quota": 0.0125}})]
    figures = [runs[0][name] for name in ("objective", "greedy_objective", "gain")]
    assert figures == [{"amount": amount, "currency": "CNY"} for amount in ("12.35", "12.00", "0.35")]
    assert runs[0]["run_on"] == "2026-02-16"  # day 20,500
    for who in ("INST-A", "borrower1", "collections"):
        assert world.call(who, "GET", "/v1/matching-runs").status_code == 403


def test_an_institution_is_typed_and_read_in_major_units_of_the_book_s_currency(world: World) -> None:
    """Quotas and box amounts go in and come out as decimal strings of yuan; stored in fen, as routing reads them."""
    typed = {**body(institution("INST-C")), "daily_quota": "20000.00", "monthly_quota": "600000.50"}
    typed["credit_box"] = {**typed["credit_box"], "min_amount": "1000.00", "max_amount": "15000.00"}
    put = world.call("operator", "PUT", "/v1/institutions/INST-C", json=typed)
    assert put.status_code == 200, put.text
    assert put.json() == world.call("operator", "GET", "/v1/institutions/INST-C").json() == typed
    with world.engine.connect() as conn:
        inst = InstitutionRepository(conn).get("INST-C")
    # 20,000.00 CNY = 2,000,000 fen; 600,000.50 = 60,000,050; 1,000.00 = 100,000; 15,000.00 = 1,500,000
    assert (inst.daily_quota, inst.monthly_quota) == (2_000_000, 60_000_050)
    assert (inst.credit_box.min_amount, inst.credit_box.max_amount) == (100_000, 1_500_000)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"daily_quota": 2_000_000}, "daily_quota"),  # a JSON number may be minor units: refused, not guessed
        ({"daily_quota": "20000.001"}, "daily_quota"),
        ({"currency": "USD"}, "currency"),
        ({"credit_box": {"max_amount": "0"}}, "credit_box.max_amount"),
    ],
)
def test_an_institution_in_another_unit_is_refused_and_nothing_changes(
    world: World, change: dict[str, object], field: str
) -> None:
    before = world.call("operator", "GET", "/v1/institutions/INST-A").json()
    refused = world.call("operator", "PUT", "/v1/institutions/INST-A", json={**before, **change})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    named = problem.get("field") or ".".join(str(p) for p in problem["errors"][0]["loc"][1:])
    assert named == field, problem
    assert world.call("operator", "GET", "/v1/institutions/INST-A").json() == before
