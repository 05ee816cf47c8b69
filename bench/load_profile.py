"""CPU per operation of the HTTP service, measured in-process: where the load benchmark's time goes.

    .venv/bin/python -m bench.load_profile --package /tmp/openice-load-model           # CPU ms per operation
    .venv/bin/python -m bench.load_profile --package DIR --py-spy --only apply,repay    # and where it is spent

Setup is `bench/load.py`'s (a fresh schema on PostgreSQL, products, institutions, borrowers with lines and funded
loans, installments due; the model package is trained first when --package is not given). The app is the one
`openice serve` builds (`create_app` from the same settings and environment), called directly through ASGI on a
uvloop event loop, one request at a time, so uvicorn's HTTP parsing and the network are left out and nothing else
competes with the request being measured. Sync endpoints still run in the thread pool, as they do when served.

For each operation of the load mix (and /health, the fixed cost of the stack) it warms up, then sends --n requests
and prints the process's CPU time per request (all threads, `time.process_time`), the PostgreSQL backends' CPU per
request (from /proc, for the backends of this app's own connections) and the wall time. The mix-weighted sum is the
figure to compare with the 2-core budget of the load target (2 cores / 300 req/s = 6.7 ms per request, for server,
database and load generator together).

With --py-spy, each operation is sampled again by py-spy (pip-installable; not a dependency of the project) and the
functions with the most samples are printed, inclusive and self.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import event

from bench import load as lb
from bench.machine import machine_facts
from openice.api.app import create_app
from openice.api.settings import Settings
from openice.storage.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]

OPS = [name for name, _ in lb.MIX] + ["health"]


async def call(
    app: Any, method: str, url: str, headers: dict[str, str], body: Any = None, params: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    """One request straight through the ASGI app."""
    payload = b"" if body is None else json.dumps(body).encode()
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"content-length", str(len(payload)).encode()), (b"host", b"127.0.0.1")]
    if body is not None:
        raw.append((b"content-type", b"application/json"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": urlencode(params or {}).encode(),
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def backend_cpu(pids: set[int]) -> float:
    """CPU seconds (user + system) of these PostgreSQL backends so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def top(collapsed: Path, n: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's raw (collapsed) output: the n functions with the most samples, inclusive and self (shares)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        k = int(count)
        total += k
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].replace(str(ROOT) + "/", "") + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        for name in set(frames):
            inclusive[name] += k
        own[frames[-1]] += k
    total = max(total, 1)
    return ([(f, c / total) for f, c in inclusive.most_common(n)], [(f, c / total) for f, c in own.most_common(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("OPENICE_TEST_PG_URL", lb.PG))
    parser.add_argument("--schema", default="openice_profile")
    parser.add_argument("--borrowers", type=int, default=40)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--n", type=int, default=200, help="measured requests per operation")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--only", help="comma-separated operations (default: the whole mix and /health)")
    parser.add_argument("--py-spy", action="store_true", help="also sample each operation with py-spy")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also print the SQL of one more request of each operation, statement by statement",
    )
    args = parser.parse_args()
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        parser.error("the profile runs against loopback only")
    ops = args.only.split(",") if args.only else OPS
    unknown = set(ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}; pick from {OPS}")
    print(f"setting up {args.borrowers} borrowers in schema {args.schema} ...", flush=True)
    world = lb.setup(argparse.Namespace(pg=args.pg, schema=args.schema, borrowers=args.borrowers, package=args.package))
    os.environ.update(world.env)
    engine = make_engine(world.url)
    backends: set[int] = set()

    @event.listens_for(engine, "connect")
    def _pid(dbapi_conn: Any, _record: Any) -> None:
        backends.add(dbapi_conn.info.backend_pid)

    statements: Counter[str] = Counter()
    trace: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1
        trace.append(" ".join(statement.split())[:150])

    app = create_app(Settings.load(db=world.url), engine=engine)
    weights = dict(lb.MIX)
    rng = np.random.default_rng(11)
    counter = [0]

    def request(op: str) -> dict[str, Any]:
        counter[0] += 1
        if op == "health":
            return dict(method="GET", url="/health", headers={})
        return lb.request_for(op, counter[0], world, rng, "profile")[1]

    async def run(op: str, n: int) -> list[int]:
        statuses = []
        for _ in range(n):
            status, body = await call(app, **request(op))
            statuses.append(status)
            if status >= 300:
                raise RuntimeError(f"{op} answered {status}: {body[:300]!r}")
        return statuses

    results: dict[str, dict[str, float]] = {}
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        for op in ops:
            runner.run(run(op, args.warmup))
            statements.clear()
            cpu0, pg0, wall0 = time.process_time(), backend_cpu(backends), time.perf_counter()
            runner.run(run(op, args.n))
            cpu, pg, wall = (time.process_time() - cpu0, backend_cpu(backends) - pg0, time.perf_counter() - wall0)
            results[op] = {
                "server_cpu_ms": 1000 * cpu / args.n,
                "db_cpu_ms": 1000 * pg / args.n,
                "wall_ms": 1000 * wall / args.n,
                "statements": sum(statements.values()) / args.n,
            }
            kinds = " ".join(f"{k} {v / args.n:.1f}" for k, v in statements.most_common())
            print(
                f"{op:15s} server CPU {results[op]['server_cpu_ms']:6.2f} ms   PostgreSQL CPU "
                f"{results[op]['db_cpu_ms']:5.2f} ms   wall {results[op]['wall_ms']:6.2f} ms   "
                f"statements {results[op]['statements']:4.1f} ({kinds})",
                flush=True,
            )
            if args.statements:
                trace.clear()
                runner.run(run(op, 1))
                print("\n".join(f"    {k:2d} {sql}" for k, sql in enumerate(trace, 1)), flush=True)
            if args.py_spy and os.path.exists(spy):
                out = Path(tempfile.mkdtemp(prefix="openice-spy-")) / f"{op}.txt"
                proc = subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(os.getpid()),
                        "--rate",
                        "400",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--gil",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
                runner.run(run(op, max(args.n, 200)))
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
                if out.exists():
                    inclusive, own = top(out, args.top)
                    print(f"  py-spy, {op}: inclusive")
                    for name, share in inclusive:
                        print(f"    {100 * share:5.1f}%  {name}")
                    print(f"  py-spy, {op}: self")
                    for name, share in own:
                        print(f"    {100 * share:5.1f}%  {name}")
    mixed = (
        {
            k: sum(weights[op] * results[op][k] for op in weights if op in results)
            / sum(weights[op] for op in weights if op in results)
            for k in ("server_cpu_ms", "db_cpu_ms")
        }
        if any(op in results for op in weights)
        else {}
    )
    load = [round(x, 2) for x in os.getloadavg()]
    if mixed:
        print(
            f"{'mix-weighted':15s} server CPU {mixed['server_cpu_ms']:6.2f} ms   PostgreSQL CPU "
            f"{mixed['db_cpu_ms']:5.2f} ms   (load average {load})"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "operations": results,
                    "mix_weighted": mixed,
                    "n": args.n,
                    "load_average_after": load,
                    "machine": machine_facts(),
                },
                indent=2,
            )
            + "\n"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
