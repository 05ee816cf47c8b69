"""`openice relay` killed with SIGKILL in the middle of a batch, on SQLite and PostgreSQL: the next relay sends
what was in flight again under the same idempotency keys, and every offer is answered, and funded, exactly once."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from openice.servicing.service import Servicing
from openice.storage import api_tables
from tests.decisioning.helpers import VAULT
from tests.gateway.conftest import Served, deliveries, drawdown, loans, webhook_world
from tests.matching.test_routing import open_line

ROOT = Path(__file__).resolve().parents[2]
DRAWDOWNS = 12


def database_url(engine: Engine) -> str:
    """The engine's database for another process; on PostgreSQL, with the test's own schema on its search path."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def start_relay(engine: Engine) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENICE_PII_KEY": base64.b64encode(bytes(range(32))).decode(),
    }
    command = [sys.executable, "-m", "openice", "relay", "--db", database_url(engine), "--concurrency", "3"]
    return subprocess.Popen([*command, "--lease-seconds", "2"], env=env, cwd=ROOT, stderr=subprocess.PIPE)


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_relay_killed_mid_batch_loses_and_doubles_nothing(
    engine: Engine, servicing: Servicing, served: Served
) -> None:
    assert VAULT.key_id  # the relay's key is the tests' vault key
    world = webhook_world(engine, served)
    world.sim.latency_ms = 400
    line = open_line(engine)
    drawn = [world.matching.drawdown(line, 200_000, 12, f"dd-crash-{k}")["drawdown_id"] for k in range(DRAWDOWNS)]
    assert all(drawdown(engine, d).status == "offered" for d in drawn)
    first = start_relay(engine)
    try:
        wait_for(lambda: world.sim.received >= 4, 60, "the first relay to get going")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert sum(d.status == "delivered" for d in deliveries(engine)) < DRAWDOWNS  # it died with work left
    second = start_relay(engine)
    try:
        wait_for(lambda: all(d.status == "delivered" for d in deliveries(engine)), 90, "every delivery")
    finally:
        second.send_signal(signal.SIGTERM)  # a clean shutdown
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()
    assert b"openice relay stopped" in err
    assert all(drawdown(engine, d).status == "funded" and drawdown(engine, d).institution_code == "WEB" for d in drawn)
    assert loans(engine) == DRAWDOWNS
    assert len(world.sim.taken) == DRAWDOWNS and world.sim.refused == 0  # every delivery taken, each once by its key
    assert world.sim.received > DRAWDOWNS  # what was in flight at the kill was sent again
    with engine.connect() as conn:
        accepted = conn.execute(
            select(func.count())
            .select_from(api_tables.audit_log)
            .where(api_tables.audit_log.c.action == "offer.accepted")
        ).scalar_one()
    assert accepted == DRAWDOWNS
