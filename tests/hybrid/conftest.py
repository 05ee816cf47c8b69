"""A real model package in a platform registry (a lending_club sample, trained once per test run), the platform's
app over the `engine` fixture, and an institution's own database of the same kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from openice.access.keys import ApiKeys
from openice.api.app import create_app
from openice.api.settings import Settings
from openice.datasets import load
from openice.matching.service import Matching
from openice.scoring.model import TrainConfig
from openice.scoring.package import register
from openice.scoring.train import train_package
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.conftest import START, pg_schema_engine
from tests.decisioning.helpers import VAULT, StubScorer, anomaly_model
from tests.matching.test_boxes import institution

EXAMPLE = json.loads((Path(__file__).parents[2] / "openice/examples/application.json").read_text())
SMALL = TrainConfig(inner_folds=2, max_rounds=60, learning_rate=0.1, threads=1)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The platform's registry: one lending_club package (the champion), whose features the example application's
    bureau section carries."""
    data = load("lending_club")
    sample = data.frame.sample(3000, random_state=1)
    package = tmp_path_factory.mktemp("trained") / "lending"
    source = {"dataset": "lending_club", "include_leaky": False}
    train_package(sample, data.target.loc[sample.index], package, cfg=SMALL, test_size=0.25, source=source)
    where = tmp_path_factory.mktemp("platform") / "registry"
    register(package, where)
    return where


@dataclass
class Platform:
    client: TestClient
    engine: Engine
    signing_key: Path
    keys: dict[str, str]

    def call(self, who: str, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[who]}", **({"Idempotency-Key": key} if key else {})}
        return self.client.request(method, url, headers=headers, **kwargs)


@pytest.fixture
def platform(engine: Engine, registry: Path, tmp_path: Path) -> Platform:
    signing_key = tmp_path / "keys" / "signing.pem"
    policies = tmp_path / "policies"
    policies.mkdir()
    # INST-O's own, its line floor typed in yuan; INST-H has the platform's
    (policies / "INST-O.yaml").write_text("min_age: 21\nmax_pd: 0.2\ncurrency: CNY\nmin_line: '2000.00'\n")
    settings = Settings(
        model_registry=str(registry),
        signing_key=str(signing_key),
        hybrid_policies=str(policies),
        rate_limit_per_second=10_000,
        rate_limit_burst=10_000,
    )
    app = create_app(settings, engine=engine, scorer=StubScorer(), anomaly=anomaly_model(), vault=VAULT)
    codes = ("INST-H", "INST-O")
    Matching(EngineUnits(engine), VAULT).register_institutions([institution(code) for code in codes])
    keys = ApiKeys(EngineUnits(engine))
    made = {"operator": keys.create("operator", "platform")["secret"]}
    made |= {code: keys.create("institution", code)["secret"] for code in codes}
    made["collections"] = keys.create("collections", "platform")["secret"]
    return Platform(TestClient(app), engine, signing_key, made)


@pytest.fixture
def local(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """The institution's own database, on the same kind of server as the platform's but apart from it."""
    if engine.dialect.name == "sqlite":
        own = make_engine(f"sqlite:///{tmp_path / 'institution.db'}")
        migrate(own, START)
        yield own
        own.dispose()
        return
    made = pg_schema_engine()
    own = next(made)
    migrate(own, START)
    yield own
    next(made, None)


@pytest.fixture
def local_products(local: Engine) -> Engine:
    service = Servicing(EngineUnits(local))
    for product in demo_products():
        service.create_product(product)
    return local
