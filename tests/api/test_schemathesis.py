"""Property-based requests generated from the live OpenAPI document: no 5xx, every response conforms to it, and
no request holds two pooled database connections at once."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy import event

from tests.api.conftest import World

EXAMPLES = int(os.environ.get("OPENICE_SCHEMATHESIS_EXAMPLES", "40"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_generated_requests_never_fail_the_server_or_the_schema(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    sent: dict[str, int] = {}
    headers = world.as_("operator")
    held, peak = [0], [0]

    @event.listens_for(world.engine, "checkout")
    def _out(*_: object) -> None:
        held[0] += 1
        peak[0] = max(peak[0], held[0])

    @event.listens_for(world.engine, "checkin")
    def _in(*_: object) -> None:
        held[0] -= 1

    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)
            sent[case.operation.label] = sent.get(case.operation.label, 0) + 1

        run()
    assert len(sent) == len(operations) and sum(sent.values()) >= 1000, sent
    assert peak[0] == 1  # no request ever holds two pooled connections (a pool-exhaustion deadlock under load)
