"""A loan from an application in one call: register the borrower, assess the application, draw on the line it
grants and book the loan with the institution matching routes it to.

Decisioning and matching are the stages that do the work, through the same service calls the API makes as three
requests (`POST /v1/borrowers`, `.../applications`, `/v1/credit-lines/{id}/drawdowns`). Here they share one
transaction under one idempotency key: the command line's `openice originate` either stores all of it or none,
and run again with the same key it answers what it did the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.domain import Registration, TypedApplication, parse
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import Policy
from openice.decisioning.scorer_protocol import ScorerLike
from openice.decisioning.service import Decisioning
from openice.errors import ValidationError
from openice.idempotency import Idempotency
from openice.matching.router import Ranking
from openice.matching.service import Matching
from openice.money import format_money, to_minor
from openice.storage.uow import JoinedUnits


@dataclass(frozen=True)
class Request:
    """What the borrower sends: who they are, what they apply for (a `TypedApplication`: money in major units with
    the product's currency) and, optionally, how much of the line to draw (major units, as typed) over how many
    months; by default the amount and tenor applied for."""

    borrower: dict[str, Any]
    application: dict[str, Any]
    amount: str | None = None
    tenor: int | None = None
    ranking: Ranking = Ranking.MARGIN


def originate(
    engine: Engine,
    request: Request,
    key: str,
    *,
    scorer: ScorerLike,
    vault: PiiVault,
    policy: Policy | None = None,
    anomaly: AnomalyModel | None = None,
) -> dict[str, Any]:
    """Register, decide, draw and book in one transaction; the result (money in minor units with its currency) is
    stored under `key` and replayed for it. A declined application or a drawdown no institution funds is a result,
    not an error: the decision and the drawdown are kept, with their reasons, and `loan_id` is None."""
    registration = parse(Registration, request.borrower)
    typed = parse(TypedApplication, request.application)
    with engine.connect() as conn, conn.begin():
        units = JoinedUnits(conn)
        decisioning = Decisioning(units, scorer, vault, policy, anomaly)
        application, currency = decisioning.in_minor(typed), typed.currency  # the product's, or refused
        payload = {
            "borrower": registration.model_dump(mode="json"),
            "application": application.model_dump(mode="json"),
            "amount": request.amount,
            "tenor": request.tenor,
            "ranking": request.ranking.value,
        }

        def work() -> dict[str, Any]:
            registered = decisioning.register(registration)
            decided = decisioning.apply(registered["borrower_id"], application)
            line = decided["line"]
            result: dict[str, Any] = {
                "borrower_id": registered["borrower_id"],
                "existing_borrower": registered["existing"],
                "decision_id": decided["decision_id"],
                "outcome": decided["outcome"],
                "reasons": decided["reasons"],
                "grade": decided["grade"],
                "pd": decided["pd"],
                "score": decided["score"],
                "currency": currency,
                "line_id": decided["line_id"],
                "line": line,
                "drawdown": None,
                "loan_id": None,
            }
            if decided["line_id"] is None:
                return result
            amount = min(application.requested_amount, line["amount"])
            if request.amount is not None:
                amount = to_minor(request.amount, currency, "amount")
                if not 0 < amount <= line["amount"]:
                    raise ValidationError(
                        f"draw more than nothing and at most the line of {format_money(line['amount'], currency)}",
                        field="amount",
                    )
            tenor = request.tenor or application.requested_tenor
            drawn = Matching(units, vault).drawdown(
                decided["line_id"], amount, tenor, f"{key}/drawdown", request.ranking
            )
            result["drawdown"] = {**drawn, "amount": amount, "tenor": tenor}
            result["loan_id"] = drawn["loan_id"]
            return result

        return Idempotency(conn).run(key, "originate", payload, work)
