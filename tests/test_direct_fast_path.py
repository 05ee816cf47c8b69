"""On PostgreSQL every prebuilt statement the repositories hand to `direct.execute` runs on the driver's cursor.

`direct.execute` falls back to `Connection.execute` without a word when it cannot plan a statement, which is right
for one-off statements and wrong for the per-request ones it exists for: a SQLAlchemy upgrade that changed what
`_plan` reads from a compiled statement would make every request slower and every test still pass. This test runs
the paths that use them (through the API and the services) and fails on any fallback, and on any prebuilt statement
in the code that the run did not reach, so a new one gets checked too.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

import openice
from openice.matching.service import Matching
from openice.servicing.products import PrepaymentMode, demo_products
from openice.servicing.service import Servicing
from openice.storage import direct
from openice.storage.engine import migrate
from openice.storage.uow import EngineUnits
from tests.api.conftest import build_world
from tests.conftest import START, pg_schema_engine
from tests.decisioning.helpers import VAULT

PACKAGE = Path(openice.__file__).parent


def prebuilt_statements() -> dict[int, str]:
    """The module-level statements the code hands to `direct.execute` (one per dialect where it keeps a dict of
    them: PostgreSQL's), by identity, with where they live."""
    found: dict[int, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "execute"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "direct"
            and len(node.args) >= 2
        ]
        if not calls:
            continue
        module = importlib.import_module(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for call in calls:
            argument = call.args[1]
            by_dialect = isinstance(argument, ast.Subscript)
            name = argument.value if by_dialect else argument
            if not isinstance(name, ast.Name) or not hasattr(module, name.id):
                continue  # built per call (a tenant's query): the run below still checks it
            statement = getattr(module, name.id)
            if by_dialect:
                statement = statement["postgresql"]
            found[id(statement)] = f"{module.__name__}.{name.id}"
    return found


@pytest.fixture
def pg_engine(pg_ok: bool) -> Iterator[Engine]:
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
    for engine in pg_schema_engine():
        migrate(engine, START)
        yield engine


def test_every_prebuilt_statement_takes_the_fast_path_on_postgresql(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[Any, bool]] = []  # (statement, ran on the driver's cursor) for each call inside a transaction
    execute = direct.execute

    def watched(conn: Any, statement: Any, params: Any = None) -> Any:
        result = execute(conn, statement, params)
        if conn.in_transaction():  # outside one, SQLAlchemy begins it: `direct` leaves those to it on purpose
            runs.append((statement, isinstance(result, direct.DirectResult)))
        return result

    monkeypatch.setattr(direct, "execute", watched)
    units = EngineUnits(pg_engine)
    servicing = Servicing(units)
    for product in demo_products():
        servicing.create_product(product)
    world = build_world(pg_engine)  # keys, institutions, registrations, decisions, drawdowns, offers, loans
    ids = world.ids[1]
    world.first_due()
    for who, url in (
        ("borrower1", f"/v1/loans/{ids['loan']}"),
        ("borrower1", f"/v1/credit-lines/{ids['line']}"),
        ("borrower1", f"/v1/decisions/{ids['decision']}"),
        ("INST-A", f"/v1/offers/{ids['offer']}"),
    ):
        assert world.call(who, "GET", url).status_code == 200, url
    drawn = world.call("borrower1", "GET", f"/v1/drawdowns/{ids['drawdown']}").json()
    replayed = world.call(  # the same key again: the stored drawdown is read back, nothing is routed
        "borrower1",
        "POST",
        f"/v1/credit-lines/{ids['line']}/drawdowns",
        key="dd-1",
        json={"amount": drawn["amount"]["amount"], "currency": "CNY", "tenor": 12},
    )
    assert replayed.status_code == 201 and replayed.json()["id"] == ids["drawdown"], replayed.text
    paid = world.call(
        "borrower1",
        "POST",
        f"/v1/loans/{ids['loan']}/repayments",
        key="p1",
        json={"amount": "10.00", "currency": "CNY"},
    )
    assert paid.status_code == 201, paid.text
    servicing.prepay(ids["loan"], 300_000, "pp-1", PrepaymentMode.SHORTEN)  # drops installments
    assert len(servicing.loan(ids["loan"]).installments) < 12
    servicing.reverse(paid.json()["transaction_id"], "rev-1")  # rebuilds the loan from its history
    Matching(units, VAULT).expire_offers()

    slow = sorted({str(statement).splitlines()[0] for statement, fast in runs if not fast})
    assert slow == [], f"these statements fell back to Connection.execute: {slow}"
    missed = [where for ident, where in prebuilt_statements().items() if ident not in {id(s) for s, _ in runs}]
    assert sorted(missed) == [], "run these in this test, so their fast path is checked"
