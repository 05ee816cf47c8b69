"""The desk's forms answered with the test client: sharing cases among agents, and bad input beside its field."""

from __future__ import annotations

import re
from datetime import date

from openice.close_of_day import run_until
from openice.errors import Conflict
from openice.servicing.payments import Collected
from tests.web.conftest import Site, csrf_of


def test_cases_are_shared_among_agents_and_an_empty_list_is_refused_in_place(site: Site) -> None:
    site.world.first_due()
    desk = site.signed_in("ann", "desk")
    csrf = csrf_of(desk.get("/desk/").text)
    empty = desk.post("/desk/assignments", data={"csrf": csrf, "agents": " , "})
    assert empty.status_code == 422 and 'id="agents-error"' in empty.text
    shared = desk.post("/desk/assignments", data={"csrf": csrf, "agents": "ann, bob"}, follow_redirects=False)
    assert shared.status_code == 303 and shared.headers["location"] == "/desk/?done=assigned"
    cases = site.world.call("operator", "GET", "/v1/collections/cases").json()["items"]
    assert sorted(c["assignee"] for c in cases) == ["ann", "bob"]
    mine = desk.get("/desk/?mine=true").text
    assert mine.count("/desk/cases/") == 1


def test_a_payment_that_is_not_a_number_changes_nothing(site: Site) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    desk = site.signed_in("ann", "desk")
    page = desk.get(f"/desk/cases/{case['id']}").text
    before = site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    for amount in ("ten", "-5", "0"):
        answer = desk.post(
            f"/desk/cases/{case['id']}/payments", data={"csrf": csrf_of(page), "amount": amount, "key": f"k-{amount}"}
        )
        assert answer.status_code == 422 and 'id="amount-error"' in answer.text, amount
    assert site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"] == before


class Declining:
    """A gateway whose every payment is declined, as a card without funds would be."""

    def collect(self, loan_id: int, amount: int, currency: str, idempotency_key: str) -> Collected:
        raise Conflict("the card was declined; ask for another way to pay", field="amount")


def test_a_payment_is_booked_only_when_the_gateway_collects_it(site: Site) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    desk = site.signed_in("ann", "desk")
    csrf = csrf_of(desk.get(f"/desk/cases/{case['id']}").text)
    before = site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    services = site.world.client.app.state.services
    services.__dict__["payments"] = Declining()
    try:
        declined = desk.post(
            f"/desk/cases/{case['id']}/payments", data={"csrf": csrf, "amount": "100.00", "key": "declined-1"}
        )
    finally:
        del services.__dict__["payments"]  # back to the configured development gateway
    assert declined.status_code == 422 and "the card was declined" in declined.text
    assert site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"] == before

    paid = desk.post(
        f"/desk/cases/{case['id']}/payments",
        data={"csrf": csrf, "amount": "100.00", "key": "paid-1"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    [audit] = site.world.call("operator", "GET", "/v1/audit", params={"action": "loan.repayment"}).json()["items"]
    assert audit["detail"]["payment"].startswith("dev-") and audit["detail"]["case_id"] == case["id"]
    again = desk.post(
        f"/desk/cases/{case['id']}/payments",
        data={"csrf": csrf, "amount": "100.00", "key": "paid-1"},
        follow_redirects=False,
    )
    assert again.status_code == 303  # the same form posted twice books and collects once
    assert (
        len(site.world.call("operator", "GET", "/v1/audit", params={"action": "loan.repayment"}).json()["items"]) == 1
    )


def test_money_taken_on_a_written_off_loan_is_a_recovery(site: Site) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    wrote = site.world.call(
        "operator", "POST", f"/v1/loans/{loan}/write-off", key="wo-1", json={"reason": "borrower deceased"}
    )
    assert wrote.status_code == 201, wrote.text
    run_until(site.engine, date(2026, 2, 17))  # end of day moves the case to the written-off stage
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    desk = site.signed_in("ann", "desk")
    csrf = csrf_of(desk.get(f"/desk/cases/{case['id']}").text)
    paid = desk.post(
        f"/desk/cases/{case['id']}/payments",
        data={"csrf": csrf, "amount": "50.00", "key": "rec-1"},
        follow_redirects=False,
    )
    assert paid.status_code == 303, paid.text
    moves = site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    assert moves[-1]["kind"] == "recovery" and moves[-1]["amount"]["amount"] == "50.00"


def test_the_queue_filters_by_funding_institution_within_what_the_desk_sees(site: Site) -> None:
    site.world.first_due()
    loans = {site.world.ids[k]["institution"]: site.world.ids[k]["loan"] for k in (1, 2)}
    cases = {
        code: site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"][0]
        for code, loan in loans.items()
    }
    desk = site.signed_in("ann", "desk")
    everything = desk.get("/desk/").text
    assert '<select id="institution"' in everything and all(
        f"/desk/cases/{c['id']}" in everything for c in cases.values()
    )
    only_a = desk.get("/desk/?institution=INST-A").text
    assert f'/desk/cases/{cases["INST-A"]["id"]}"' in only_a and f'/desk/cases/{cases["INST-B"]["id"]}"' not in only_a
    own = site.signed_in("desk-b", "desk")  # an institution's desk sees its loans only: nothing to choose from
    assert '<select id="institution"' not in own.get("/desk/").text
    assert f'/desk/cases/{cases["INST-A"]["id"]}"' not in own.get("/desk/?institution=INST-A").text


def test_a_case_is_found_by_its_number_and_another_desks_case_is_missing(site: Site) -> None:
    site.world.first_due()
    loan_a = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan_a}).json()["items"]
    found = site.signed_in("ann", "desk").get(f"/desk/?case_id={case['id']}", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == f"/desk/cases/{case['id']}"
    for who, number in (("desk-b", case["id"]), ("ann", 999_999)):
        missing = site.signed_in(who, "desk").get(f"/desk/?case_id={number}")
        assert missing.status_code == 404 and 'id="case_id-error"' in missing.text, who


def test_an_agent_sees_their_own_results_first(site: Site) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    desk = site.signed_in("ann", "desk")
    page = desk.get(f"/desk/cases/{case['id']}").text
    promised = desk.post(
        f"/desk/cases/{case['id']}/contacts",
        data={
            "csrf": csrf_of(page),
            "channel": "call",
            "outcome": "promise",
            "promise_amount": "1.00",
            "promise_date": "2026-02-20",
            "key": "perf-1",
        },
        follow_redirects=False,
    )
    assert promised.status_code == 303, promised.text
    shown = desk.get("/desk/performance").text
    mine = shown.split('id="mine"')[1].split("</section>")[0]
    assert "ANN" not in mine and "(ann)" in mine and "<dd>1</dd>" in mine
    assert re.search(r'<tr class="you"><th scope="row">ann</th><td class="num">1</td>', shown)
    assert 'data-chart="bar"' in shown
    refused = desk.get("/desk/performance?from=2026-02-30")
    assert refused.status_code == 422 and 'id="from-error"' in refused.text
    backwards = desk.get("/desk/performance?from=2026-02-10&to=2026-02-01")
    assert backwards.status_code == 422 and 'id="to-error"' in backwards.text
