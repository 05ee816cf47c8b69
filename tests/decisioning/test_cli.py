import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openice.cli import app
from openice.decisioning.pii import ENV_KEY
from openice.matching.repository import InstitutionRepository
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import START
from tests.decisioning.helpers import application_body, person


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine, START)
    for product in demo_products():
        Servicing(EngineUnits(engine)).create_product(product)
    engine.dispose()
    monkeypatch.setenv("OPENICE_DB", url)
    monkeypatch.setenv(ENV_KEY, CliRunner().invoke(app, ["decision", "keygen"]).output.strip())
    return tmp_path


def test_register_blacklist_and_institutions_from_files(env: Path) -> None:
    runner = CliRunner()
    reg = person(1)
    reg["date_of_birth"] = reg["date_of_birth"].isoformat()
    (env / "reg.json").write_text(json.dumps(reg))
    out = runner.invoke(app, ["decision", "register", str(env / "reg.json")])
    assert out.exit_code == 0 and '"existing": false' in out.output
    borrower = json.loads(out.output)["borrower_id"]
    listed = runner.invoke(app, ["decision", "blacklist", "mobile", reg["mobile"], "--reason", "fraud ring"])
    assert listed.exit_code == 0
    bad = runner.invoke(app, ["decision", "blacklist", "email", "x", "--reason", "no"])
    assert bad.exit_code == 2 and "kind" in bad.output
    (env / "inst.yaml").write_text(
        "- {code: B1, name: Bank, business_model: capital-light, funding_cost: '0.03',\n"
        "   rate: '0.07', currency: CNY, daily_quota: '10000.00', monthly_quota: '90000'}\n"
    )
    out = runner.invoke(app, ["match", "institutions", str(env / "inst.yaml")])
    assert out.exit_code == 0 and "B1" in out.output
    with make_engine(os.environ["OPENICE_DB"], create=False).connect() as conn:
        stored = InstitutionRepository(conn).get("B1")
    assert (stored.daily_quota, stored.monthly_quota) == (1_000_000, 9_000_000)  # 10,000.00 and 90,000 CNY in fen
    (env / "app.json").write_text(json.dumps(application_body()))
    missing = runner.invoke(app, ["decision", "apply", borrower, str(env / "app.json")])
    assert missing.exit_code == 2 and "no model package loaded" in missing.output
