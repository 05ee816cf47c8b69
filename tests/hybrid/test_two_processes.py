"""Hybrid between two processes and two databases, as it is deployed: the platform is `openice serve` on a free
loopback port over its own database and registry; the institution runs the `openice` command over its own database:
pull (verified against the pinned key), decide, push decisions and outcomes. The platform then monitors the
institution's decisions, and nothing of the applicant reached its database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.decisioning.helpers import person
from tests.deployment.processes import serving

ROOT = Path(__file__).resolve().parents[2]


def openice(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run the command as a user would; its stdout, or the test fails with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "openice", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


@pytest.fixture
def shell() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENICE_")}
    return env | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"}


@pytest.fixture
def platform(shell: dict[str, str], registry: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The platform: a database with the example institution and its key, a registry, a signing key, serving."""
    home = tmp_path / "platform"
    home.mkdir()
    env = shell | {"OPENICE_DB": f"sqlite:///{home / 'platform.db'}"}
    env["OPENICE_PII_KEY"] = openice(env, home, "pii", "keygen").strip()
    openice(env, home, "db", "init", "--date", "2026-01-15")
    openice(env, home, "examples", "--out", "examples")
    openice(env, home, "product", "create", "examples/product.json")  # the book's currency, which the file types in
    openice(env, home, "match", "institutions", "examples/institution.json")
    key = openice(env, home, "api-key", "create", "--role", "institution", "--tenant", "FIRST-BANK").splitlines()[-1]
    pin = openice(env, home, "hybrid", "public-key", "--signing-key", str(home / "signing.pem")).strip()
    settings = {k: v for k, v in env.items() if k.startswith("OPENICE_") and k != "OPENICE_DB"}
    settings |= {"OPENICE_MODEL_REGISTRY": str(registry), "OPENICE_SIGNING_KEY": str(home / "signing.pem")}
    with serving(env["OPENICE_DB"], "--workers", "1", "--no-relay", **settings) as server:
        yield {"url": server.url, "key": key, "pin": pin, "db": home / "platform.db"}


def test_pull_decide_and_push_between_two_processes(
    platform: dict[str, Any], shell: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "institution"
    home.mkdir()
    env = shell | {"OPENICE_DB": f"sqlite:///{home / 'institution.db'}"}
    env["OPENICE_PII_KEY"] = openice(env, home, "pii", "keygen").strip()
    openice(env, home, "db", "init", "--date", "2026-01-15")
    openice(env, home, "examples", "--out", "examples")
    openice(env, home, "product", "create", "examples/product.json")
    openice(env, home, "match", "institutions", "examples/institution.json")  # the institution funds its own loans
    remote = ("--platform", platform["url"], "--key", platform["key"])

    wrong = subprocess.run(
        [sys.executable, "-m", "openice", "hybrid", "pull", *remote, "--pin", "ed25519:" + "A" * 43 + "="],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong.returncode == 2 and wrong.stdout == "", wrong.stderr
    assert wrong.stderr.startswith("error: model: the model bundle (sha256 ") and wrong.stderr.count("\n") == 1
    assert "not signed by the pinned key" in wrong.stderr and not (home / "hybrid").exists()

    pulled = json.loads(openice(env, home, "hybrid", "pull", *remote, "--pin", platform["pin"], "--json"))
    assert pulled["local_version"] == 1 and (home / "hybrid" / "policy.json").exists()

    borrower = json.loads(openice(env, home, "decision", "register", "examples/borrower.json"))["borrower_id"]
    local_files = ("--model", "hybrid/registry", "--policy", "hybrid/policy.json", "--json")
    decided = json.loads(openice(env, home, "decision", "apply", borrower, "examples/application.json", *local_files))
    assert decided["outcome"] in {"approved", "declined", "review"} and decided["score"] is not None

    second = person(7)
    second["date_of_birth"] = second["date_of_birth"].isoformat()
    (home / "second.json").write_text(json.dumps(second))
    booked = json.loads(
        openice(env, home, "originate", "second.json", "examples/application.json", *local_files, "--key", "loan-1")
    )
    assert booked["loan_id"] is not None, booked
    openice(env, home, "eod", "--to", "2026-03-16")  # the loan was disbursed on 2026-01-15: two months on book

    # both decisions, and the booked loan's outcome at month 2 (unpaid since 2026-02-15: 29 days late, not bad)
    pushed = json.loads(openice(env, home, "hybrid", "push", *remote, "--json"))
    assert pushed == {"decisions": 2, "outcomes": 1, "stored": 3}
    (home / "outcomes.csv").write_text(f"reference,months_on_book,bad\n{decided['decision_id']},2,1\n")
    pushed = json.loads(openice(env, home, "hybrid", "push", *remote, "--outcomes", "outcomes.csv", "--json"))
    assert pushed == {"decisions": 0, "outcomes": 1, "stored": 1}
    again = json.loads(openice(env, home, "hybrid", "push", *remote, "--outcomes", "outcomes.csv", "--json"))
    assert again == {"decisions": 0, "outcomes": 0, "stored": 0}

    seen = httpx.get(
        f"{platform['url']}/v1/hybrid/monitoring", headers={"Authorization": f"Bearer {platform['key']}"}, timeout=30
    )
    [model] = seen.json()["models"]
    assert (model["model_hash"], model["version"], model["decisions"]) == (pulled["package_hash"], 1, 2)
    [month] = model["months"]
    # two decisions in January 2026, both with an outcome: the booked loan good, the other bad; bad rate 1/2
    assert (month["group"], month["n"], month["outcomes"]["n"], month["outcomes"]["bad_rate"]) == ("2026-01", 2, 2, 0.5)

    # Every text in the platform's database, searched for the applicant and the bureau section
    application = json.loads((home / "examples" / "application.json").read_text())
    first = json.loads((home / "examples" / "borrower.json").read_text())
    with sqlite3.connect(platform["db"]) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        text = "\n".join(str(row) for t in tables for row in db.execute(f'SELECT * FROM "{t}"'))
    assert decided["decision_id"] in text
    assert booked["decision_id"] in text
    identities = [p[k] for p in (first, second) for k in ("national_id", "mobile", "name")]
    for secret in (*application["bureau"], *identities):
        assert secret not in text, secret
