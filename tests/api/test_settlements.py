"""Settlement statements over HTTP: an institution reads its own as JSON or CSV, the operator records one paid once,
and bad input is a problem document naming the field."""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import select

from openice.close_of_day import run_until
from openice.storage import api_tables
from tests.api.conftest import World

URL = "/v1/institutions/INST-A/settlements"
JANUARY = {"period": "month", "from": "2026-01-01", "to": "2026-01-31"}


def test_an_institution_reads_its_statements_as_json_and_csv(world: World) -> None:
    """INST-A funded borrower 1's 10,000.00 on 15 January; its referral fee is 30 bp: 30.00 it owes the platform."""
    own = world.call("INST-A", "GET", URL, params=JANUARY)
    assert own.status_code == 200, own.text
    (january,) = own.json()["statements"]
    assert (january["id"], january["status"], january["from"], january["to"]) == (
        "CNY-2026-01",
        "open",
        "2026-01-01",
        "2026-01-31",
    )
    assert january["lines"]["disbursements_funded"] == "10000.00"
    assert january["lines"]["referral_fees"] == "30.00"
    assert (january["owed_by_institution"], january["net"]) == ("30.00", "-30.00")
    assert [(o["currency"], o["net"]) for o in own.json()["outstanding"]] == [("CNY", "-30.00")]
    assert world.call("operator", "GET", URL, params=JANUARY).json() == own.json()
    by_suffix = world.call("INST-A", "GET", URL + ".csv", params=JANUARY)
    by_accept = world.client.get(URL, params=JANUARY, headers={**world.as_("INST-A"), "Accept": "text/csv"})
    assert by_suffix.headers["content-type"].startswith("text/csv") and by_suffix.text == by_accept.text
    (row,) = csv.DictReader(io.StringIO(by_suffix.text))
    assert (row["id"], row["referral_fees"], row["net"], row["settlement_id"]) == ("CNY-2026-01", "30.00", "-30.00", "")
    days = world.call("INST-A", "GET", URL, params={**JANUARY, "period": "day"}).json()["statements"]
    assert [d["id"] for d in days] == ["CNY-2026-01-15"]


def test_another_institution_and_a_borrower_see_nothing(world: World) -> None:
    assert world.call("INST-B", "GET", URL).status_code == 404
    assert world.call("INST-B", "GET", URL + ".csv").status_code == 404
    assert world.call("borrower1", "GET", URL).status_code == 403
    mine = world.call("INST-B", "GET", "/v1/institutions/INST-B/settlements", params=JANUARY).json()
    assert {s["institution"] for s in mine["statements"]} == {"INST-B"}


def test_bad_input_is_a_problem_naming_the_field(world: World) -> None:
    for params, field in (({"period": "week"}, "period"), ({"from": "2026-13-01"}, "from")):
        bad = world.call("INST-A", "GET", URL, params=params)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json", bad.text
        assert bad.json()["field"] == field
    backwards = world.call("INST-A", "GET", URL, params={"from": "2026-02-01", "to": "2026-01-01", "period": "day"})
    assert backwards.status_code == 422 and backwards.json()["field"] == "to"
    wrong = world.call("operator", "POST", URL + "/2026-01/paid", key="p0")
    assert wrong.status_code == 422 and wrong.json()["field"] == "statement_id"


def test_the_operator_records_a_statement_paid_once(world: World) -> None:
    paid_url = URL + "/CNY-2026-01/paid"
    early = world.call("operator", "POST", paid_url, key="p1")
    assert early.status_code == 409 and early.json()["field"] == "statement_id"  # January is not closed yet
    run_until(world.engine, date(2026, 2, 1))
    assert world.call("INST-A", "POST", paid_url, key="p1").status_code == 403
    done = world.call("operator", "POST", paid_url, key="p1")
    assert done.status_code == 201, done.text
    assert (done.json()["statement"], done.json()["net"], done.json()["paid_on"]) == (
        "CNY-2026-01",
        "-30.00",
        "2026-02-01",
    )
    assert world.call("operator", "POST", paid_url, key="p1").json() == done.json()  # replayed
    twice = world.call("operator", "POST", paid_url, key="p2")
    assert twice.status_code == 409 and "already settled" in twice.json()["detail"]
    after = world.call("INST-A", "GET", URL, params=JANUARY).json()
    assert after["statements"][0]["status"] == "paid"
    assert after["statements"][0]["settlement_id"] == done.json()["settlement_id"]
    assert [o["net"] for o in after["outstanding"]] == ["0.00"]
    with world.engine.connect() as conn:
        actions = list(
            conn.execute(
                select(api_tables.audit_log.c.action).where(api_tables.audit_log.c.resource == "institution/INST-A")
            ).scalars()
        )
    assert actions.count("settlement.paid") == 1
