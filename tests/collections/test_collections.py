"""Collection cases worked by hand on SQLite and PostgreSQL: a bullet loan of 1,000.00 due on 2026-02-15
(the 15th of January plus a month) that is never paid, paid after a promise, or paid short of one."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from openice.close_of_day import run_until
from openice.collections.service import Collections
from openice.collections.strategy import Strategy, distribute
from openice.errors import Conflict, NotFound, ValidationError
from openice.servicing import ledger
from openice.servicing.service import Servicing
from openice.storage import collections_tables, servicing_tables
from openice.storage.days import from_day
from openice.storage.uow import EngineUnits
from openice.tenancy import collections_desk

DUE = date(2026, 2, 15)
DESK = collections_desk(None)  # the platform's desk: every case
BANK_B = collections_desk("bank-b")


def originate(servicing: Servicing, n: int = 1, funder: str = "bank-a") -> list[int]:
    return [
        servicing.originate(
            product_code="BNPL-BULLET",
            principal=100_000,
            tenor=1,
            funder=funder,
            business_model="capital-light",
            idempotency_key=f"{funder}-{i}",
        )["loan_id"]
        for i in range(n)
    ]


def kinds(collections: Collections, case_id: int) -> list[str]:
    return [a["kind"] for a in collections.case(DESK, case_id)["actions"]]


def test_a_case_follows_an_unpaid_loan_from_its_due_date_to_recovery(servicing: Servicing, engine: Engine) -> None:
    [loan_id] = originate(servicing)
    collections = Collections(EngineUnits(engine))
    run_until(engine, DUE)
    assert collections.queue(DESK) == []  # due today, not yet overdue
    run_until(engine, date(2026, 2, 16))  # closing the due date: unpaid, so one day past due
    [case] = collections.queue(DESK)
    due = servicing.loan(loan_id).total_due()
    assert (case["loan_id"], case["stage"], case["days_past_due"], case["overdue_amount"]) == (loan_id, "M1", 1, due)
    assert (case["opened_on"], case["next_contact_on"], case["assignee"]) == (DUE, date(2026, 2, 16), None)

    collections.record_contact(DESK, case["id"], channel="sms", outcome="no_answer", agent="ann")
    assert collections.queue(DESK) == []  # M1 is contacted weekly
    run_until(engine, date(2026, 2, 23))
    assert [q["id"] for q in collections.queue(DESK)] == [case["id"]]
    assert collections.case(DESK, case["id"])["assignee"] == "ann"

    run_until(engine, date(2026, 3, 18))  # 31 days past due: M2, due for a call the next day
    escalated = collections.case(DESK, case["id"])
    assert (escalated["stage"], escalated["days_past_due"], escalated["next_contact_on"]) == (
        "M2",
        31,
        date(2026, 3, 18),
    )
    assert kinds(collections, case["id"]) == ["opened", "contact", "escalated"]
    with engine.connect() as conn:
        events = conn.execute(
            select(
                servicing_tables.outbox.c.event_type,
                servicing_tables.outbox.c.business_day,
                servicing_tables.outbox.c.payload,
            )
            .where(servicing_tables.outbox.c.event_type.like("collections.%"))
            .order_by(servicing_tables.outbox.c.id)
        ).all()
    assert [(e.event_type, from_day(e.business_day), json.loads(e.payload)) for e in events] == [
        ("collections.opened", date(2026, 2, 16), {"detail": "M1", "amount": due}),
        ("collections.escalated", date(2026, 3, 18), {"detail": "M2", "amount": None}),
    ]

    run_until(engine, date(2026, 8, 14))  # the last day before the write-off
    loan = servicing.loan(loan_id)
    written_off = sum(loan.balance(account) for account in ledger.RECEIVABLE_ACCOUNTS)
    run_until(engine, date(2026, 8, 15))
    recovery = collections.case(DESK, case["id"])
    assert (recovery["status"], recovery["stage"], recovery["overdue_amount"]) == ("open", "WO", written_off)

    servicing.recover(loan_id, written_off - 100, "recovery-1")
    run_until(engine, date(2026, 8, 16))
    assert collections.case(DESK, case["id"])["overdue_amount"] == 100
    servicing.recover(loan_id, 100, "recovery-2")
    run_until(engine, date(2026, 8, 17))
    closed = collections.case(DESK, case["id"])
    assert (closed["status"], closed["resolution"], closed["closed_on"]) == ("closed", "recovered", date(2026, 8, 16))
    assert kinds(collections, case["id"])[-1] == "closed"
    assert collections.queue(DESK) == []


def test_a_kept_promise_and_a_repaid_loan_close_the_case(servicing: Servicing, engine: Engine) -> None:
    [loan_id] = originate(servicing)
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    [case] = collections.queue(DESK)
    promised = servicing.loan(loan_id).total_due()
    after = collections.record_contact(
        DESK,
        case["id"],
        channel="call",
        outcome="promise",
        agent="bob",
        promise_amount=promised,
        promise_date=date(2026, 2, 20),
    )
    assert after["promise"] == {"amount": promised, "by": date(2026, 2, 20), "made_on": date(2026, 2, 16)}
    assert after["next_contact_on"] == date(2026, 2, 21)
    run_until(engine, date(2026, 2, 18))
    assert collections.queue(DESK) == []  # held while the promise runs
    servicing.repay(loan_id, servicing.loan(loan_id).total_due(), "pay")
    run_until(engine, date(2026, 2, 19))
    closed = collections.case(DESK, case["id"])
    assert (closed["status"], closed["resolution"], closed["promises_kept"], closed["promise"]) == (
        "closed",
        "repaid",
        1,
        None,
    )
    assert kinds(collections, case["id"]) == ["opened", "contact", "promise_kept", "closed"]
    with pytest.raises(Conflict) as error:
        collections.record_contact(DESK, case["id"], channel="call", outcome="reached", agent="bob")
    assert error.value.field == "case_id"


def test_a_promise_paid_short_is_broken_and_the_case_returns_to_the_queue(servicing: Servicing, engine: Engine) -> None:
    [loan_id] = originate(servicing)
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    [case] = collections.queue(DESK)
    collections.record_contact(
        DESK,
        case["id"],
        channel="call",
        outcome="promise",
        agent="bob",
        promise_amount=50_000,
        promise_date=date(2026, 2, 20),
    )
    servicing.repay(loan_id, 30_000, "part")
    run_until(engine, date(2026, 2, 20))
    assert collections.queue(DESK) == []
    run_until(engine, date(2026, 2, 21))  # closing the promise's date judges it
    [back] = collections.queue(DESK)
    assert (back["id"], back["promises_broken"], back["promise"]) == (case["id"], 1, None)
    broken = collections.case(DESK, case["id"])["actions"][-1]
    assert (broken["kind"], broken["amount"]) == ("promise_broken", 30_000)
    assert collections.case(DESK, case["id"])["overdue_amount"] == servicing.loan(loan_id).total_due()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"channel": "pigeon", "outcome": "reached"}, "channel"),
        ({"channel": "call", "outcome": "maybe"}, "outcome"),
        ({"channel": "call", "outcome": "reached", "promise_amount": 100}, "promise"),
        ({"channel": "call", "outcome": "promise", "promise_date": date(2026, 2, 20)}, "promise_amount"),
        (
            {"channel": "call", "outcome": "promise", "promise_amount": -5, "promise_date": date(2026, 2, 20)},
            "promise_amount",
        ),
        ({"channel": "call", "outcome": "promise", "promise_amount": 100}, "promise_date"),
        (
            {"channel": "call", "outcome": "promise", "promise_amount": 100, "promise_date": date(2026, 2, 15)},
            "promise_date",
        ),
        (
            {"channel": "call", "outcome": "promise", "promise_amount": 100, "promise_date": date(2026, 3, 3)},
            "promise_date",
        ),
        ({"channel": "call", "outcome": "reached", "agent": ""}, "agent"),
    ],
)
def test_a_bad_contact_names_its_field_and_changes_nothing(
    servicing: Servicing, engine: Engine, kwargs: dict, field: str
) -> None:
    originate(servicing)
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    [case] = collections.queue(DESK)
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(collections_tables.collection_actions)).scalar_one()
    with pytest.raises(ValidationError) as error:
        collections.record_contact(DESK, case["id"], **{"agent": "ann", **kwargs})
    assert error.value.field == field
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(collections_tables.collection_actions)).scalar_one() == before
        )
    assert collections.case(DESK, case["id"]) | {"actions": None} == case | {"actions": None}


def test_an_institution_sees_only_the_cases_of_loans_it_funded(servicing: Servicing, engine: Engine) -> None:
    originate(servicing, 2, "bank-a")
    [other] = originate(servicing, 1, "bank-b")
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    mine = collections.queue(BANK_B)
    assert [q["loan_id"] for q in mine] == [other]
    foreign = next(q["id"] for q in collections.queue(DESK) if q["loan_id"] != other)
    with pytest.raises(NotFound):
        collections.case(BANK_B, foreign)
    with pytest.raises(NotFound):
        collections.record_contact(BANK_B, foreign, channel="call", outcome="reached", agent="x")
    assert collections.assign(BANK_B, ["desk-b"]) == {"desk-b": 1}
    assert [s["cases"] for s in collections.summary(BANK_B)] == [1]
    assert sum(s["unassigned"] for s in collections.summary(DESK)) == 2


def test_assignment_spreads_cases_and_large_balances(servicing: Servicing, engine: Engine) -> None:
    originate(servicing, 5)
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    assert collections.assign(DESK, ["ann", "bob"]) == {"ann": 3, "bob": 2}
    assert collections.assign(DESK, ["ann", "bob", "cy"]) == {"ann": 0, "bob": 0, "cy": 0}  # nothing left unassigned
    assert {q["assignee"] for q in collections.queue(DESK, assignee="bob")} == {"bob"}
    with pytest.raises(ValidationError) as error:
        collections.assign(DESK, ["ann", "ann"])
    assert error.value.field == "agents"


def test_distribute_evens_out_the_workload_largest_first() -> None:
    cases = [(1, 500), (2, 900), (3, 100), (4, 700)]
    assert distribute(cases, {"ann": 0, "bob": 0}) == {2: "ann", 4: "bob", 1: "ann", 3: "bob"}
    assert distribute(cases, {"ann": 3, "bob": 0}) == {2: "bob", 4: "bob", 1: "bob", 3: "ann"}
    with pytest.raises(ValidationError):
        distribute(cases, {})


def test_a_strategy_needs_every_stage_and_sane_cadences() -> None:
    with pytest.raises(ValidationError) as error:
        Strategy(treatments={})
    assert error.value.field == "treatments"
    with pytest.raises(ValidationError) as error:
        Strategy(max_promise_days=0)
    assert error.value.field == "max_promise_days"


def test_performance_credits_each_promise_to_the_agent_who_took_it(servicing: Servicing, engine: Engine) -> None:
    first, second, third = originate(servicing, 3)
    collections = Collections(EngineUnits(engine))
    run_until(engine, date(2026, 2, 16))
    case = {q["loan_id"]: q["id"] for q in collections.queue(DESK)}
    full = servicing.loan(first).total_due()
    collections.record_contact(
        DESK,
        case[first],
        channel="call",
        outcome="promise",
        agent="ann",
        promise_amount=full,
        promise_date=date(2026, 2, 18),
    )
    collections.record_contact(
        DESK,
        case[second],
        channel="call",
        outcome="promise",
        agent="bob",
        promise_amount=50_000,
        promise_date=date(2026, 2, 18),
    )
    collections.record_contact(DESK, case[third], channel="sms", outcome="no_answer", agent="bob")
    servicing.repay(first, full, "paid-in-full")
    servicing.repay(second, 30_000, "paid-short")
    run_until(engine, date(2026, 3, 20))  # past 30 days overdue: the two unpaid loans move to M2
    found = collections.performance(DESK, date(2026, 2, 1), date(2026, 3, 31))
    assert found["agents"] == [
        {
            "agent": "ann",
            "currency": "CNY",
            "contacts": 1,
            "reached": 1,
            "promises": 1,
            "kept": 1,
            "broken": 0,
            "kept_amount": full,
            "kept_rate": 1.0,
        },
        {
            "agent": "bob",
            "currency": "CNY",
            "contacts": 2,
            "reached": 1,
            "promises": 1,
            "kept": 0,
            "broken": 1,
            "kept_amount": 0,
            "kept_rate": 0.0,
        },
    ]
    assert found["stages"][:2] == [
        {"stage": "M1", "opened": 3, "escalated_in": 0},
        {"stage": "M2", "opened": 0, "escalated_in": 2},
    ]
    assert found["closed"] == {"cured": 0, "repaid": 1, "recovered": 0}
    assert collections.performance(BANK_B, date(2026, 2, 1), date(2026, 3, 31))["agents"] == []
    with pytest.raises(ValidationError) as error:
        collections.performance(DESK, date(2026, 3, 1), date(2026, 2, 1))
    assert error.value.field == "to"
