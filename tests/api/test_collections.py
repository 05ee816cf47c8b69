"""The collections desk over HTTP: the two world loans fall overdue on 2026-02-15 and each gets a case."""

from __future__ import annotations

from sqlalchemy import select

from openice.access.keys import ApiKeys
from openice.storage import api_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World, bearer

PROMISE = {
    "channel": "call",
    "outcome": "promise",
    "promise": {"amount": "300.00", "currency": "CNY", "by": "2026-02-20"},
}


def cases_by_loan(world: World, who: str = "operator") -> dict[int, dict]:
    response = world.call(who, "GET", "/v1/collections/queue")
    assert response.status_code == 200, response.text
    return {c["loan_id"]: c for c in response.json()["items"]}


def test_the_platform_desk_works_every_case_and_a_promise_replays(world: World) -> None:
    world.first_due()
    summary = world.call("collections", "GET", "/v1/collections/summary").json()
    assert [(s["stage"], s["cases"], s["unassigned"]) for s in summary] == [("M1", 2, 2)]
    cases = cases_by_loan(world, "collections")
    assert set(cases) == {world.ids[1]["loan"], world.ids[2]["loan"]}
    case = cases[world.ids[1]["loan"]]
    assert case["days_past_due"] == 1 and case["overdue"]["currency"] == "CNY"

    made = world.call("collections", "POST", f"/v1/collections/cases/{case['id']}/contacts", key="c1", json=PROMISE)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["promise"] == {
        "amount": {"amount": "300.00", "currency": "CNY"},
        "by": "2026-02-20",
        "made_on": "2026-02-16",
    }
    assert [x["kind"] for x in body["actions"]] == ["opened", "contact"] and body["next_contact_on"] == "2026-02-21"
    again = world.call("collections", "POST", f"/v1/collections/cases/{case['id']}/contacts", key="c1", json=PROMISE)
    assert again.status_code == 201 and again.json() == body
    other = world.call(
        "collections",
        "POST",
        f"/v1/collections/cases/{case['id']}/contacts",
        key="c1",
        json={"channel": "sms", "outcome": "no_answer"},
    )
    assert other.status_code == 409
    assert set(cases_by_loan(world)) == {world.ids[2]["loan"]}  # held out of the queue while the promise runs

    assigned = world.call("operator", "POST", "/v1/collections/assignments", key="a1", json={"agents": ["ann", "bob"]})
    assert assigned.status_code == 201 and sum(assigned.json()["assigned"].values()) == 1  # the other has its agent
    listed = world.call("operator", "GET", "/v1/collections/cases", params={"status": "open", "limit": 1})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1 and listed.json()["next_cursor"]
    report = world.call(
        "operator", "GET", "/v1/collections/performance", params={"from": "2026-02-01", "to": "2026-02-28"}
    )
    assert report.status_code == 200, report.text
    assert (report.json()["from"], report.json()["to"]) == ("2026-02-01", "2026-02-28")
    [agent] = report.json()["agents"]
    assert (agent["contacts"], agent["promises"], agent["kept_rate"]) == (1, 1, None)  # not judged yet
    assert report.json()["stages"][0] == {"stage": "M1", "opened": 2, "escalated_in": 0}
    with world.engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(
                select(api_tables.audit_log.c.action).where(api_tables.audit_log.c.action.like("collections.%"))
            )
        ]
    assert sorted(actions) == ["collections.assigned", "collections.contact"]


def test_bad_contacts_name_the_field(world: World) -> None:
    world.first_due()
    case = cases_by_loan(world)[world.ids[1]["loan"]]["id"]
    url = f"/v1/collections/cases/{case}/contacts"
    for n, (body, field) in enumerate(
        [
            ({**PROMISE, "promise": {**PROMISE["promise"], "by": "2026-03-30"}}, "promise.by"),
            ({**PROMISE, "promise": {**PROMISE["promise"], "currency": "USD"}}, "promise.currency"),
            ({"channel": "call", "outcome": "promise"}, "promise.amount"),
            ({**PROMISE, "outcome": "reached"}, "promise"),
            ({"channel": "pigeon", "outcome": "reached"}, "channel"),
        ]
    ):
        response = world.call("operator", "POST", url, key=f"bad-{n}", json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["field"] == field, problem
    detail = world.call("operator", "GET", f"/v1/collections/cases/{case}").json()
    assert [x["kind"] for x in detail["actions"]] == ["opened"]


def test_an_institution_works_only_its_own_loans_cases(world: World) -> None:
    world.first_due()
    mine, theirs = (cases_by_loan(world)[world.ids[k]["loan"]]["id"] for k in (1, 2))
    desk = ApiKeys(EngineUnits(world.engine)).create("collections", "INST-A")["secret"]
    for headers in (world.as_("INST-A"), bearer(desk)):
        queue = world.client.get("/v1/collections/queue", headers=headers).json()["items"]
        assert [c["id"] for c in queue] == [mine]
        listed = world.client.get("/v1/collections/cases", headers=headers).json()["items"]
        assert [c["id"] for c in listed] == [mine]
        assert world.client.get(f"/v1/collections/cases/{theirs}", headers=headers).status_code == 404
        foreign = world.client.post(
            f"/v1/collections/cases/{theirs}/contacts", json=PROMISE, headers={**headers, "Idempotency-Key": "x"}
        )
        assert foreign.status_code == (403 if headers == world.as_("INST-A") else 404)  # an institution reads only
        assert [s["cases"] for s in world.client.get("/v1/collections/summary", headers=headers).json()] == [1]
    assert world.call("borrower1", "GET", "/v1/collections/queue").status_code == 403
    assert world.call("borrower1", "GET", f"/v1/collections/cases/{mine}").status_code == 403
