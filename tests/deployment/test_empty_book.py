"""An institution onboarded on an empty book, before any product, on SQLite and PostgreSQL: by the command line (the
installed entry point, as a subprocess) and by the API. Its file names its currency; one that names none is refused
in one line saying what to give, until a product gives the book its currency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from openice.access.keys import ApiKeys
from openice.storage.uow import EngineUnits
from tests.api.conftest import bearer, make_app
from tests.cli import one_line_error, openice
from tests.conftest import PG_URL
from tests.deployment.processes import postgres_database
from tests.deployment.test_modes import PII_KEY, institution, write

NO_CURRENCY = 'give the institution\'s "currency" (e.g. "CNY"), as the book has no product yet to take it from'


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new database nothing was created in."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'book.db'}"
        return
    if not request.getfixturevalue("pg_ok"):
        pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
    with postgres_database(PG_URL, "empty") as url:
        yield url


def run(*args: str) -> str:
    done = openice(*args, OPENICE_PII_KEY=PII_KEY)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def unnamed(code: str) -> dict[str, Any]:
    return {k: v for k, v in institution(code).items() if k != "currency"}


def test_the_command_line_onboards_before_any_product(empty_db: str, tmp_path: Path) -> None:
    run("db", "init", "--db", empty_db, "--date", "2026-01-15", "--no-with-products")
    example = tmp_path / "examples"
    run("examples", "--out", str(example))
    # the shipped example names its currency (CNY): onboarded on the empty book, quotas read back as typed
    made = json.loads(
        run(
            "tenant", "onboard", "--db", empty_db, "--institution", "FIRST-BANK", "--file",
            str(example / "institution.json"), "--admin-email", "admin@first-bank.cn", "--json",
        )
    )  # fmt: skip
    terms = made["definition"]
    assert (terms["currency"], terms["daily_quota"], terms["kind"]) == ("CNY", "5000000.00", "bank")
    # a file naming no currency has none to be read in yet: one line on stderr, exit 2, nothing stored
    refused = openice(
        "match", "institutions", str(write(tmp_path / "no.json", [unnamed("NO-CUR")])), "--db", empty_db,
        OPENICE_PII_KEY=PII_KEY,
    )  # fmt: skip
    assert one_line_error(refused) == f"error: currency: no currency: {NO_CURRENCY}"
    # once a product gives the book its currency, the same file is read in it
    run("product", "create", str(example / "product.json"), "--db", empty_db)
    assert (
        "1 institution(s): NO-CUR"
        in openice("match", "institutions", str(tmp_path / "no.json"), "--db", empty_db, OPENICE_PII_KEY=PII_KEY).stderr
    )


def test_the_api_onboards_before_any_product(engine: Engine) -> None:
    """`engine` is migrated and holds no product."""
    client = TestClient(make_app(engine))
    operator = bearer(ApiKeys(EngineUnits(engine)).create("operator", "platform")["secret"])
    body = {"institution": institution("API-BANK"), "admin_email": "admin@api-bank.cn"}
    made = client.post("/v1/tenants", json=body, headers={**operator, "Idempotency-Key": "onboard"})
    assert made.status_code == 201, made.text
    assert (made.json()["definition"]["currency"], made.json()["definition"]["monthly_quota"]) == (
        "CNY",
        "100000000.00",
    )
    read = client.get("/v1/institutions/API-BANK", headers=operator)
    assert read.status_code == 200 and read.json() == made.json()["definition"]
    refused = client.put("/v1/institutions/NO-CUR", json=unnamed("NO-CUR"), headers=operator)
    assert refused.status_code == 422 and refused.json()["field"] == "currency", refused.text
    assert NO_CURRENCY in refused.json()["detail"]
    quota = client.get("/v1/institutions/API-BANK/quota", headers=operator)
    assert quota.status_code == 200, quota.text  # read in its own currency, though the book has none
    assert quota.json()["periods"][0]["quota"] == {"amount": "5000000.00", "currency": "CNY"}
