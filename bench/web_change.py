"""Benchmark: the slowest pages before and after a change, served side by side on the same demo book and timed in
alternation, so the machine's load falls on both alike.

    .venv/bin/python -m bench.web_change --before main --workdir DIR   # DIR: a demo built by `openice demo`

The demo's database must be at a migration the `--before` code knows (built by it, or not yet migrated further).

The code of `--before` (any git revision) is exported to a scratch directory; each side gets its own copy of the
demo's database (each migrates its copy as `openice serve` does) and its own server process on loopback, and every
round asks the same page of the one side and then of the other over HTTP. Wall time is the client's; CPU per page is
the server process's CPU from the request's arrival to its response's start (the median; the server handles one
request at a time here, so it is that request's), which the machine's load does not inflate as it does wall time. Writes
bench/results/web_change.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

from bench.machine import describe, machine_facts
from bench.web import P99_GOAL_MS, percentile

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    ("desk: queue", "/desk/"),
    ("console: a loan", "/console/loans/{loan}"),
    ("console: dashboard", "/console/"),
    ("console: ledger", "/console/ledger"),
    ("console: ledger, one account", "/console/ledger?account=funding_cash"),
)
SERVER = """
import sys, time, uvicorn
from openice.api.settings import Settings
from openice.storage.engine import make_engine, migrate
from openice.web.site import create_site
db, port = sys.argv[1], int(sys.argv[2])
engine = make_engine(db)
migrate(engine)
site = create_site(Settings(db=db, rate_limit_per_second=1e9, rate_limit_burst=1e9), engine=engine)

async def timed(scope, receive, send):  # the server's CPU for the request, up to its response's start, in a header
    start = time.process_time()

    async def send_timed(message):
        if message["type"] == "http.response.start":
            spent = f"{(time.process_time() - start) * 1000:.3f}".encode()
            message = {**message, "headers": [*message.get("headers", []), (b"x-cpu-ms", spent)]}
        await send(message)

    await site(scope, receive, send_timed if scope["type"] == "http" else send)

uvicorn.run(timed, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


@dataclass
class Side:
    """One version of the code, serving its own copy of the book."""

    name: str
    code: Path
    db: Path
    process: subprocess.Popen[bytes] | None = None
    client: Any = None
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def export(revision: str, into: Path) -> None:
    """The package as it was at `revision`, without touching any checkout."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "openice"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def start(side: Side, pii_key: str, username: str, password: str) -> None:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(side.code), "OPENICE_PII_KEY": pii_key}
    # run from the side's own code: `python -c` puts the working directory first on the import path
    command = [sys.executable, "-c", SERVER, f"sqlite:///{side.db}", str(port)]
    side.process = subprocess.Popen(command, env=env, cwd=side.code)
    side.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, follow_redirects=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            login = side.client.get("/console/login")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and side.process.poll() is None, f"the {side.name} server did not start"
            time.sleep(0.2)
    token = re.search(r'name="form_token" value="([^"]+)"', login.text)
    assert token
    signed = side.client.post(
        "/console/login", data={"username": username, "password": password, "form_token": token[1]}
    )
    assert signed.status_code == 200 and "/console/" in str(signed.url), signed.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="main", help="the git revision to compare against (default main)")
    parser.add_argument("--workdir", type=Path, required=True, help="a demo built with `openice demo --workdir`")
    parser.add_argument("--rounds", type=int, default=200, help="requests of each page on each side")
    args = parser.parse_args()
    pii_key = (args.workdir / "pii.key").read_text().strip()
    os.environ["OPENICE_PII_KEY"] = pii_key

    from openice.access.users import Users
    from openice.storage.engine import make_engine
    from openice.storage.uow import EngineUnits

    scratch = Path(tempfile.mkdtemp(prefix="openice-web-change-"))
    export(args.before, scratch / "before")
    sides = [Side("before", scratch / "before", scratch / "before.db"), Side("after", ROOT, scratch / "after.db")]
    username, password = f"bench-{int(time.time())}", "bench-password-0123"
    with sqlite3.connect(args.workdir / "openice.db") as source:
        loan = source.execute("SELECT id FROM loans WHERE status = 'active' ORDER BY id LIMIT 1 OFFSET 25").fetchone()[
            0
        ]
        for side in sides:
            with sqlite3.connect(side.db) as copy:
                source.backup(copy)
    try:
        for side in sides:
            Users(EngineUnits(make_engine(f"sqlite:///{side.db}"))).create(username, password, "operator", "platform")
            start(side, pii_key, username, password)
        for label, path in PAGES:
            url = path.format(loan=loan)
            for side in sides:
                for _ in range(5):  # warm the statement caches and the templates
                    assert side.client.get(url).status_code == 200
                side.wall[label], side.cpu[label] = [], []
            for _ in range(args.rounds):
                for side in sides:
                    wall = time.perf_counter()
                    answer = side.client.get(url)
                    side.wall[label].append((time.perf_counter() - wall) * 1000)
                    side.cpu[label].append(float(answer.headers["x-cpu-ms"]))
                    assert answer.status_code == 200, (side.name, url, answer.status_code)
            timings = " | ".join(
                f"{s.name} p50 {statistics.median(s.wall[label]):6.2f} p99 {percentile(s.wall[label], 0.99):6.2f} ms"
                for s in sides
            )
            print(f"{label:30} {timings}", flush=True)
    finally:
        for side in sides:
            if side.process is not None:
                side.process.terminate()
                side.process.wait(30)
        shutil.rmtree(scratch)

    rows = []
    for label, path in PAGES:
        row: dict[str, Any] = {"page": label, "path": path.format(loan=loan)}
        for side in sides:
            row[side.name] = {
                "p50_ms": round(statistics.median(side.wall[label]), 2),
                "p99_ms": round(percentile(side.wall[label], 0.99), 2),
                "cpu_ms_per_page": round(statistics.median(side.cpu[label]), 2),
            }
        row["ratio_cpu"] = round(row["after"]["cpu_ms_per_page"] / row["before"]["cpu_ms_per_page"], 2)
        row["ratio_p50"] = round(row["after"]["p50_ms"] / row["before"]["p50_ms"], 2)
        row["ratio_p99"] = round(row["after"]["p99_ms"] / row["before"]["p99_ms"], 2)
        rows.append(row)
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.before], check=True, capture_output=True, text=True
    ).stdout.strip()
    doc = {
        "date": date.today().isoformat(),
        "command": f"python -m bench.web_change --before {args.before} --workdir DIR",
        "before": revision,
        "rounds": args.rounds,
        "pages": rows,
        "machine": machine_facts(),
    }
    out = ROOT / "bench" / "results"
    (out / "web_change.json").write_text(json.dumps(doc, indent=1) + "\n")
    with sqlite3.connect(args.workdir / "openice.db") as source:
        loans = source.execute("SELECT count(*) FROM loans").fetchone()[0]
    lines = [
        f"# web pages before and after, {doc['date']}",
        "",
        f"{describe(doc['machine'])}; demo book of {loans:,} loans, SQLite; {args.rounds} requests of each page on "
        f"each side in alternation, over HTTP to two servers on loopback (before: `{args.before}` = {revision}, "
        f"after: this checkout). Command: `{doc['command']}`. Goal: p99 at most {P99_GOAL_MS:g} ms.",
        "",
        "| page | before p50 ms | before p99 ms | before CPU ms/page | after p50 ms | after p99 ms | after CPU ms/page "
        "| after/before CPU | after/before p50 | after/before p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['page']} | {b['p50_ms']} | {b['p99_ms']} | {b['cpu_ms_per_page']} | {a['p50_ms']} | {a['p99_ms']} | "
            f"{a['cpu_ms_per_page']} | {r['ratio_cpu']} | {r['ratio_p50']} | {r['ratio_p99']} |"
        )
    (out / "web_change.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'web_change.json'} and .md")


if __name__ == "__main__":
    main()
