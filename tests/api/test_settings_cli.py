"""Settings come from defaults < TOML < environment < flags; the CLI bootstraps the first operator key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openice.access.keys import ApiKeys
from openice.api.settings import Settings
from openice.cli import app
from openice.errors import ValidationError
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits


def test_toml_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "openice.toml"
    config.write_text("[api]\nport = 9000\nworkers = 3\nrate_limit_per_second = 5.5\n")
    monkeypatch.setenv("OPENICE_WORKERS", "4")
    settings = Settings.load(config, host="0.0.0.0")
    assert (settings.port, settings.workers, settings.rate_limit_per_second, settings.host) == (9000, 4, 5.5, "0.0.0.0")
    config.write_text("[api]\nprot = 1\n")
    with pytest.raises(ValidationError) as error:
        Settings.load(config)
    assert error.value.field == "config"


def test_telemetry_is_off_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from openice.api.app import create_app

    assert Settings.load().telemetry is False
    engine = make_engine("sqlite://")
    assert create_app(Settings.load(), engine=engine)._telemetry["tracing"] is False
    monkeypatch.setenv("OPENICE_TELEMETRY", "on")
    assert Settings.load().telemetry is True
    assert create_app(Settings.load(), engine=engine)._telemetry["tracing"] is True
    monkeypatch.setenv("OPENICE_TELEMETRY", "maybe")
    with pytest.raises(ValidationError) as error:
        Settings.load()
    assert error.value.field == "telemetry" and "true or false" in str(error.value)


def test_api_key_create_prints_the_secret_once_and_stores_its_hash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    result = CliRunner().invoke(app, ["api-key", "create", "--role", "operator", "--db", url])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    engine = make_engine(url)
    principal = ApiKeys(EngineUnits(engine)).authenticate(secret)
    assert principal is not None and principal.role == "operator" and principal.tenant == "platform"
    with engine.connect() as conn:
        assert secret not in str(list(conn.exec_driver_sql("SELECT * FROM api_keys")))
    bad = CliRunner().invoke(app, ["api-key", "create", "--role", "borrower", "--tenant", "nobody", "--db", url])
    assert bad.exit_code == 2 and "tenant" in bad.output
