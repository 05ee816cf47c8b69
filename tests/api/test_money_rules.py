"""Money that callers must not be able to move: backdated payments, write-offs without a reason, recoveries beyond
what was written off. Each is a 4xx problem naming the field, and changes nothing."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from openice.storage import api_tables, servicing_tables
from tests.api.conftest import World


def _transactions(world: World) -> int:
    with world.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(servicing_tables.transactions)).scalar_one()


def test_only_an_operator_backdates_a_payment_with_a_reason_in_open_books(world: World) -> None:
    world.first_due()  # business date 2026-02-16: the 2026-02-15 installments are a day past due
    loan = world.ids[1]["loan"]
    url = f"/v1/loans/{loan}/repayments"
    on_due_date = {"amount": "10.00", "currency": "CNY", "value_date": "2026-02-15"}
    before = _transactions(world)
    for who, body, status, field in (
        ("borrower1", {**on_due_date, "reason": "I paid on time"}, 403, "value_date"),
        ("collections", {**on_due_date, "reason": "agent says so"}, 403, "value_date"),
        ("operator", on_due_date, 422, "reason"),
        ("operator", {**on_due_date, "value_date": "2026-01-31", "reason": "statement"}, 422, "value_date"),
    ):
        refused = world.call(who, "POST", url, key=f"k-{who}-{status}-{field}", json=body)
        assert refused.status_code == status, refused.text
        assert refused.json()["field"] == field
    assert _transactions(world) == before
    paid = world.call("operator", "POST", url, key="k-ok", json={**on_due_date, "reason": "bank statement 0215"})
    assert paid.status_code == 201, paid.text
    listed = world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    assert [(x["value_date"], x["reason"]) for x in listed] == [("2026-02-15", "bank statement 0215")]
    with world.engine.connect() as conn:
        audit = conn.execute(
            select(api_tables.audit_log.c.detail).where(api_tables.audit_log.c.action == "loan.repayment")
        ).scalar_one()
    assert json.loads(audit) == {
        "transaction_id": paid.json()["transaction_id"],
        "value_date": "2026-02-15",
        "reason": "bank statement 0215",
    }
    today = world.call(
        "borrower1", "POST", url, key="k-today", json={"amount": "10.00", "currency": "CNY", "value_date": "2026-02-16"}
    )
    assert today.status_code == 201, today.text  # today's value date is every payer's


def test_write_off_needs_a_reason_when_current_and_recoveries_stop_at_what_was_written_off(world: World) -> None:
    loan = world.ids[1]["loan"]  # 10,000.00 CNY, disbursed today, not past due
    refused = world.call("operator", "POST", f"/v1/loans/{loan}/write-off", key="wo-1")
    assert refused.status_code == 422 and refused.json()["field"] == "reason", refused.text
    done = world.call(
        "operator", "POST", f"/v1/loans/{loan}/write-off", key="wo-2", json={"reason": "identity fraud confirmed"}
    )
    assert done.status_code == 201 and done.json()["status"] == "written_off", done.text
    url = f"/v1/loans/{loan}/recoveries"
    before = _transactions(world)
    for n, amount in enumerate(("10000.01", "9999999999999.99")):
        over = world.call("collections", "POST", url, key=f"r-over-{n}", json={"amount": amount, "currency": "CNY"})
        assert over.status_code == 422 and over.json()["field"] == "amount", over.text
        assert "10,000.00 CNY still written off" in over.json()["detail"]
    assert _transactions(world) == before
    whole = world.call("collections", "POST", url, key="r-all", json={"amount": "10000.00", "currency": "CNY"})
    assert whole.status_code == 201, whole.text
