"""`openice write-off`, `recover` and a backdated `repay` on an embedded database: the service's money rules, one line
naming the field on a refusal, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openice.cli import app
from openice.close_of_day import run_until
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import START


def test_write_off_recover_and_backdate_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(db)
    migrate(engine, START)
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    current, late = (
        servicing.originate(
            product_code="CASH-EI",
            principal=500_000,
            tenor=12,
            funder="bank-a",
            business_model="capital-light",
            idempotency_key=f"o{n}",
        )["loan_id"]
        for n in (1, 2)
    )
    run_until(engine, START.replace(month=2, day=20))  # the 2026-02-15 installments are 5 days past due
    servicing.repay(current, servicing.loan(current).total_due(), "pay-current")
    engine.dispose()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        out = runner.invoke(app, [*args, "--db", db])
        return out.exit_code, out.output

    code, text = run("write-off", str(current), "--key", "w1")
    assert code == 2 and "reason:" in text and "not past due" in text
    assert run("write-off", str(current), "--key", "w2", "--reason", "deceased")[0] == 0
    code, text = run("recover", str(current), "5000.01", "--key", "r1")
    assert code == 2 and "amount:" in text and "still written off" in text
    code, text = run("recover", str(current), "100.00", "--key", "r2", "--json")
    assert code == 0 and json.loads(text)["status"] == "written_off"
    code, text = run("repay", str(late), "10.00", "--key", "b1", "--value-date", "2026-02-15")
    assert code == 2 and "reason:" in text
    code, text = run("repay", str(late), "10.00", "--key", "b2", "--value-date", "2026-13-01", "--reason", "x")
    assert code == 2 and "--value-date:" in text
    code, text = run(
        "repay", str(late), "10.00", "--key", "b3", "--value-date", "2026-02-15", "--reason", "statement", "--json"
    )
    assert code == 0 and json.loads(text)["value_date"] == "2026-02-15"
    assert Servicing(EngineUnits(make_engine(db))).loan(current).recovered == 10_000
