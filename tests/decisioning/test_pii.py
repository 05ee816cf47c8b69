from datetime import date
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, delete, select
from typer.testing import CliRunner

from openice.cli import app
from openice.decisioning.pii import ENV_KEY, PiiVault, new_key, parse_key
from openice.decisioning.repository import bind_pii_key
from openice.errors import Unavailable, ValidationError
from openice.storage import decisioning_tables
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import StubScorer, anomaly_model, make_decisioning, person


def test_encryption_round_trips_and_never_repeats() -> None:
    vault = PiiVault(bytes(32))
    a, b = vault.encrypt("national_id", "11010519491231002X"), vault.encrypt("national_id", "11010519491231002X")
    assert a != b and "11010519491231002X" not in a
    assert vault.decrypt("national_id", a) == "11010519491231002X"


def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    vault = PiiVault(bytes(32))
    with pytest.raises(InvalidTag):
        vault.decrypt("mobile", vault.encrypt("national_id", "x"))


def test_keyed_hashes_match_equal_values_under_one_key_only() -> None:
    one, other = PiiVault(bytes(32)), PiiVault(bytes(range(32)))
    assert one.keyed_hash("mobile", "13812345678") == one.keyed_hash("mobile", "13812345678")
    assert one.keyed_hash("mobile", "13812345678") != other.keyed_hash("mobile", "13812345678")
    assert one.keyed_hash("mobile", "1") != one.keyed_hash("device", "1")


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    with pytest.raises(Unavailable, match="not set"):
        PiiVault.from_env()
    monkeypatch.setenv(ENV_KEY, new_key())
    assert PiiVault.from_env().keyed_hash("a", "b")
    assert len(parse_key("00" * 32)) == 32
    with pytest.raises(ValidationError):
        parse_key("short")


def test_the_database_keeps_the_key_check_and_refuses_a_missing_or_wrong_key(engine: Engine) -> None:
    """The first key used is fingerprinted in the database; a missing or different key is refused from then on, and
    a database written before the fingerprint proves the key on a stored row."""
    right, wrong = PiiVault(bytes(range(32))), PiiVault(bytes(32))
    bind_pii_key(engine, None)  # no personal data yet: a service without a key may start
    make_decisioning(engine).register(person(1))
    with pytest.raises(Unavailable, match="holds personal data"):
        bind_pii_key(engine, None)
    with engine.begin() as conn:  # as a database from before the check: no fingerprint, data present
        conn.execute(delete(decisioning_tables.pii_key_check))
    with pytest.raises(ValidationError, match="not the key") as err:
        bind_pii_key(engine, wrong)
    assert err.value.field == ENV_KEY
    bind_pii_key(engine, right)  # proved on a row, fingerprinted
    with engine.connect() as conn:
        assert conn.execute(select(decisioning_tables.pii_key_check.c.check_value)).scalar_one() == right.check_value()
    bind_pii_key(engine, right)
    with pytest.raises(ValidationError, match="not the key"):
        bind_pii_key(engine, wrong)


def test_serve_refuses_to_start_with_a_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'served.db'}"
    engine = make_engine(db)
    migrate(engine, date(2026, 1, 15))
    bind_pii_key(engine, PiiVault(bytes(range(32))))
    monkeypatch.setenv(ENV_KEY, new_key())
    out = CliRunner().invoke(app, ["serve", "--db", db, "--port", "1"])
    assert out.exit_code == 2 and f"{ENV_KEY}: is not the key" in out.output
    monkeypatch.delenv(ENV_KEY)
    out = CliRunner().invoke(app, ["serve", "--db", db, "--port", "1"])
    assert out.exit_code == 2 and f"{ENV_KEY}: is not set" in out.output


def test_a_request_needing_the_key_without_one_is_503(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from openice.access.keys import ApiKeys
    from openice.api.app import create_app
    from openice.api.settings import Settings

    monkeypatch.delenv(ENV_KEY, raising=False)
    client = TestClient(create_app(Settings(), engine=engine, scorer=StubScorer(), anomaly=anomaly_model()))
    secret = ApiKeys(EngineUnits(engine)).create("operator", "platform")["secret"]
    reg = person(1)
    reg["date_of_birth"] = reg["date_of_birth"].isoformat()
    refused = client.post(
        "/v1/borrowers", json=reg, headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "r1"}
    )
    assert refused.status_code == 503 and refused.json()["field"] == ENV_KEY, refused.text
