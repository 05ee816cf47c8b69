"""`Servicing(booked=...)`: what a caller records about a booking runs inside the booking's unit of work, once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from openice.servicing.service import Servicing
from openice.storage import servicing_tables
from openice.storage.uow import EngineUnits

TERMS = dict(product_code="CASH-EI", principal=100_000, tenor=12, funder="bank-a", business_model="capital-light")


def transactions(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(servicing_tables.transactions)).scalar_one()


def test_the_hook_runs_once_per_booking_and_its_failure_undoes_the_booking(
    servicing: Servicing, engine: Engine
) -> None:
    seen: list[tuple[str, Any]] = []
    audited = Servicing(
        EngineUnits(engine), booked=lambda operation, result: seen.append((operation, result["loan_id"]))
    )
    loan = audited.originate(**TERMS, idempotency_key="o1")["loan_id"]
    audited.originate(**TERMS, idempotency_key="o1")  # replayed: booked once, reported once
    assert seen == [("originate", loan)]

    def refuse(_operation: str, _result: dict[str, Any]) -> None:
        raise RuntimeError("the audit row could not be written")

    before = transactions(engine)
    with pytest.raises(RuntimeError):
        Servicing(EngineUnits(engine), booked=refuse).prepay(loan, 1_000, "p1")
    assert transactions(engine) == before  # the hook is inside the booking's unit: neither stays
    audited.prepay(loan, 1_000, "p1")  # the key was not left used
    assert [op for op, _ in seen] == ["originate", "prepay"]
