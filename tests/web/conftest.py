"""The API test world (two institutions, two borrowers with funded loans) served with the front-ends, a user for
every role, a signed-in client per user, and the site behind a real HTTP server for Debian's Chromium."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from openice.access.users import Users
from openice.api.settings import Settings
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from openice.web.site import create_site
from tests.api.conftest import World, build_world
from tests.decisioning.helpers import VAULT, StubScorer, anomaly_model

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple"


def make_site(engine: Engine, scorer: Any = None, **settings: Any) -> Any:
    scorer = scorer or StubScorer()
    return create_site(Settings(**settings), engine=engine, scorer=scorer, anomaly=anomaly_model(), vault=VAULT)


@dataclass
class Site:
    world: World
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> the created user

    @property
    def engine(self) -> Engine:
        return self.world.engine

    def client(self) -> TestClient:
        return TestClient(self.world.client.app)

    def signed_in(self, name: str, front: str) -> TestClient:
        client = self.client()
        response = sign_in(client, front, name, PASSWORD)
        assert response.status_code == 303, response.text
        return client


def form_token(client: TestClient, front: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', client.get(f"/{front}/login").text)
    assert found
    return found.group(1)


def sign_in(client: TestClient, front: str, username: str, password: str) -> Any:
    data = {"username": username, "password": password, "form_token": form_token(client, front), "next": ""}
    return client.post(f"/{front}/login", data=data, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


@pytest.fixture
def site(engine: Engine, servicing: Servicing) -> Site:
    return site_of(engine)


def site_of(engine: Engine, scorer: Any = None) -> Site:
    """The test world served with the front-ends, by `scorer` (the stub's by default), with a user for every role."""
    world = build_world(engine, lambda e, **settings: make_site(e, scorer, **settings))
    users = Users(EngineUnits(engine))
    made = Site(world)
    for name, role, tenant in (
        ("ops", "operator", "platform"),
        ("ann", "collections", "platform"),
        ("inst-a", "institution", "INST-A"),
        ("inst-b", "institution", "INST-B"),
        ("desk-b", "collections", "INST-B"),
    ):
        made.users[name] = users.create(name, PASSWORD, role, tenant, display_name=name.upper())
    return made


@pytest.fixture
def served(site: Site) -> Iterator[str]:
    """The site behind a real HTTP server on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(site.world.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event loop running in the
    worker while it is open, and a later module's test that calls asyncio.run() would fail."""
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install chromium (scripts/test.sh)"
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield launched
        finally:
            launched.close()


def browser_sign_in(page: Page, served: str, front: str, username: str) -> None:
    page.goto(f"{served}/{front}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(served)}/{front}/"))
