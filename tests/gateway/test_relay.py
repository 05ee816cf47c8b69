"""Webhook institutions end to end on SQLite and PostgreSQL: the offer is queued with the drawdown, the relay POSTs
it signed to a real simulated institution on the loopback, and the answer in its response funds or passes on."""

from __future__ import annotations

from sqlalchemy import Engine, select

from openice.matching.institutions import CreditBox
from openice.servicing.service import Servicing
from openice.storage import api_tables
from tests.gateway.conftest import Served, World, deliveries, drawdown, loans, offers, webhook_world
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
