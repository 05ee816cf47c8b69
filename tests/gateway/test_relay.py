"""Webhook institutions end to end on SQLite and PostgreSQL: the offer is queued with the drawdown, the relay POSTs
it signed to a real simulated institution on the loopback, and the answer in its response funds or passes on."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from openice.close_of_day import run_until
from openice.errors import Conflict
from openice.matching.gateway import webhook_principal
from openice.matching.institutions import CreditBox
from openice.servicing import settlement
from openice.servicing.service import Servicing
from openice.storage import api_tables, servicing_tables
from tests.api.conftest import make_app
from tests.gateway.conftest import FAST, Served, World, deliveries, drawdown, loans, offers, webhook_world
from tests.matching.test_routing import open_line


def test_the_offer_is_queued_with_the_drawdown_and_the_answer_in_the_response_funds_it(world: World) -> None:
    line = open_line(world.engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-w1")
    assert waiting["status"] == "offered" and waiting["institution"] == "WEB"
    (queued,) = deliveries(world.engine)
    assert (queued.event_type, queued.status, queued.idempotency_key) == (
        "offer",
        "pending",
        f"offer-{waiting['offers'][0]}",
    )
    report = json.loads(queued.payload)["report"]  # contract version 2: money in major units with its currency
    assert (report["version"], report["currency"], report["drawdown"]["amount"]) == (2, "CNY", "10000.00")
    assert isinstance(report["recommended"]["line_amount"], str) and report["credit"]["reasons"] == []
    world.deliver()
    row = drawdown(world.engine, waiting["drawdown_id"])
    assert (row.status, row.institution_code) == ("funded", "WEB") and row.loan_id
    (sent,) = deliveries(world.engine)
    assert (sent.status, sent.attempts, sent.outcome) == ("delivered", 1, "accepted: drawdown funded")
    assert (world.sim.received, len(world.sim.taken), world.sim.refused) == (1, 1, 0)
    with world.engine.connect() as conn:
        audit = conn.execute(
            select(api_tables.audit_log).where(api_tables.audit_log.c.action == "offer.accepted")
        ).all()
    assert [(a.role, a.tenant, a.key_id, a.resource) for a in audit] == [
        ("institution", "WEB", "webhook", f"offer/{waiting['offers'][0]}")
    ]
    world.deliver()  # nothing more goes out
    assert world.sim.received == 1 and loans(world.engine) == 1


def test_a_decline_in_the_response_passes_the_drawdown_to_the_next_institution(world: World) -> None:
    world.sim.box = CreditBox(max_amount=500_000)  # the institution's own box is tighter than the platform thinks
    line = open_line(world.engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-w2")
    world.deliver()
    row = drawdown(world.engine, waiting["drawdown_id"])
    assert (row.status, row.institution_code) == ("funded", "AUTO")
    assert offers(world.engine, row.id) == [("WEB", "declined"), ("AUTO", "accepted")]
    assert deliveries(world.engine)[0].outcome == "declined: drawdown funded"


def test_a_down_institution_opens_its_circuit_and_the_drawdown_goes_to_the_next_funder(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    world = webhook_world(engine, served, circuit_threshold=2, circuit_cooldown_seconds=60)
    world.sim.down_for(600)
    line = open_line(engine)
    first = world.matching.drawdown(line, 1_000_000, 12, "dd-down1")
    world.deliver_until(lambda: drawdown(engine, first["drawdown_id"]).status != "offered")
    row = drawdown(engine, first["drawdown_id"])
    assert (row.status, row.institution_code) == ("funded", "AUTO")
    assert offers(engine, row.id) == [("WEB", "failed"), ("AUTO", "accepted")]
    (d,) = deliveries(engine)
    assert (d.status, d.attempts, d.last_error) == ("withdrawn", 2, "HTTP 503") and world.sim.received == 2
    second = world.matching.drawdown(line, 1_000_000, 12, "dd-down2")  # routing skips WEB while its circuit is open
    assert second["status"] == "funded" and second["institution"] == "AUTO"
    assert second["reasons"]["WEB"] == ["unreachable: its circuit is open"]
    assert len(deliveries(engine)) == 1


def test_a_slow_institution_times_out_and_the_retry_is_taken(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    world = webhook_world(engine, served, webhook_timeout_seconds=0.2)
    world.sim.latency_ms = 600  # beyond the timeout
    line = open_line(engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-slow")
    world.deliver()
    (d,) = deliveries(engine)
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "no answer within 0.2 s")
    world.sim.latency_ms = 0
    world.deliver_until(lambda: drawdown(engine, waiting["drawdown_id"]).status == "funded")
    (d,) = deliveries(engine)
    assert (d.status, d.attempts) == ("delivered", 2) and drawdown(
        engine, waiting["drawdown_id"]
    ).institution_code == "WEB"
    assert loans(engine) == 1


def test_an_institution_answering_twice_has_one_effect(world: World) -> None:
    """It answers in the webhook's response and again through its key: the second finds the offer accepted."""
    line = open_line(world.engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-twice")
    offer = waiting["offers"][0]
    world.deliver()
    funded = drawdown(world.engine, waiting["drawdown_id"])
    again = world.matching.answer(webhook_principal("WEB"), offer, accept=True, reason="yes, again")
    assert (again["status"], again["loan_id"]) == ("funded", funded.loan_id) and loans(world.engine) == 1
    with pytest.raises(Conflict, match="already accepted"):
        world.matching.answer(webhook_principal("WEB"), offer, accept=False)


def test_an_answer_given_through_the_api_first_leaves_the_delivery_nothing_to_send(world: World) -> None:
    world.sim.answer = False  # it takes offers and answers later
    line = open_line(world.engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-later")
    world.deliver()
    assert deliveries(world.engine)[0].outcome == "taken; answer later"
    assert drawdown(world.engine, waiting["drawdown_id"]).status == "offered"
    world.matching.answer(webhook_principal("WEB"), waiting["offers"][0], accept=True)
    assert drawdown(world.engine, waiting["drawdown_id"]).status == "funded" and loans(world.engine) == 1
    second = world.matching.drawdown(line, 1_000_000, 12, "dd-later-2")  # answered before the relay comes round
    world.matching.answer(webhook_principal("WEB"), second["offers"][0], accept=False, reason="not this one")
    world.deliver()
    assert deliveries(world.engine)[1].status == "withdrawn" and world.sim.received == 1  # never sent
    assert deliveries(world.engine)[1].outcome == "the offer is already declined"


def test_a_delivery_out_of_attempts_is_a_dead_letter_an_operator_replays(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    world = webhook_world(engine, served, circuit_threshold=100)  # the circuit stays closed: attempts run out first
    world.sim.error_rate = 1.0
    line = open_line(engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-dead")
    world.deliver_until(lambda: deliveries(engine)[0].status == "dead")
    assert world.sim.received == FAST.attempts
    row = drawdown(engine, waiting["drawdown_id"])
    assert (row.status, row.institution_code) == ("funded", "AUTO")  # the offer was withdrawn when it died
    (letter,) = world.webhooks.dead_letters()
    assert (letter["attempts"], letter["last_error"], letter["event_type"]) == (FAST.attempts, "HTTP 503", "offer")
    world.sim.error_rate = 0.0
    assert world.webhooks.replay(letter["id"], time.time()) == letter["delivery_id"]
    assert world.webhooks.dead_letters() == []
    world.deliver()
    (d,) = deliveries(engine)  # replayed, it finds its offer closed and is not sent: nothing happens twice
    assert (d.status, d.outcome) == ("withdrawn", "the offer is already failed") and loans(engine) == 1


def test_loan_events_reach_a_subscribed_funder_and_no_one_else(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    world = webhook_world(engine, served, events=("offer", "loan.funded", "repayment.received"))
    line = open_line(engine)
    first = world.matching.drawdown(line, 1_000_000, 12, "dd-events")
    world.deliver()  # the offer, accepted in the response: WEB's loan
    loan = drawdown(engine, first["drawdown_id"]).loan_id
    servicing.prepay(loan, 10_000, idempotency_key="pp-1")
    world.sim.box = CreditBox(max_amount=500_000)
    second = world.matching.drawdown(line, 1_000_000, 12, "dd-events-2")
    world.deliver(3)  # WEB declines the second drawdown: AUTO funds it, and AUTO has no webhook
    assert drawdown(engine, second["drawdown_id"]).institution_code == "AUTO"
    events = [(d.institution_code, d.event_type, d.subject, d.status) for d in deliveries(engine)]
    assert events == [
        ("WEB", "offer", f"drawdown/{first['drawdown_id']}", "delivered"),
        ("WEB", "offer", f"drawdown/{second['drawdown_id']}", "delivered"),
        ("WEB", "loan.funded", f"loan/{loan}", "delivered"),
        ("WEB", "repayment.received", f"loan/{loan}", "delivered"),
    ]
    body = json.loads(deliveries(engine)[3].payload)
    assert (body["event"], body["loan_id"], body["amount"]) == ("repayment.received", loan, "100.00")  # 10,000 fen
    assert len(world.sim.taken) == 4


def test_each_loan_event_carries_its_money_in_major_units_with_the_currency(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    events = ("offer", "loan.funded", "repayment.received", "loan.overdue", "guarantee.payout")
    heavy = {"business_model": "capital-heavy", "guarantee_payout_dpd": 3, "priority": 1}
    world = webhook_world(engine, served, events=events, **heavy)
    line = open_line(engine)
    funded = world.matching.drawdown(line, 1_000_000, 12, "dd-money", ranking="priority")
    world.deliver()  # the offer, accepted in the response: WEB funds 10,000.00 CNY on 15 January
    loan = drawdown(engine, funded["drawdown_id"]).loan_id
    servicing.prepay(loan, 12_345, idempotency_key="pp-money")  # 123.45 CNY
    run_until(engine, date(2026, 2, 17))  # the 15 February instalment goes unpaid: overdue
    run_until(engine, date(2026, 2, 20))  # 3 days past due: the guarantee pays WEB out, the loan is the platform's
    # The relay was behind: every event is published after the payout, and each still goes to WEB, the loan's
    # funder when it happened (one at a time: a loan's events go out in order).
    world.deliver_until(lambda: [d.status for d in deliveries(engine)] == ["delivered"] * 5)
    sent = [d for d in deliveries(engine) if d.event_type != "offer"]
    assert [(d.event_type, d.status) for d in sent] == [
        ("loan.funded", "delivered"),
        ("repayment.received", "delivered"),
        ("loan.overdue", "delivered"),
        ("guarantee.payout", "delivered"),
    ]
    assert world.sim.events == {"offer": 1, "loan.funded": 1, "repayment.received": 1, "loan.overdue": 1,
                                "guarantee.payout": 1}  # fmt: skip
    funded_body, repaid, overdue, payout = (json.loads(d.payload) for d in sent)
    for body in (funded_body, repaid, overdue, payout):
        assert (body["version"], body["currency"], body["loan_id"]) == (2, "CNY", loan)
    assert (funded_body["principal"], funded_body["funder"]) == ("10000.00", "WEB")  # 1,000,000 minor units
    assert (repaid["amount"], repaid["business_date"]) == ("123.45", "2026-01-15")
    assert (overdue["from"], overdue["to"], overdue["business_date"]) == ("C", "M1", "2026-02-16")
    outbox = servicing_tables.outbox
    with engine.connect() as conn:
        stored = conn.execute(select(outbox.c.payload).where(outbox.c.event_type == "loan.guarantee_payout"))
        (minor,) = [json.loads(p)["amount"] for p in stored.scalars()]
    # The outbox keeps minor units: the 987,655 of principal left after the prepayment (1,000,000 - 12,345) and the
    # interest billed on 15 February, 996,832 in all; the body gives them as 9968.32 CNY.
    assert minor == 996_832
    assert (payout["institution"], payout["amount"], payout["business_date"]) == ("WEB", "9968.32", "2026-02-18")


def test_the_service_runs_a_relay_in_each_worker_and_stops_it_cleanly(world: World) -> None:
    line = open_line(world.engine)
    waiting = world.matching.drawdown(line, 1_000_000, 12, "dd-served")
    with TestClient(make_app(world.engine, relay=True, offer_sweep_seconds=0)):  # the lifespan starts the relay
        deadline = time.monotonic() + 20
        while drawdown(world.engine, waiting["drawdown_id"]).status == "offered" and time.monotonic() < deadline:
            time.sleep(0.05)
    row = drawdown(world.engine, waiting["drawdown_id"])
    assert (row.status, row.institution_code) == ("funded", "WEB")
    assert deliveries(world.engine)[0].lease_until is None  # nothing left leased at shutdown


def test_a_statement_ready_reaches_its_subscribed_institution_once(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    world = webhook_world(engine, served, events=("offer", "statement.ready"))
    line = open_line(engine)
    funded = world.matching.drawdown(line, 1_000_000, 12, "dd-statement")
    world.deliver()  # the offer, accepted in the response: WEB disburses on 15 January
    world.sim.box = CreditBox(max_amount=500_000)
    other = world.matching.drawdown(line, 1_000_000, 12, "dd-statement-2")
    world.deliver(3)  # WEB declines this one: AUTO, which has no webhook, funds it the same day
    assert drawdown(engine, other["drawdown_id"]).institution_code == "AUTO"
    currency = servicing.loan(drawdown(engine, funded["drawdown_id"]).loan_id).terms.currency
    run_until(engine, date(2026, 2, 1))  # closes 15..31 January: only the 15th has anything on it
    world.deliver(3)
    world.deliver()  # a later pass sends nothing again
    ready = [d for d in deliveries(engine) if d.event_type == "statement.ready"]
    assert [(d.subject, d.status, d.attempts) for d in ready] == [("statements/WEB", "delivered", 1)] * 2
    bodies = [json.loads(d.payload) for d in ready]
    assert [(b["statement_id"], b["period"], b["from"], b["to"], b["business_date"]) for b in bodies] == [
        (f"{currency}-2026-01-15", "day", "2026-01-15", "2026-01-15", "2026-01-16"),
        (f"{currency}-2026-01", "month", "2026-01-01", "2026-01-31", "2026-02-01"),
    ]
    assert all(b["institution"] == "WEB" and "loan_id" not in b for b in bodies)
    assert world.sim.events["statement.ready"] == 2  # one day, one month, each once
    outbox = servicing_tables.outbox
    with engine.connect() as conn:
        query = select(outbox.c.payload).where(outbox.c.event_type == settlement.READY_EVENT).order_by(outbox.c.id)
        announced = [json.loads(p) for p in conn.execute(query).scalars()]
    assert [(a["institution"], a["period"]) for a in announced] == [  # AUTO's too, though no one hears of them
        ("AUTO", "day"),
        ("WEB", "day"),
        ("AUTO", "month"),
        ("WEB", "month"),
    ]
