"""The desk's forms answered with the test client: sharing cases among agents, and bad input beside its field."""

from __future__ import annotations

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
