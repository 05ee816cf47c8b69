"""Rotating the PII key: every borrower re-encrypted under the new key, resumable after a crash at any point,
keyed hashes unchanged so duplicates still match."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from openice.decisioning.pii import ENV_KEY, HASH_ENV_KEY, NEW_ENV_KEY, PiiVault
from openice.decisioning.repository import ENCRYPTED, bind_pii_key, rotate_pii_key
from openice.errors import Unavailable, ValidationError
from openice.matching.deliveries import SecretRepository
from openice.storage import decisioning_tables
from openice.storage.engine import make_engine, migrate
from tests.decisioning.helpers import VAULT, make_decisioning, person

NEW_KEY = bytes(range(100, 132))


class Crash(Exception):
    pass


def plaintexts(engine: Engine, vault: PiiVault) -> dict[str, tuple[str, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(decisioning_tables.borrowers)).all()
    return {r.id: tuple(vault.decrypt(c, getattr(r, f"{c}_enc")) for c in ENCRYPTED) for r in rows}


def test_a_rotation_resumes_after_a_crash_and_duplicates_still_match(engine: Engine) -> None:
    decisioning = make_decisioning(engine)
    ids = [decisioning.register(person(k))["borrower_id"] for k in range(1, 6)]
    bind_pii_key(engine, VAULT)
    before = plaintexts(engine, VAULT)
    with engine.begin() as conn:  # a webhook signing secret, encrypted under the same key, rotated with an overlap
        secrets = SecretRepository(conn, lambda: VAULT)
        signing = [secrets.rotate("BANK-A", 0, 0.0), secrets.rotate("BANK-A", 3600, 0.0)][::-1]
    new = VAULT.rekeyed(NEW_KEY)
    batches: list[int] = []

    def crash_after_first(done: int, total: int) -> None:
        batches.append(done)
        raise Crash  # after the first batch committed: a process dying there

    with pytest.raises(Crash):
        rotate_pii_key(engine, VAULT, new, batch=2, on_batch=crash_after_first)
    assert batches == [2]
    with pytest.raises(Unavailable, match="rotation is under way"):
        bind_pii_key(engine, VAULT)  # nothing serves a half-rotated database
    assert rotate_pii_key(engine, VAULT, new, batch=2) == 3  # resumed: the other three
    assert plaintexts(engine, new) == before
    with engine.begin() as conn:
        assert SecretRepository(conn, lambda: new).in_use("BANK-A", 1.0) == signing  # both, under the new key
    bind_pii_key(engine, new)
    with pytest.raises(ValidationError, match="not the key"):
        bind_pii_key(engine, VAULT)
    with pytest.raises(ValidationError) as err:  # a new key without the kept hashing key: refused, not served
        bind_pii_key(engine, PiiVault(NEW_KEY))
    assert err.value.field == HASH_ENV_KEY
    again = make_decisioning(engine)
    again.vault = new
    assert again.register(person(1))["borrower_id"] == ids[0]  # the same person is found by the same hashes


def test_a_rotation_killed_again_and_again_finishes_with_every_row_intact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pii.db'}"
    engine = make_engine(url)
    migrate(engine, date(2026, 1, 15))
    legacy = 300  # rows written before key ids: "v1:" tokens of the first key
    rows = []
    for k in range(3000):
        values = {f"{c}_enc": VAULT.encrypt(c, f"{c}-{k}") for c in ENCRYPTED}
        if k < legacy:
            values = {name: "v1:" + token.split(":", 2)[2] for name, token in values.items()}
        rows.append(
            dict(
                id=f"B{k:05d}",
                registered_day=20_468,
                registered_at=0,
                birth_year=1990,
                province="p",
                city="c",
                name_hash="n",
                national_id_hash=f"i{k}",
                mobile_hash=f"m{k}",
                device_hash="d",
                **values,
            )
        )
    with engine.begin() as conn:
        conn.execute(insert(decisioning_tables.borrowers), rows)
    bind_pii_key(engine, VAULT)
    env = {**os.environ, ENV_KEY: bytes(range(32)).hex(), NEW_ENV_KEY: NEW_KEY.hex()}  # VAULT's key, the new one
    env.pop(HASH_ENV_KEY, None)
    new = VAULT.rekeyed(NEW_KEY)
    command = [sys.executable, "-m", "openice", "pii", "rotate", "--db", url, "--batch-size", "10"]
    partial, kills, delay = 0, 0, 0.5
    for _ in range(80):  # bounded: kill it later each time until a run finishes by itself
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=delay)
            break
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            kills += 1
        with engine.connect() as conn:
            done = conn.execute(
                select(func.count())
                .select_from(decisioning_tables.borrowers)
                .where(decisioning_tables.borrowers.c.name_enc.startswith(f"v2:{new.key_id}:"))
            ).scalar_one()
        partial += 0 < done < len(rows)
        delay += 0.1
        time.sleep(0.05)
    else:
        pytest.fail("the rotation never finished")
    assert proc.returncode == 0 and partial >= 1, (kills, partial, err.decode()[-500:])  # a kill landed halfway
    assert out.decode().strip() == VAULT.hash_key_text()  # the hashing key to keep is printed
    assert plaintexts(engine, new) == {r["id"]: tuple(f"{c}-{k}" for c in ENCRYPTED) for k, r in enumerate(rows)}
    bind_pii_key(engine, new)
