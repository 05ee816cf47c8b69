"""The hybrid deployment in process, on SQLite and PostgreSQL: the platform serves its registry's package and its
policy signed with its Ed25519 key; an institution pulls them (refusing anything the pinned key did not sign),
decides in its own database, and pushes back figures only, once, resuming where a stopped push left off; the
platform monitors the pushed decisions with the package's own training reference."""

from __future__ import annotations

import json
import stat
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, func, select

from openice.decisioning.hybrid import PushedOutcome, months_between
from openice.decisioning.policy import Policy
from openice.decisioning.service import Decisioning
from openice.errors import Conflict, ValidationError
from openice.hybrid import Platform as Remote
from openice.hybrid import pull, push, within
from openice.scoring.loaded_model import Scorer
from openice.scoring.monitor import score_psi
from openice.scoring.package import read_json, registry_champion
from openice.scoring.signing import SigningKey, verified
from openice.storage import decisioning_tables
from openice.storage.hybrid_tables import hybrid_decisions, hybrid_outcomes, hybrid_pushed
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT, anomaly_model, good_application, person
from tests.hybrid.conftest import EXAMPLE, Platform

HASH = "a" * 64


def remote(platform: Platform, who: str = "INST-H") -> Remote:
    """The institution's client, talking to the platform's app in this process (the test client's transport)."""
    return Remote("http://testserver", platform.keys[who], transport=platform.client._transport)


def pin(platform: Platform) -> str:
    return platform.client.get("/.well-known/openice-signing-key").json()["public_key"]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def decision(reference: str, **changes: Any) -> dict[str, Any]:
    return {
        "reference": reference,
        "decided_on": "2026-01-15",
        "outcome": "approved",
        "score": 640.5,
        "pd": 0.031,
        "grade": "B",
        "reasons": ["revol_util: high utilisation"],
        "model_hash": HASH,
        **changes,
    }


def test_the_public_key_is_served_for_pinning_and_the_private_key_stays_in_its_file(platform: Platform) -> None:
    served = platform.client.get("/.well-known/openice-signing-key")
    assert served.status_code == 200
    key = SigningKey.at(platform.signing_key)
    assert served.json() == {"algorithm": "ed25519", "public_key": key.public_key, "key_id": key.key_id}
    assert stat.S_IMODE(platform.signing_key.stat().st_mode) == 0o600
    assert "PRIVATE" in platform.signing_key.read_text() and "PRIVATE" not in served.text
    # made once: a second load reads the same key
    assert SigningKey.at(platform.signing_key).public_key == key.public_key


def test_only_institutions_pull(platform: Platform) -> None:
    for who in ("operator", "collections"):
        assert platform.call(who, "GET", "/v1/hybrid/package").status_code == 403
    listed = platform.call("INST-H", "GET", "/v1/hybrid/packages").json()
    assert [(p["version"], p["champion"]) for p in listed] == [(1, True)]


def test_a_pull_verifies_and_installs_the_champion_and_the_policy_once(
    platform: Platform, registry: Path, tmp_path: Path
) -> None:
    into = tmp_path / "hybrid"
    done = pull(remote(platform), pin(platform), into)
    champion, expected = registry_champion(registry)
    assert done["package_hash"] == expected and done["local_version"] == 1
    installed = Scorer.load(into / "registry")
    assert installed.package_hash == expected
    assert Policy.load(into / "policy.json").policy_hash == Policy().policy_hash == done["policy_hash"]
    again = pull(remote(platform), pin(platform), into)
    assert again == done and len(read_json(into / "registry" / "registry.json")["packages"]) == 1
    own = pull(remote(platform, "INST-O"), pin(platform), tmp_path / "other")
    mine = Policy(min_age=21, max_pd=0.2, currency="CNY", min_line=200_000)  # 2,000.00 yuan
    assert own["policy_hash"] == mine.policy_hash != done["policy_hash"]
    assert Policy.load(tmp_path / "other" / "policy.json") == mine
    installed_file = json.loads((tmp_path / "other" / "policy.json").read_text())  # as a person types it
    assert (installed_file["currency"], installed_file["min_line"], installed_file["max_line"]) == (
        "CNY",
        "2000.00",
        "200000.00",
    )


def test_a_tampered_or_substituted_bundle_is_refused(platform: Platform, tmp_path: Path) -> None:
    pinned = pin(platform)
    served = platform.call("INST-H", "GET", "/v1/hybrid/package")
    body, signature = served.content, served.headers["Openice-Signature"]
    assert verified(pinned, "model", body, signature) == served.headers["Openice-Digest"]
    tampered = body.replace(b'"version":1', b'"version":2', 1)
    assert tampered != body
    with pytest.raises(
        ValidationError, match=r"^model: the model bundle \(sha256 \w+\) is not signed by the pinned key"
    ):
        verified(pinned, "model", tampered, signature)
    policy = platform.call("INST-H", "GET", "/v1/hybrid/policy")
    with pytest.raises(ValidationError, match="not signed by the pinned key"):  # a policy's signature on a package
        verified(pinned, "model", body, policy.headers["Openice-Signature"])
    other = SigningKey.at(tmp_path / "other.pem").public_key
    with pytest.raises(ValidationError, match="not signed by the pinned key"):
        pull(remote(platform), other, tmp_path / "hybrid")
    assert not (tmp_path / "hybrid" / "registry").exists()
    with pytest.raises(ValidationError, match="is not an Ed25519 public key"):
        verified("rsa:abc", "model", body, signature)


def test_a_push_with_a_field_beyond_the_figures_is_refused_and_stores_nothing(platform: Platform) -> None:
    bureau = decision("D1", bureau={"annual_inc": 180000})
    refused = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="k1", json={"decisions": [bureau]})
    assert refused.status_code == 422 and refused.json()["field"] == "decisions.0.bureau", refused.text
    assert refused.json()["detail"] == "decisions.0.bureau: Extra inputs are not permitted"
    beside = {"decisions": [decision("D1")], "applicant": {"name": "x"}}
    refused = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="k2", json=beside)
    assert refused.status_code == 422 and refused.json()["field"] == "applicant"
    outcome = {"outcomes": [{"reference": "D1", "months_on_book": 3, "bad": True, "dpd": 95}]}
    refused = platform.call("INST-H", "POST", "/v1/hybrid/outcomes", key="k3", json=outcome)
    assert refused.status_code == 422 and refused.json()["field"] == "outcomes.0.dpd"
    assert count(platform.engine, hybrid_decisions) == count(platform.engine, hybrid_outcomes) == 0


def test_a_replayed_push_counts_once_and_a_changed_decision_is_refused(platform: Platform) -> None:
    body = {"decisions": [decision("D1"), decision("D2", outcome="declined", score=None, pd=None, grade=None)]}
    first = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="batch-1", json=body)
    assert first.status_code == 201 and first.json() == {"received": 2, "stored": 2, "already": 0}
    replay = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="batch-1", json=body)
    assert (replay.status_code, replay.json()) == (201, first.json())
    # the same decisions under another key (a batch cut differently after a lost answer): nothing new
    again = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="batch-2", json=body)
    assert again.json() == {"received": 2, "stored": 0, "already": 2}
    changed = {"decisions": [decision("D1", pd=0.2)]}
    clash = platform.call("INST-H", "POST", "/v1/hybrid/decisions", key="batch-3", json=changed)
    assert clash.status_code == 409 and clash.json()["field"] == "decisions.0.reference"
    assert count(platform.engine, hybrid_decisions) == 2
    # another institution's reference D1 is its own
    other = platform.call("INST-O", "POST", "/v1/hybrid/decisions", key="batch-1", json=changed)
    assert other.json() == {"received": 1, "stored": 1, "already": 0}
    early = {"outcomes": [{"reference": "D9", "months_on_book": 3, "bad": False}]}
    refused = platform.call("INST-H", "POST", "/v1/hybrid/outcomes", key="o-1", json=early)
    assert refused.status_code == 422 and refused.json()["field"] == "outcomes.0.reference"
    good = {"outcomes": [{"reference": "D1", "months_on_book": 3, "bad": False}]}
    assert platform.call("INST-H", "POST", "/v1/hybrid/outcomes", key="o-2", json=good).json()["stored"] == 1
    assert platform.call("INST-H", "POST", "/v1/hybrid/outcomes", key="o-2", json=good).json()["stored"] == 1
    turned = {"outcomes": [{"reference": "D1", "months_on_book": 3, "bad": True}]}
    assert platform.call("INST-H", "POST", "/v1/hybrid/outcomes", key="o-3", json=turned).status_code == 409
    assert count(platform.engine, hybrid_outcomes) == 1


def decide(local: Engine, into: Path, n: int) -> list[dict[str, Any]]:
    """`n` applicants decided in the institution's database with the pulled package and policy, each with its own
    revolving utilisation so their scores differ."""
    decisioning = Decisioning(
        EngineUnits(local),
        Scorer.load(into / "registry"),
        VAULT,
        Policy.load(into / "policy.json"),
        anomaly=anomaly_model(),
    )
    decided = []
    for k in range(n):
        borrower = decisioning.register(person(20 + k))["borrower_id"]
        bureau = {**EXAMPLE["bureau"], "revol_util": 10.0 + 25 * k}
        decided.append(decisioning.apply(borrower, good_application(bureau=bureau)))
    return decided


class Stop(Exception):
    """The push stopped after its first batch (as if the process were killed there)."""


def test_decide_locally_push_resumably_and_monitor_on_the_platform(
    platform: Platform, local_products: Engine, tmp_path: Path
) -> None:
    local, into = local_products, tmp_path / "hybrid"
    pulled = pull(remote(platform), pin(platform), into)
    decided = decide(local, into, 4)
    assert {d["outcome"] for d in decided} <= {"approved", "declined", "review"}

    def stop(_kind: str, _done: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        push(remote(platform), EngineUnits(local), batch=3, progress=stop)
    assert count(platform.engine, hybrid_decisions) == count(local, hybrid_pushed) == 3
    done = push(remote(platform), EngineUnits(local), batch=3)
    assert done == {"decisions": 1, "outcomes": 0, "stored": 1}
    assert count(platform.engine, hybrid_decisions) == 4
    # the institution lost its record of what it pushed (an answer lost on the way back): nothing counts twice
    with local.begin() as conn:
        conn.execute(delete(hybrid_pushed))
    assert push(remote(platform), EngineUnits(local)) == {"decisions": 4, "outcomes": 0, "stored": 0}
    assert count(platform.engine, hybrid_decisions) == 4

    ids = sorted(d["decision_id"] for d in decided)
    outcomes = [
        PushedOutcome(reference=ids[0], months_on_book=3, bad=False),
        PushedOutcome(reference=ids[0], months_on_book=6, bad=True),  # bad by month 6: bad
        PushedOutcome(reference=ids[1], months_on_book=3, bad=False),  # good
        PushedOutcome(reference=ids[2], months_on_book=3, bad=True),  # bad; ids[3]: no outcome yet
    ]
    assert push(remote(platform), EngineUnits(local), outcomes) == {"decisions": 0, "outcomes": 4, "stored": 4}
    assert push(remote(platform), EngineUnits(local), outcomes) == {"decisions": 0, "outcomes": 0, "stored": 0}

    seen = platform.call("INST-H", "GET", "/v1/hybrid/monitoring").json()
    [model] = seen["models"]
    assert (model["model_hash"], model["version"], model["decisions"]) == (pulled["package_hash"], 1, 4)
    [month] = model["months"]
    # decided on the business date 2026-01-15; 3 of the 4 have an outcome, 2 of those bad: bad rate 2/3
    assert (month["group"], month["n"]) == ("2026-01", 4)
    assert (month["outcomes"]["n"], month["outcomes"]["bads"]) == (3, 2)
    assert month["outcomes"]["bad_rate"] == pytest.approx(2 / 3)
    with local.connect() as conn:
        scores = [r.score for r in conn.execute(select(decisioning_tables.decisions.c.score))]
    metadata = read_json(into / "registry" / "v0001" / "metadata.json")
    assert month["score_psi"] == pytest.approx(score_psi(metadata["reference"], scores))

    by_operator = platform.call("operator", "GET", "/v1/hybrid/monitoring", params={"institution": "INST-H"})
    assert by_operator.json() == seen
    assert platform.call("INST-O", "GET", "/v1/hybrid/monitoring").json()["models"] == []
    assert platform.call("INST-O", "GET", "/v1/hybrid/monitoring", params={"institution": "INST-H"}).status_code == 404
    assert platform.call("operator", "GET", "/v1/hybrid/monitoring").status_code == 404


def test_what_reaches_the_platform_holds_no_applicant_data(
    platform: Platform, local_products: Engine, tmp_path: Path
) -> None:
    into = tmp_path / "hybrid"
    pull(remote(platform), pin(platform), into)
    decide(local_products, into, 2)
    sent: list[bytes] = []
    inner = platform.client._transport

    class Recording(httpx.BaseTransport):
        """The wire as the platform receives it (the real app answers)."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.read())
            return inner.handle_request(request)

    push(Remote("http://testserver", platform.keys["INST-H"], transport=Recording()), EngineUnits(local_products))
    [body] = sent
    pushed = json.loads(body)["decisions"]
    assert {tuple(sorted(d)) for d in pushed} == {
        ("decided_on", "grade", "model_hash", "outcome", "pd", "policy_hash", "reasons", "reference", "score")
    }
    for field in (
        "annual_inc",
        "revol_util",
        "income_monthly",
        "national_id",
        "mobile",
        str(EXAMPLE["bureau"]["annual_inc"]),
    ):
        assert field not in body.decode(), field


def test_outcomes_that_contradict_the_platform_stop_the_push_with_one_line(
    platform: Platform, local_products: Engine, tmp_path: Path
) -> None:
    into = tmp_path / "hybrid"
    pull(remote(platform), pin(platform), into)
    [made] = decide(local_products, into, 1)
    push(
        remote(platform),
        EngineUnits(local_products),
        [PushedOutcome(reference=made["decision_id"], months_on_book=3, bad=False)],
    )
    with local_products.begin() as conn:
        conn.execute(delete(hybrid_pushed).where(hybrid_pushed.c.kind == "outcome"))
    turned = [PushedOutcome(reference=made["decision_id"], months_on_book=3, bad=True)]
    with pytest.raises(
        Conflict,
        match=r"^outcomes.0.bad: the platform refused POST /v1/hybrid/outcomes \(409\): the outcome of D\w+ at month 3",
    ):
        push(remote(platform), EngineUnits(local_products), turned)


def test_a_batch_is_cut_to_fit_the_body_budget_in_order() -> None:
    documents = [{"r": str(n) * 98} for n in range(4)]  # each '{"r":"..."}' is 98 + 8 = 106 bytes, 107 with a comma
    assert within(documents, budget=250) == documents[:2]  # 214 fits, 321 does not
    assert within(documents, budget=50) == documents[:1]  # one at least, however long
    assert within(documents, budget=428) == documents and within([], budget=1) == []


def test_months_on_book_are_whole_months_from_the_disbursal() -> None:
    assert months_between(date(2026, 1, 15), date(2026, 3, 14)) == 1
    assert months_between(date(2026, 1, 15), date(2026, 3, 15)) == 2
    assert months_between(date(2026, 1, 31), date(2026, 2, 28)) == 0  # a short month: not a whole one yet
    assert months_between(date(2025, 11, 30), date(2026, 1, 30)) == 2
