"""The metrics endpoint computes a quarter once however many ask at once, and again only when the book changed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from openice.analytics import metrics
from tests.api.conftest import World


def test_forty_concurrent_requests_cost_one_computation(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.first_due()
    real = metrics.compute
    calls: list[float] = []

    def slow_compute(*args: Any, **kwargs: Any) -> Any:  # long enough for all forty to arrive while it runs
        calls.append(time.monotonic())
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "compute", slow_compute)

    def ask(_: int) -> Any:
        return world.call("operator", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"})

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(ask, range(40)))
    assert {a.status_code for a in answers} == {200}
    assert len(calls) == 1 and len({a.text for a in answers}) == 1
    assert ask(0).text == answers[0].text and len(calls) == 1  # later: the result at once
    # A booking changes the book: the next request computes again, and sees it.
    paid = world.call(
        "borrower1",
        "POST",
        f"/v1/loans/{world.ids[1]['loan']}/repayments",
        key="p1",
        json={"amount": "10.00", "currency": "CNY"},
    )
    assert paid.status_code == 201, paid.text
    assert ask(0).status_code == 200 and len(calls) == 2
    # An institution shares the split computation but sees only its own rows.
    own = world.call("INST-A", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"}).json()
    groups = {r["group"].get("institution") for m in own["metrics"].values() for r in m["rows"]}
    assert groups <= {"INST-A", None} and len(calls) == 3
    assert world.call("INST-B", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"}).status_code == 200
    assert len(calls) == 3
