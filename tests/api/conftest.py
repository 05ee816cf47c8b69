"""An app over the `engine` fixture (SQLite and PostgreSQL) with two institutions, two borrowers with funded
loans, and keys for every role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from openice.access.keys import ApiKeys
from openice.api.app import create_app
from openice.api.settings import Settings
from openice.close_of_day import run_until
from openice.matching.institutions import CreditBox
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT, StubScorer, anomaly_model, application_body, person
from tests.matching.test_boxes import body, institution


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class World:
    client: TestClient
    engine: Engine
    keys: dict[str, str] = field(default_factory=dict)  # name -> secret
    ids: dict[str, Any] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return bearer(self.keys[who])

    def first_due(self) -> None:
        """Close business days until the first installments (due 2026-02-15) are owed."""
        run_until(self.engine, date(2026, 2, 16))

    def call(self, who: str, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.as_(who), **({"Idempotency-Key": key} if key else {})}
        return self.client.request(method, url, headers=headers, **kwargs)


def make_app(engine: Engine, **settings: Any) -> Any:
    return create_app(Settings(**settings), engine=engine, scorer=StubScorer(), anomaly=anomaly_model(), vault=VAULT)


def build_world(engine: Engine, factory: Callable[..., Any] = make_app) -> World:
    """Institution A funds up to 15,000.00, B above it; borrower 1 draws from A, borrower 2 from B."""
    app = factory(engine, rate_limit_per_second=10_000, rate_limit_burst=10_000)
    client = TestClient(app)
    keys = ApiKeys(EngineUnits(engine))
    world = World(client, engine, keys={"operator": keys.create("operator", "platform")["secret"]})
    box = dict(max_pd=0.2)
    for code, low, high in (("INST-A", 0, 1_500_000), ("INST-B", 1_500_001, 10**9)):
        inst = institution(code, credit_box=CreditBox(min_amount=low, max_amount=high, **box))
        assert world.call("operator", "PUT", f"/v1/institutions/{code}", json=body(inst)).status_code == 200
        world.keys[code] = keys.create("institution", code)["secret"]
    for k, amount in ((1, "10000.00"), (2, "20000.00")):
        reg = person(k)
        reg["date_of_birth"] = reg["date_of_birth"].isoformat()
        borrower = world.call("operator", "POST", "/v1/borrowers", key=f"reg-{k}", json=reg)
        assert borrower.status_code == 201, borrower.text
        bid = borrower.json()["id"]
        world.keys[f"borrower{k}"] = keys.create("borrower", bid)["secret"]
        decision = world.call(
            f"borrower{k}", "POST", f"/v1/borrowers/{bid}/applications", key=f"app-{k}", json=application_body()
        )
        assert decision.status_code == 201 and decision.json()["outcome"] == "approved", decision.text
        line = decision.json()["line_id"]
        drawn = world.call(
            f"borrower{k}",
            "POST",
            f"/v1/credit-lines/{line}/drawdowns",
            key=f"dd-{k}",
            json={"amount": amount, "currency": "CNY", "tenor": 12},
        )
        assert drawn.status_code == 201 and drawn.json()["status"] == "funded", drawn.text
        offer = world.call("operator", "GET", "/v1/offers", params={"drawdown_id": drawn.json()["id"]}).json()
        world.ids[k] = {
            "borrower": bid,
            "decision": decision.json()["id"],
            "line": line,
            "drawdown": drawn.json()["id"],
            "loan": drawn.json()["loan_id"],
            "institution": drawn.json()["institution_code"],
            "offer": offer["items"][0]["id"],
        }
    assert world.ids[1]["institution"] == "INST-A" and world.ids[2]["institution"] == "INST-B"
    world.keys["collections"] = keys.create("collections", "platform")["secret"]
    return world


@pytest.fixture
def world(engine: Engine, servicing: Servicing) -> World:
    return build_world(engine)
