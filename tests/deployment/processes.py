"""Run openice as it is deployed: `openice serve` as a real process on a free loopback port against a given database,
ready once it answers /ready, stopped (SIGTERM, then SIGKILL) at teardown; and PostgreSQL databases of their own
for such processes, created under unique names and dropped afterwards. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 120.0  # a cold start loads the model and the numerical libraries on a shared machine
STOP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    """This checkout's `openice`, with none of the caller's OPENICE_ settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENICE_")}
    return env | {"PYTHONPATH": str(ROOT)} | extra


@dataclass
class Server:
    """A running `openice serve`: its address, a client on it and what it wrote to stderr so far."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def call(self, method: str, path: str, secret: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {secret}", **({"Idempotency-Key": key} if key else {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@contextmanager
def serving(db: str, *args: str, **env: str) -> Iterator[Server]:
    """`openice serve --db DB ARGS` on 127.0.0.1 and a free port, yielded once /ready answers 200; a process that
    ends or does not get ready in time fails the test with its stderr."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "openice", "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port)]
                + list(args),
                env=environment(**env),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                start_new_session=True,  # its workers stop with it
            )
            url = f"http://127.0.0.1:{port}"
            client = httpx.Client(base_url=url, timeout=60)
            try:
                _wait_ready(process, client, log)
                yield Server(url, process, log, client)
            finally:
                client.close()
                _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], client: httpx.Client, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"openice serve ended ({process.returncode}): {log.read_text(errors='replace')}")
        try:
            if client.get("/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"openice serve not ready in {READY_SECONDS:g} s: {log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn finishes the requests in flight), then SIGKILL to the whole session if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)


@contextmanager
def postgres_database(server_url: str, purpose: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, named for its purpose and unique; its URL, and the
    database dropped afterwards (the processes that used it are gone by then; WITH (FORCE) ends any straggler)."""
    name = f"openice_{purpose}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
