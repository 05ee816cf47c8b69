"""Property-based requests generated from the live OpenAPI document: no 5xx, every response conforms to it, and
no request holds two pooled database connections at once."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy import event

from tests.api.conftest import World, make_app

EXAMPLES = int(os.environ.get("OPENICE_SCHEMATHESIS_EXAMPLES", "40"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("who", "examples"),
    [("operator", EXAMPLES), ("INST-A", EXAMPLES // 4), ("borrower1", EXAMPLES // 4), ("collections", EXAMPLES // 4)],
)
def test_generated_requests_never_fail_the_server_or_the_schema(world: World, who: str, examples: int) -> None:
    """The operator's key reaches every operation; the other roles' keys get their own scoped answers, 403s and
    404s, which must conform to the document too."""
    # schemathesis keeps the app's lifespan running, where the offer sweep would take a connection of its own now and
    # then; the connections counted here are the requests' alone.
    app = make_app(world.engine, offer_sweep_seconds=0, rate_limit_per_second=10_000, rate_limit_burst=10_000)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    sent: dict[str, int] = {}
    headers = world.as_(who)
    held, peak = [0], [0]

    @event.listens_for(world.engine, "checkout")
    def _out(*_: object) -> None:
        held[0] += 1
        peak[0] = max(peak[0], held[0])

    @event.listens_for(world.engine, "checkin")
    def _in(*_: object) -> None:
        held[0] -= 1

    for operation in operations:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)
            sent[case.operation.label] = sent.get(case.operation.label, 0) + 1

        run()
    assert len(sent) == len(operations) and sum(sent.values()) >= (1000 if who == "operator" else 200), sent
    assert peak[0] == 1  # no request ever holds two pooled connections (a pool-exhaustion deadlock under load)
