"""The desk's forms answered with the test client: sharing cases among agents, and bad input beside its field."""

from __future__ import annotations

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
