"""A list costs a fixed number of statements whatever its page size: no query per row. Every list operation of the
app (each operation answering a `Page`, from its route table) is read a row at a time and two rows at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from openice.matching.deliveries import DeliveryRepository
from openice.matching.repository import MatchingRunRepository
from openice.storage import funding_tables
from tests.api.conftest import World


@contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """The statements the database receives meanwhile."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(sql)

    event.listen(world.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(world.engine, "before_cursor_execute", count)


def list_paths(world: World) -> list[str]:
    """The list operations, by their page schema; a path parameter a list takes is a loan or an institution."""
    found = []
    for path, methods in world.client.app.openapi()["paths"].items():
        answer = methods.get("get", {}).get("responses", {}).get("200", {})
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("$ref", "").startswith("#/components/schemas/Page_"):
            found.append(path.format(loan_id=world.ids[1]["loan"], code="INST-A"))
    return found


def test_a_page_of_two_rows_runs_the_statements_of_a_page_of_one(world: World) -> None:
    world.first_due()  # collection cases open on both loans
    for n in range(2):
        paid = world.call(
            "borrower1",
            "POST",
            f"/v1/loans/{world.ids[1]['loan']}/repayments",
            key=f"pay-{n}",
            json={"amount": "10.00", "currency": "CNY"},
        )
        assert paid.status_code == 201, paid.text
    with world.engine.begin() as conn:
        for n in range(2):
            MatchingRunRepository(conn).add(20_500, 1, 1.0, 1.0, {})
            deliveries = DeliveryRepository(conn)
            deliveries.dead(deliveries.enqueue("INST-A", "loan.funded", "loan/1", f"k{n}", {}, 0.0), 8, "HTTP 503")
            deal = {"name": f"DEAL {n}", "funder": f"ABS:DEAL {n}", "currency": "CNY", "definition": "{}"}
            conn.execute(
                funding_tables.abs_deals.insert().values(
                    **deal,
                    derecognise=False,
                    cut_off_day=0,
                    pool_balance=100_000,
                    loans=1,
                    after_entry=0,
                    created_at="",
                )
            )  # two deals to list (a deal's issue is tested in tests/funding)
    made = world.call("INST-A", "POST", "/v1/institutions/INST-A/keys", key="second", json={"label": "two"})
    assert made.status_code == 201, made.text  # the institution's second key
    paths = list_paths(world)
    assert len(paths) >= 12 and "/v1/credit-lines" in paths and "/v1/drawdowns" in paths
    for path in paths:
        cost = {}
        for n in (2, 1, 2):  # the first read warms what a worker builds once
            with statements(world) as seen:
                page = world.call("operator", "GET", path, params={"limit": n})
            assert page.status_code == 200 and len(page.json()["items"]) == n, (path, page.text)
            cost[n] = len(seen)
        assert cost[1] == cost[2], (path, cost)
