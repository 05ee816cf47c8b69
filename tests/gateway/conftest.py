"""A simulated institution served by uvicorn on the loopback, and a world of one webhook institution (best margin)
with an automatic one behind it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, func, select

from openice.matching.gateway import Webhooks
from openice.matching.institutions import CreditBox
from openice.matching.service import Matching
from openice.matching.webhooks import Backoff
from openice.relay import Relay
from openice.servicing.service import Servicing
from openice.simulation.institution import SimulatedInstitution
from openice.storage import decisioning_tables, gateway_tables, servicing_tables
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import institution

FAST = Backoff(base=0.01, cap=0.05, attempts=4)  # retries within a test's patience


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    sim: SimulatedInstitution
    url: str
    server: uvicorn.Server


@pytest.fixture
def served() -> Iterator[Served]:
    """The simulator on 127.0.0.1 in a thread of its own (its secret is set once the platform makes one)."""
    sim = SimulatedInstitution(secret="unset")
    port = free_port()
    config = uvicorn.Config(sim.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield Served(sim, f"http://127.0.0.1:{port}/webhook", server)
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class World:
    engine: Engine
    matching: Matching
    webhooks: Webhooks
    relay: Relay
    sim: SimulatedInstitution
    url: str

    def deliver(self, rounds: int = 1) -> None:
        """`rounds` passes of the relay over what is due."""
        for _ in range(rounds):
            asyncio.run(self.relay.once())

    def deliver_until(self, done: Any, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "the relay did not get there in time"
            asyncio.run(self.relay.once())
            time.sleep(0.01)


def webhook_world(engine: Engine, served: Served, **web: Any) -> World:
    """WEB answers by webhook at the best margin; AUTO funds automatically after it."""
    box = CreditBox(max_pd=0.2)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(
        [
            institution(
                "WEB",
                **{
                    "credit_box": box,
                    "rate": "0.05",
                    "acceptance": "webhook",
                    "webhook_url": served.url,
                    "webhook_timeout_seconds": 2.0,
                    **web,
                },
            ),
            institution("AUTO", credit_box=box, rate="0.08"),
        ]
    )
    webhooks = Webhooks(EngineUnits(engine), lambda: VAULT)
    served.sim.secret = webhooks.rotate_secret("WEB", 0, time.time())
    relay = Relay(engine, VAULT, concurrency=8, backoff=FAST, lease_seconds=5.0)
    return World(engine, matching, webhooks, relay, served.sim, served.url)


@pytest.fixture
def world(engine: Engine, servicing: Servicing, served: Served) -> World:
    return webhook_world(engine, served)


def drawdown(engine: Engine, drawdown_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(decisioning_tables.drawdowns).where(decisioning_tables.drawdowns.c.id == drawdown_id)
        ).one()


def offers(engine: Engine, drawdown_id: int) -> list[tuple[str, str]]:
    t = decisioning_tables.offers
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.institution_code, t.c.status).where(t.c.drawdown_id == drawdown_id).order_by(t.c.id)
        )
        return [tuple(r) for r in rows]


def deliveries(engine: Engine) -> list[Any]:
    t = gateway_tables.deliveries
    with engine.connect() as conn:
        return list(conn.execute(select(t).order_by(t.c.id)))


def loans(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(servicing_tables.loans)).scalar_one())
