"""A small deterministic scorer and ready-made borrowers for the decisioning and matching tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Engine

from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.domain import ApplicationInput, TypedApplication
from openice.decisioning.pii import PiiVault
from openice.decisioning.service import Decisioning
from openice.decisioning.synthetic import application, reference_matrix, registration
from openice.storage.uow import EngineUnits

GRADES = (("A", 0.02), ("B", 0.05), ("C", 0.10), ("D", 0.15), ("E", 0.25), ("F", 0.40), ("G", 1.0))
VAULT = PiiVault(bytes(range(32)))
_ANOMALY: list[AnomalyModel] = []


@dataclass(frozen=True)
class StubResult:
    pd: float
    score: float
    grade: str
    reasons: list[str] = field(default_factory=list)


class StubScorer:
    """PD from delinquencies and utilisation; enough to drive every policy branch."""

    package_hash = "stub-" + "0" * 59

    def score(self, application: dict[str, Any]) -> StubResult:
        z = (
            -4.0
            + 1.2 * float(application.get("delinquencies_24m", 0))
            + 2.0 * float(application.get("revolving_utilisation", 0.3))
        )
        p = 1 / (1 + math.exp(-z))
        grade = next(g for g, bound in GRADES if p <= bound)
        reasons = ["DELINQUENCIES_24M_HIGH: Delinquencies 24m is high"] if application.get("delinquencies_24m") else []
        return StubResult(p, round(600 - 50 * math.log(p / (1 - p)) / math.log(2), 2), grade, reasons)


def anomaly_model() -> AnomalyModel:
    if not _ANOMALY:
        _ANOMALY.append(AnomalyModel.fit(reference_matrix(2000)))
    return _ANOMALY[0]


def make_decisioning(engine: Engine, clock: Any = None, **kwargs: Any) -> Decisioning:
    extra = {"clock": clock} if clock else {}
    return Decisioning(EngineUnits(engine), StubScorer(), VAULT, anomaly=anomaly_model(), **extra, **kwargs)


def good_application(**changes: Any) -> dict[str, Any]:
    app = application(np.random.default_rng(1))
    app.update(
        income_monthly=1_500_000,
        existing_debt_monthly=100_000,
        requested_amount=3_000_000,
        bureau={"delinquencies_24m": 0, "revolving_utilisation": 0.2, "inquiries_6m": 1, "credit_history_months": 60},
    )
    app.update(changes)
    return app


def application_body(**changes: Any) -> dict[str, Any]:
    """`good_application` as a client sends it (the API's body, the command line's file): money as decimal strings
    of major units with the currency."""
    app = TypedApplication.of(ApplicationInput.model_validate(good_application()), "CNY").model_dump(mode="json")
    app.update(changes)
    return app


def person(k: int, today: date = date(2026, 1, 15), **changes: Any) -> dict[str, Any]:
    reg = registration(np.random.default_rng(k), k, today)
    reg.update(changes)
    return reg
