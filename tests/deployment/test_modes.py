"""The deployment modes run as they are deployed: two `openice serve` processes on loopback, each over a PostgreSQL
database of its own, set up with the commands docs/deployment.md gives, and a drawdown through each end to end.

- SaaS: a platform serving several institutions, one of them onboarded with `openice tenant onboard`; its
  drawdown is funded by the onboarded institution, whose own key (printed by the onboarding) sees that loan and
  not another institution's.
- On-premise: one institution's own server alone (`openice db init --mode on-premise`), with its own product and
  its own end of day; a second institution is refused, by the command and by the API.

PostgreSQL is required here as in every storage test: skipped only when it is unreachable and OPENICE_REQUIRE_PG
is not set (tests/conftest.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import one_line_error, openice
from tests.conftest import PG_URL
from tests.decisioning.helpers import person
from tests.deployment.processes import Server, postgres_database, serving

PII_KEY = base64.b64encode(bytes(range(32))).decode()
START = "2026-01-15"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model package on the bundled lending data (the fields of the example application)."""
    from openice.datasets import load
    from openice.scoring.model import TrainConfig
    from openice.scoring.train import train_package

    out = tmp_path_factory.mktemp("model") / "package"
    data = load("lending_club")
    sample = data.frame.sample(3000, random_state=1)
    config = TrainConfig(inner_folds=2, max_rounds=60, learning_rate=0.1, threads=1)
    train_package(sample, data.target.loc[sample.index], out, cfg=config, test_size=0)
    return out


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The example input files, as `openice examples` writes them for a user."""
    done = openice("examples", "--out", str(tmp_path / "examples"))
    assert done.returncode == 0, done.stderr
    return tmp_path / "examples"


@pytest.fixture
def databases(pg_ok: bool) -> Iterator[tuple[str, str]]:
    """The platform's database and one institution's, each new on the PostgreSQL server and dropped afterwards."""
    if not pg_ok:
        pytest.skip("PostgreSQL not reachable (set OPENICE_REQUIRE_PG=1 to make this a failure)")
    with postgres_database(PG_URL, "platform") as platform, postgres_database(PG_URL, "bank") as bank:
        yield platform, bank


def run(*args: str) -> str:
    done = openice(*args, OPENICE_PII_KEY=PII_KEY)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def institution(code: str, **box: Any) -> dict[str, Any]:
    """A capital-light institution whose credit box takes the example borrower, within `box`'s amounts: money typed
    in major units of the book's currency, as its file and the API take it."""
    return {
        "code": code,
        "name": f"{code} Ltd",
        "business_model": "capital-light",
        "funding_cost": "0.03",
        "rate": "0.07",
        "currency": "CNY",
        "daily_quota": "5000000.00",
        "monthly_quota": "100000000.00",
        "credit_box": {"max_pd": 0.5, **box},
    }


def operator_key(db: str) -> str:
    """`openice api-key create --role operator`: its secret is the last line."""
    return run("api-key", "create", "--role", "operator", "--db", db).strip().splitlines()[-1]


def borrow(server: Server, secret: str, files: Path, amount: str, k: int, product: str | None = None) -> Any:
    """Register borrower `k`, apply with the example application, and draw `amount` over 12 months: the drawdown
    as the API answers it."""
    tag = str(k)
    who = person(k)
    who["date_of_birth"] = who["date_of_birth"].isoformat()
    registered = server.call("POST", "/v1/borrowers", secret, key=f"reg-{tag}", json=who)
    assert registered.status_code == 201, registered.text
    application = json.loads((files / "application.json").read_text())
    if product:
        application["product_code"] = product
    borrower = registered.json()["id"]
    decided = server.call("POST", f"/v1/borrowers/{borrower}/applications", secret, key=f"app-{tag}", json=application)
    assert decided.status_code == 201 and decided.json()["outcome"] == "approved", decided.text
    line = decided.json()["line_id"]
    body = {"amount": amount, "currency": "CNY", "tenor": 12}
    drawn = server.call("POST", f"/v1/credit-lines/{line}/drawdowns", secret, key=f"dd-{tag}", json=body)
    assert drawn.status_code == 201, drawn.text
    return drawn.json()


def test_saas_and_on_premise_serve_a_drawdown_each_end_to_end(
    model: Path, files: Path, databases: tuple[str, str], tmp_path: Path
) -> None:
    platform_db, bank_db = databases
    # ---- SaaS: the platform, with two institutions registered as before and one onboarded ----
    run("db", "init", "--db", platform_db, "--date", START, "--mode", "saas")
    run("product", "create", str(files / "product.json"), "--db", platform_db)
    # OLD-A and OLD-B fund up to 10,000.00 CNY; NEW-BANK, onboarded, from 10,000.01: the 20,000.00 drawdown is its.
    small = {"max_amount": "10000.00"}
    old = write(tmp_path / "old.json", [institution(code, **small) for code in ("OLD-A", "OLD-B")])
    run("match", "institutions", str(old), "--db", platform_db)
    onboarded = json.loads(
        run(
            "tenant", "onboard", "--db", platform_db, "--institution", "NEW-BANK",
            "--file", str(write(tmp_path / "new.json", institution("NEW-BANK", min_amount="10000.01"))),
            "--admin-email", "admin@new-bank.cn", "--decides", "auto", "--json",
        )
    )  # fmt: skip
    assert onboarded["acceptance"] == "automatic" and "/portal/reset?token=" in onboarded["admin"]["set_password_link"]
    assert onboarded["definition"]["credit_box"]["min_amount"] == "10000.01"  # as typed: 1,000,001 fen stored
    again = openice(
        "tenant", "onboard", "--db", platform_db, "--institution", "NEW-BANK", "--file", str(tmp_path / "new.json"),
        "--admin-email", "other@new-bank.cn",
    )  # fmt: skip
    assert one_line_error(again).startswith("error: --institution: institution NEW-BANK exists already")
    # ---- on-premise: the bank's own database, its own product and institution (typed in the product's CNY) ----
    run("db", "init", "--db", bank_db, "--date", START, "--mode", "on-premise", "--institution", "BANK-A")
    own = json.loads((files / "product.json").read_text()) | {"code": "BANK-A-EI", "name": "BANK-A's own loan"}
    run("product", "create", str(write(tmp_path / "product.json", own)), "--db", bank_db)
    printed = run("tenant", "onboard", "--db", bank_db, "--institution", "BANK-A", "--file",
        str(write(tmp_path / "bank.json", institution("BANK-A"))), "--admin-email", "it@bank-a.cn")  # fmt: skip
    assert "quotas 5000000.00 a day and 100000000.00 a month in CNY;" in printed.splitlines()[0], printed
    refused = openice(
        "tenant", "onboard", "--db", bank_db, "--institution", "OTHER", "--file",
        str(write(tmp_path / "other.json", institution("OTHER"))), "--admin-email", "x@other.cn",
    )  # fmt: skip
    assert one_line_error(refused) == (
        "error: --institution: this database runs on-premise for BANK-A: it holds no other institution"
    )
    operators = {platform_db: operator_key(platform_db), bank_db: operator_key(bank_db)}
    serve = ("--model", str(model))
    with (
        serving(platform_db, *serve, OPENICE_PII_KEY=PII_KEY) as platform,
        serving(bank_db, *serve, OPENICE_PII_KEY=PII_KEY) as bank,
    ):
        assert platform.client.get("/ready").json() == {"status": "ready", "mode": "saas", "institution": None}
        assert bank.client.get("/ready").json() == {"status": "ready", "mode": "on-premise", "institution": "BANK-A"}
        assert "(on-premise for BANK-A;" in bank.stderr() and "(SaaS;" in platform.stderr()
        # SaaS: the onboarded institution funds the drawdown its box alone takes; an old one the small one.
        big = borrow(platform, operators[platform_db], files, "20000.00", 1)
        assert (big["status"], big["institution_code"]) == ("funded", "NEW-BANK"), big
        small_loan = borrow(platform, operators[platform_db], files, "5000.00", 2)
        assert small_loan["status"] == "funded" and small_loan["institution_code"] in ("OLD-A", "OLD-B"), small_loan
        tenant_key = onboarded["api_key"]["secret"]
        seen = platform.call("GET", f"/v1/loans/{big['loan_id']}", tenant_key)
        assert seen.status_code == 200 and seen.json()["funder"] == "NEW-BANK"
        assert platform.call("GET", f"/v1/loans/{small_loan['loan_id']}", tenant_key).status_code == 404
        # On-premise: the bank's own product, funded by the bank, on the bank's server alone.
        drawn = borrow(bank, operators[bank_db], files, "20000.00", 3, product="BANK-A-EI")
        assert (drawn["status"], drawn["institution_code"]) == ("funded", "BANK-A"), drawn
        put = bank.call("PUT", "/v1/institutions/OTHER", operators[bank_db], json=institution("OTHER"))
        assert put.status_code == 409 and "on-premise for BANK-A" in put.json()["detail"], put.text
        # Its own end of day: the first installment (due 2026-02-15) is a day past due on the 16th.
        run("eod", "--db", bank_db, "--to", "2026-02-16")
        loan = bank.call("GET", f"/v1/loans/{drawn['loan_id']}", operators[bank_db]).json()
        assert (loan["product_code"], loan["funder"], loan["days_past_due"], loan["bucket"]) == (
            "BANK-A-EI",
            "BANK-A",
            1,
            "M1",
        )
        # The platform's book did not move: the two servers share nothing.
        assert platform.call("GET", f"/v1/loans/{big['loan_id']}", tenant_key).json()["days_past_due"] == 0
