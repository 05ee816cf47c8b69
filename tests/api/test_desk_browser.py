"""The collections desk in a real Chromium (Debian's, headless) against the live service on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from tests.api.conftest import World

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """The world's app behind a real HTTP server on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(world.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_an_agent_works_the_queue_and_records_a_promise(world: World, served: str) -> None:
    assert CHROMIUM.exists(), "the browser test needs Debian's chromium: apt-get install chromium (scripts/test.sh)"
    world.first_due()
    loan = world.ids[1]["loan"]
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served) else None)
            page.goto(f"{served}/desk/")
            page.fill("#key", "not-a-key")
            page.click("#connect button")
            expect(page.locator("#status")).to_contain_text("Could not connect")
            page.fill("#key", world.keys["collections"])
            page.click("#connect button")
            expect(page.locator("#queue tbody tr")).to_have_count(2)
            expect(page.locator("#summary tbody tr")).to_have_count(1)
            expect(page.locator("#summary tbody td").first).to_have_text("M1")
            expect(page.locator("#chart rect")).to_have_count(1)

            page.locator("#queue tbody tr").filter(has=page.locator(f"td:nth-child(2):text-is('{loan}')")).click()
            expect(page.locator("#history li")).to_have_count(1)
            expect(page.locator("#history li").first).to_contain_text("opened")
            page.select_option("#outcome", "promise")
            page.fill("#promise-amount", "300.00")
            page.fill("#promise-date", "2026-03-30")  # beyond the 14 days a promise may run
            page.click("#contact button")
            expect(page.locator("#error")).to_contain_text("promise.by")
            expect(page.locator("#history li")).to_have_count(1)  # nothing recorded

            page.fill("#promise-date", "2026-02-20")
            page.click("#contact button")
            expect(page.locator("#history li")).to_have_count(2)
            expect(page.locator("#case-line")).to_contain_text("promise of 300.00 CNY by 2026-02-20")
            expect(page.locator("#queue tbody tr")).to_have_count(1)  # held out of the queue while it runs
            expect(page.locator("#error")).to_be_hidden()

            page.fill("#agents", "ann, bob")
            page.click("#assign button")
            expect(page.locator("#status")).to_contain_text("Assigned: ann 1, bob 0")
        finally:
            browser.close()
    assert outside == []  # everything the page needs comes from the service itself
    [case] = world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    assert case["promise"]["amount"] == {"amount": "300.00", "currency": "CNY"} and case["assignee"]
