"""`openice collections ...` on an embedded database with two overdue loans."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openice.cli import app
from openice.close_of_day import run_until
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import START


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine, START)
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    for i, funder in enumerate(("bank-a", "bank-b")):
        servicing.originate(
            product_code="BNPL-BULLET",
            principal=100_000 * (i + 1),
            tenor=1,
            funder=funder,
            business_model="capital-light",
            idempotency_key=f"loan-{i}",
        )
    run_until(engine, date(2026, 2, 17))
    engine.dispose()
    monkeypatch.setenv("OPENICE_DB", url)
    return url


def test_summary_queue_assign_and_a_promise(db: str) -> None:
    runner = CliRunner()
    summary = runner.invoke(app, ["collections", "summary"])
    # 1,000.00 at 10% ACT/365 for 31 days is 8.49 interest, plus two days' late fees of 0.05%: 1,009.49;
    # the 2,000.00 loan owes 2,000.00 + 16.99 + 2.00 = 2,018.99
    assert summary.exit_code == 0 and "M1" in summary.output and "3,028.48 CNY" in summary.output
    queue = runner.invoke(app, ["collections", "queue", "--funder", "bank-b"])
    assert queue.exit_code == 0 and "2,018.99 CNY" in queue.output and "1,009.49" not in queue.output
    assigned = runner.invoke(app, ["collections", "assign", "ann", "bob"])
    assert assigned.exit_code == 0 and "ann" in assigned.output and "bob" in assigned.output
    made = runner.invoke(
        app,
        [
            "collections",
            "contact",
            "1",
            "--channel",
            "call",
            "--outcome",
            "promise",
            "--agent",
            "ann",
            "--promise-amount",
            "500.00",
            "--promise-date",
            "2026-02-20",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["promise"] == {"amount": "500.00", "by": "2026-02-20", "made_on": "2026-02-17"}
    shown = runner.invoke(app, ["collections", "case", "1"]).output
    assert "promised 500.00 CNY by 2026-02-20" in shown and "50000" not in shown
    case = json.loads(runner.invoke(app, ["collections", "case", "1", "--json"]).output)
    assert [a["kind"] for a in case["actions"]] == ["opened", "assigned", "contact"]
    report = runner.invoke(app, ["collections", "performance", "--from", "2026-02-01", "--to", "2026-02-28"])
    assert report.exit_code == 0 and "ann" in report.output and "repaid 0" in report.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "contact",
                "1",
                "--channel",
                "call",
                "--outcome",
                "promise",
                "--agent",
                "ann",
                "--promise-amount",
                "5.001",
                "--promise-date",
                "2026-02-20",
            ],
            "--promise-amount: 5.001 has more decimals",
        ),
        (
            [
                "contact",
                "1",
                "--channel",
                "call",
                "--outcome",
                "promise",
                "--agent",
                "ann",
                "--promise-amount",
                "5",
                "--promise-date",
                "20/02/2026",
            ],
            "--promise-date: '20/02/2026' is not a date",
        ),
        (["queue", "--stage", "M9"], "--stage: must be one of"),
        (["performance", "--from", "2026-03-01", "--to", "2026-02-01"], "--to: 2026-02-01 is before 2026-03-01"),
        (["case", "99"], "no collection case 99"),
        (["case", "1", "--funder", "bank-b"], "no collection case 1"),
    ],
)
def test_bad_input_exits_2_naming_the_field(db: str, args: list[str], message: str) -> None:
    out = CliRunner().invoke(app, ["collections", *args])
    assert out.exit_code == 2 and message in out.output
