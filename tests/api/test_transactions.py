"""One transaction per request: the change, its audit row and its idempotency record commit together or not at
all, so a failed or killed request leaves nothing "in progress"."""

from __future__ import annotations

from sqlalchemy import event, func, insert, select

from openice.clock import now_iso
from openice.decisioning.domain import ApplicationInput
from openice.idempotency import request_hash
from openice.storage import api_tables, servicing_tables
from openice.storage.idempotency_tables import idempotency_keys
from tests.api.conftest import World
from tests.decisioning.helpers import application_body, good_application


def test_a_repayment_commits_once_with_its_audit_row(world: World) -> None:
    world.first_due()
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    event.listen(world.engine, "commit", count)
    try:
        paid = world.call(
            "borrower1",
            "POST",
            f"/v1/loans/{world.ids[1]['loan']}/repayments",
            key="p1",
            json={"amount": "10.00", "currency": "CNY"},
        )
    finally:
        event.remove(world.engine, "commit", count)
    assert paid.status_code == 201, paid.text
    assert len(commits) == 1  # auth, tenant check, the payment, its idempotency record and the audit row
    with world.engine.connect() as conn:
        audit = conn.execute(
            select(api_tables.audit_log).where(api_tables.audit_log.c.action == "loan.repayment")
        ).one()
    assert f'"transaction_id": {paid.json()["transaction_id"]}' in audit.detail


def test_a_failed_request_leaves_no_claim_audit_or_change(world: World) -> None:
    bid = world.ids[1]["borrower"]
    with world.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(api_tables.audit_log)).scalar_one()
    failed = world.call(
        "borrower1",
        "POST",
        f"/v1/borrowers/{bid}/applications",
        key="k-fail",
        json=application_body(product_code="NO-SUCH"),
    )
    assert failed.status_code == 404 and failed.json()["field"] == "product_code"
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(api_tables.audit_log)).scalar_one() == before
        assert conn.execute(select(idempotency_keys).where(idempotency_keys.c.key.like("%k-fail"))).first() is None
    retried = world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="k-fail", json=application_body()
    )
    assert retried.status_code == 201, retried.text  # the key was never left claimed


def test_a_claim_abandoned_by_a_dead_process_is_taken_over(world: World) -> None:
    """A committed claim without a response (a process that died between claiming and answering) does not
    block the key: the retry does the work and stores the response."""
    bid = world.ids[1]["borrower"]
    body = application_body()
    with world.engine.begin() as conn:
        conn.execute(
            insert(idempotency_keys).values(
                key=f"borrower/{bid}/k-dead",
                operation=f"apply:{bid}",
                request_hash=request_hash(
                    f"apply:{bid}", ApplicationInput.model_validate(good_application()).model_dump(mode="json")
                ),
                created_at=now_iso(),
            )
        )
    taken = world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="k-dead", json=body)
    assert taken.status_code == 201, taken.text
    again = world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="k-dead", json=body)
    assert again.json() == taken.json()
    with world.engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(servicing_tables.loans)).scalar_one() == 2
        )  # nothing else moved
