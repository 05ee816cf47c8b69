"""Benchmark of drawdowns funded through webhook institutions against the same drawdowns funded by automatic ones,
on PostgreSQL over the loopback.

    .venv/bin/python -m bench.gateway            # 400 drawdowns each way, 16 at once, relay concurrency 64
    .venv/bin/python -m bench.gateway --quick    # 100 each way

Setup (not timed): a fresh PostgreSQL schema, the demo products, borrowers with approved lines (a flat scorer: the
benchmark is about the gateway, not the model), and `openice institution-sim` in a process of its own on
127.0.0.1, answering with a 50 ms median latency and accepting everything.

Both phases run the same closed loop: --threads threads each request a drawdown and, once it is funded, the next.
Baseline (same run): the only institution decides automatically (`AUTO`, the same terms): a drawdown is funded
when its request returns. Webhook: the only institution is `WEB` (webhook, the simulator), with the relay
(`openice.relay`, async HTTP, up to --concurrency deliveries in flight) running in this process: a drawdown is
funded when the relay has recorded the institution's answer (it tells the waiting thread; no polling). Time to
funding runs from the request's start; the sustained rate is drawdowns over the phase's wall time. Both phases
record this process's CPU per drawdown (requests, relay, database client; not the simulator's or the database
server's) and the most threads it ran at once (the relay holds none per request in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, text

from bench.load import bureau_rows, free_port, metric
from bench.machine import machine_facts
from bench.published import check_loopback, loopback_options, publish
from openice.decisioning.pii import PiiVault, new_key, parse_key
from openice.decisioning.policy import Policy
from openice.decisioning.service import Decisioning
from openice.decisioning.synthetic import application, registration
from openice.matching.gateway import Webhooks
from openice.matching.institutions import CreditBox, Institution
from openice.matching.service import Matching
from openice.relay import Relay
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

ROOT = Path(__file__).resolve().parents[1]
START = date(2026, 1, 15)
AMOUNT, TENOR = 100_000, 12  # 1,000.00 per drawdown


@dataclass(frozen=True)
class FlatScore:
    pd: float = 0.03
    score: float = 680.0
    grade: str = "B"
    reasons: tuple[str, ...] = ()


class FlatScorer:
    """Every applicant the same score."""

    package_hash = "flat-" + "0" * 59

    def score(self, _application: dict[str, Any]) -> FlatScore:
        return FlatScore()


def lender(code: str, **terms: Any) -> Institution:
    return Institution(
        code=code,
        name=code,
        business_model="capital-light",
        funding_cost="0.04",
        rate="0.08",
        credit_box=CreditBox(max_pd=0.4),
        daily_quota=10**13,
        monthly_quota=10**14,
        **terms,
    )


def setup(args: argparse.Namespace, vault: PiiVault) -> tuple[Engine, list[str]]:
    admin = create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {args.schema}"))
    admin.dispose()
    engine = make_engine(f"{args.pg}?options=-csearch_path%3D{args.schema}")
    migrate(engine, START)
    units = EngineUnits(engine)
    servicing = Servicing(units)
    for product in demo_products():
        servicing.create_product(product)
    decisioning = Decisioning(units, FlatScorer(), vault, Policy.from_json({"max_pd": 0.4}))
    rng, bureau, lines, k = np.random.default_rng(7), bureau_rows(), [], 0
    while len(lines) < args.lines:
        k += 1
        bid = decisioning.register(registration(rng, k, START))["borrower_id"]
        app = application(rng, "CASH-EI", TENOR)
        app.update(income_monthly=max(app["income_monthly"], 3_000_000), requested_amount=5_000_000)
        app["bureau"] = bureau[k % len(bureau)]
        decision = decisioning.apply(bid, app)
        if decision["line_id"] is not None:
            lines.append(decision["line_id"])
    return engine, lines


def use_only(engine: Engine, vault: PiiVault, active: Institution, idle: Institution) -> None:
    """Route to `active` alone: `idle` is registered, then switched off."""
    matching = Matching(EngineUnits(engine), vault)
    matching.register_institutions([idle, active])
    with engine.begin() as conn:
        conn.execute(text("UPDATE institutions SET active = 0 WHERE code = :c"), {"c": idle.code})


class Threads:
    """The most threads this process ran at once while the block ran."""

    def __init__(self) -> None:
        self.most, self.stop = threading.active_count(), threading.Event()

    def __enter__(self) -> Threads:
        def sample() -> None:
            while not self.stop.wait(0.01):
                self.most = max(self.most, threading.active_count())

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop.set()
        self.thread.join()


class Signalling(Relay):
    """The relay, telling the requesting thread when its drawdown's delivery has been answered and recorded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def waiter(self, subject: str) -> threading.Event:
        with self.lock:
            return self.answered.setdefault(subject, threading.Event())

    async def deliver(self, client: Any, out: Any) -> None:
        await super().deliver(client, out)
        self.waiter(out.delivery.subject).set()


def request_all(
    engine: Engine, vault: PiiVault, lines: list[str], args: argparse.Namespace, tag: str, relay: Signalling | None
) -> list[float]:
    """`args.drawdowns` drawdowns, each of `args.threads` threads asking for the next once its last is funded (the
    request returns funded, or the webhook's answer funds it): each one's time to funding, in ms."""
    matching = Matching(EngineUnits(engine), vault)

    def one(i: int) -> float:
        started = time.perf_counter()
        done = matching.drawdown(lines[i % len(lines)], AMOUNT, TENOR, f"{tag}-{i}")
        if relay is not None:
            answered = relay.waiter(f"drawdown/{done['drawdown_id']}")
            while not answered.wait(60) or not funded(engine, done["drawdown_id"]):
                answered.clear()
        elif done["status"] != "funded":
            raise RuntimeError(f"drawdown {done['drawdown_id']} was not funded automatically")
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(args.threads) as pool:
        return list(pool.map(one, range(args.drawdowns)))


def funded(engine: Engine, drawdown_id: int) -> bool:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status FROM drawdowns WHERE id = :d"), {"d": drawdown_id}).first()
    return row is not None and row.status == "funded"


def phase(
    engine: Engine, vault: PiiVault, lines: list[str], args: argparse.Namespace, url: str | None
) -> dict[str, Any]:
    """One run of the drawdowns: to the automatic institution (`url` None), or to the webhook one at `url` with
    the relay running in this process."""
    web = lender("WEB", acceptance="webhook", webhook_url=url or "http://127.0.0.1:9/")
    if url:
        use_only(engine, vault, web, lender("AUTO"))
    else:
        use_only(engine, vault, lender("AUTO"), web)
    relay = Signalling(engine, vault, concurrency=args.concurrency, poll_seconds=0.01) if url else None
    stop, loop = asyncio.Event(), asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(relay.run(stop),), daemon=True) if relay else None
    cpu, wall = time.process_time(), time.perf_counter()
    with Threads() as threads:
        if runner is not None:
            runner.start()
        times = request_all(engine, vault, lines, args, "web" if url else "auto", relay)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if runner is not None:
            loop.call_soon_threadsafe(stop.set)
            runner.join(timeout=60)
    return {
        "rate": args.drawdowns / wall,
        "funding_ms": times,
        "cpu_ms": cpu / args.drawdowns * 1000,
        "threads": threads.most,
    }


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    loopback_options(parser)
    parser.add_argument("--schema", default="openice_gateway_bench")
    parser.add_argument("--drawdowns", type=int, default=400)
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--threads", type=int, default=16, help="drawdowns waiting for funding at once")
    parser.add_argument("--concurrency", type=int, default=64, help="the relay's deliveries in flight")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the simulator's median")
    parser.add_argument("--quick", action="store_true", help="100 drawdowns each way")
    args = parser.parse_args()
    if args.quick:
        args.drawdowns, args.lines = 100, 10
    check_loopback(parser, args)
    load_before = [round(x, 2) for x in os.getloadavg()]
    vault = PiiVault(parse_key(new_key()))
    print(f"setting up {args.lines} lines in schema {args.schema} ...", flush=True)
    engine, lines = setup(args, vault)
    idle_web = lender("WEB", acceptance="webhook", webhook_url="http://127.0.0.1:9/")
    Matching(EngineUnits(engine), vault).register_institutions([idle_web])
    secret = Webhooks(EngineUnits(engine), lambda: vault).rotate_secret("WEB", 0, time.time())
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "openice", "institution-sim", "--port", str(port), "--latency-ms", str(args.latency_ms)],
        env={**os.environ, "OPENICE_SIM_SECRET": secret, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while b"institution simulator on" not in (sim.stderr.readline() if sim.stderr else b""):
            if time.monotonic() > deadline or sim.poll() is not None:
                raise RuntimeError("the simulator did not start")
        print(f"auto: {args.drawdowns} drawdowns from {args.threads} threads ...", flush=True)
        auto = phase(engine, vault, lines, args, None)
        print(f"webhook: {args.drawdowns} drawdowns, relay concurrency {args.concurrency} ...", flush=True)
        web = phase(engine, vault, lines, args, f"http://127.0.0.1:{port}/webhook")
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    write(args, auto, web, load_before)


def write(args: argparse.Namespace, auto: dict[str, Any], web: dict[str, Any], load_before: list[float]) -> None:
    auto_p50, auto_p99 = pct(auto["funding_ms"], 50), pct(auto["funding_ms"], 99)
    results = [
        metric("auto_drawdowns_per_second", round(auto["rate"], 1), "1/s", None),
        metric(
            "webhook_drawdowns_per_second",
            round(web["rate"], 1),
            "1/s",
            None,
            "auto_drawdowns_per_second, same run",
            round(auto["rate"], 1),
        ),
        metric("auto_time_to_funding_p50", auto_p50, "ms", None),
        metric("auto_time_to_funding_p99", auto_p99, "ms", None),
        metric(
            "webhook_time_to_funding_p50",
            pct(web["funding_ms"], 50),
            "ms",
            f">= the simulator's {args.latency_ms:g} ms",
            "auto_time_to_funding_p50",
            auto_p50,
        ),
        metric(
            "webhook_time_to_funding_p99", pct(web["funding_ms"], 99), "ms", None, "auto_time_to_funding_p99", auto_p99
        ),
        metric("auto_cpu_per_drawdown", round(auto["cpu_ms"], 2), "ms", None),
        metric(
            "webhook_cpu_per_drawdown",
            round(web["cpu_ms"], 2),
            "ms",
            None,
            "auto_cpu_per_drawdown",
            round(auto["cpu_ms"], 2),
        ),
        metric("auto_most_threads", auto["threads"], "count", None),
        metric(
            "webhook_most_threads",
            web["threads"],
            "count",
            f"not {args.concurrency} more than auto",
            "auto_most_threads",
            auto["threads"],
        ),
    ]
    doc = {
        "name": "gateway",
        "date": date.today().isoformat(),
        "command": "python -m bench.gateway" + (" --quick" if args.quick else ""),
        "machine": machine_facts(),
        "load_average_before": load_before,
        "sizes": {
            "drawdowns": args.drawdowns,
            "lines": args.lines,
            "threads": args.threads,
            "relay_concurrency": args.concurrency,
            "simulator_median_latency_ms": args.latency_ms,
        },
        "results": results,
    }
    publish(args.out, doc, "gateway benchmark")


if __name__ == "__main__":
    main()
