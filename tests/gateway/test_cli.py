"""`openice gateway ...` and `openice institution-sim` as a user runs them: secrets shown once, dead letters listed
and replayed once, and bad input refused in one line."""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import Engine, select

from openice.matching.deliveries import DeliveryRepository
from openice.matching.service import Matching
from openice.servicing.service import Servicing
from openice.storage import gateway_tables
from openice.storage.engine import alembic_config, schema_behind
from openice.storage.uow import EngineUnits
from tests.cli import one_line_error, openice
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import institution

KEY = bytes(range(32)).hex()  # VAULT's key, as the environment gives it


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_secrets_and_dead_letters_from_the_command_line(engine: Engine, servicing: Servicing) -> None:
    db = str(engine.url)
    Matching(EngineUnits(engine), VAULT).register_institutions([institution("WEB")])
    assert (
        one_line_error(openice("gateway", "secret", "NOPE", "--db", db)) == "error: institution: no institution 'NOPE'"
    )
    unkeyed = one_line_error(openice("gateway", "secret", "WEB", "--db", db))
    assert unkeyed.startswith("error: OPENICE_PII_KEY: is not set")  # the secret is stored encrypted under it
    made = openice("gateway", "secret", "WEB", "--db", db, "--overlap-hours", "1", OPENICE_PII_KEY=KEY)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert len(secret) == 64 and int(secret, 16) >= 0
    with engine.connect() as conn:
        (stored,) = conn.execute(select(gateway_tables.institution_secrets.c.current)).scalars()
    assert secret not in stored and VAULT.decrypt(gateway_tables.secret_context("WEB"), stored) == secret
    with engine.begin() as conn:
        deliveries = DeliveryRepository(conn)
        letter = deliveries.dead(deliveries.enqueue("WEB", "loan.funded", "loan/1", "event-1", {}, 0.0), 8, "HTTP 503")
    listed = json.loads(openice("gateway", "dead-letters", "--json", "--db", db).stdout)  # no key needed
    assert [(d["id"], d["institution_code"], d["last_error"]) for d in listed] == [(letter, "WEB", "HTTP 503")]
    replayed = openice("gateway", "replay", str(letter), "--db", db)
    assert replayed.returncode == 0 and f"dead letter {letter}" in replayed.stdout, replayed.stderr
    assert "already replayed" in one_line_error(openice("gateway", "replay", str(letter), "--db", db))


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_listing_dead_letters_reads_an_old_schema_without_migrating_it(engine: Engine) -> None:
    db = str(engine.url)
    command.downgrade(alembic_config(engine), "-1")
    old = schema_behind(engine)
    assert old is not None
    refused = one_line_error(openice("gateway", "dead-letters", "--db", db))
    assert (
        refused
        == f"error: --db: {db} has schema {old}, not this openice's; upgrade it with `openice db init --db {db}` first"
    )
    assert schema_behind(engine) == old  # a read leaves the schema as it was
    command.upgrade(alembic_config(engine), "head")
    listed = openice("gateway", "dead-letters", "--db", db)
    assert (listed.returncode, listed.stdout) == (0, "")


def test_the_simulator_wants_its_secret() -> None:
    refused = one_line_error(openice("institution-sim", "--port", "9"))
    assert refused.startswith("error: --secret: give the institution's signing secret")
