"""Benchmark of drawdowns funded through webhook institutions against the same drawdowns funded by automatic ones,
on PostgreSQL over the loopback.

    .venv/bin/python -m bench.gateway            # 400 drawdowns each way, 8 requesting threads, relay concurrency 64
    .venv/bin/python -m bench.gateway --quick    # 100 each way

Setup (not timed): a fresh PostgreSQL schema, the demo products, borrowers with approved lines (a flat scorer: the
benchmark is about the gateway, not the model), and `openice institution-sim` in a process of its own on
127.0.0.1, answering with a 50 ms median latency and accepting everything.

Baseline (same run): the drawdowns requested from --threads threads while the only institution decides
automatically (`AUTO`, the same terms): time to funding is the request's own duration.
Webhook: the same number of drawdowns while the only institution is `WEB` (webhook, the simulator), with the relay
(`openice.relay`, async HTTP, --concurrency deliveries in flight) running in this process: time to funding runs
from the request's start to the commit of the institution's answer (the delivery's delivered_at). The sustained
rate is drawdowns over the wall time until the last one is funded. Both phases record this process's CPU per
drawdown (requests, relay and database client; the simulator's own CPU is not counted) and the most threads it
ran at once (the relay holds none per request in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, select, text

from bench.load import PG, bureau_rows, free_port, metric
from bench.machine import describe, machine_facts
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
from openice.storage import gateway_tables
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


def request_all(engine: Engine, vault: PiiVault, lines: list[str], n: int, threads: int, tag: str) -> list[Any]:
    """`n` drawdowns from `threads` threads, round the lines: (drawdown id, start, end, status) each."""
    matching = Matching(EngineUnits(engine), vault)

    def one(i: int) -> tuple[int, float, float, str]:
        started = time.time()
        done = matching.drawdown(lines[i % len(lines)], AMOUNT, TENOR, f"{tag}-{i}")
        return done["drawdown_id"], started, time.time(), done["status"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def auto_phase(engine: Engine, vault: PiiVault, lines: list[str], args: argparse.Namespace) -> dict[str, Any]:
    use_only(engine, vault, lender("AUTO"), lender("WEB", acceptance="webhook", webhook_url="http://127.0.0.1:9/"))

    cpu, wall = time.process_time(), time.perf_counter()
    with Threads() as threads:
        done = request_all(engine, vault, lines, args.drawdowns, args.threads, "auto")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert all(status == "funded" for *_, status in done), "an automatic drawdown was not funded"
    return {
        "rate": args.drawdowns / wall,
        "funding_ms": [(end - start) * 1000 for _, start, end, _ in done],
        "cpu_ms": cpu / args.drawdowns * 1000,
        "threads": threads.most,
    }


def webhook_phase(
    engine: Engine, vault: PiiVault, lines: list[str], args: argparse.Namespace, url: str
) -> dict[str, Any]:
    use_only(engine, vault, lender("WEB", acceptance="webhook", webhook_url=url), lender("AUTO"))
    relay = Relay(engine, vault, concurrency=args.concurrency, poll_seconds=0.02)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(relay.run(stop),), daemon=True)
    cpu, wall = time.process_time(), time.perf_counter()
    with Threads() as threads:
        runner.start()
        done = request_all(engine, vault, lines, args.drawdowns, args.threads, "web")
        deadline = time.monotonic() + 600
        while pending(engine) and time.monotonic() < deadline:
            time.sleep(0.01)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        loop.call_soon_threadsafe(stop.set)
        runner.join(timeout=60)
    funded = funded_at(engine)
    assert len(funded) == args.drawdowns, f"{args.drawdowns - len(funded)} webhook drawdowns were not funded"
    return {
        "rate": args.drawdowns / wall,
        "funding_ms": [(funded[d] - start) * 1000 for d, start, _, _ in done],
        "cpu_ms": cpu / args.drawdowns * 1000,
        "threads": threads.most,
    }


def pending(engine: Engine) -> bool:
    d = gateway_tables.deliveries.c
    with engine.connect() as conn:
        return conn.execute(select(d.id).where(d.status == "pending").limit(1)).first() is not None


def funded_at(engine: Engine) -> dict[int, float]:
    """Each webhook drawdown's funding moment: the commit of its offer's accepted answer."""
    d = gateway_tables.deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(select(d.subject, d.delivered_at, d.outcome).where(d.event_type == "offer")).all()
    return {
        int(r.subject.split("/")[1]): datetime.fromisoformat(r.delivered_at).timestamp()
        for r in rows
        if r.outcome == "accepted: drawdown funded"
    }


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("OPENICE_TEST_PG_URL", PG))
    parser.add_argument("--schema", default="openice_gateway_bench")
    parser.add_argument("--drawdowns", type=int, default=400)
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--threads", type=int, default=8, help="threads requesting drawdowns")
    parser.add_argument("--concurrency", type=int, default=64, help="the relay's deliveries in flight")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the simulator's median")
    parser.add_argument("--quick", action="store_true", help="100 drawdowns each way")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.quick:
        args.drawdowns, args.lines = 100, 10
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        parser.error("the benchmark runs against loopback only")
    load_before = [round(x, 2) for x in os.getloadavg()]
    vault = PiiVault(parse_key(new_key()))
    print(f"setting up {args.lines} lines in schema {args.schema} ...", flush=True)
    engine, lines = setup(args, vault)
    idle_web = lender("WEB", acceptance="webhook", webhook_url="http://127.0.0.1:9/")
    Matching(EngineUnits(engine), vault).register_institutions([idle_web])
    secret = Webhooks(EngineUnits(engine)).rotate_secret("WEB", 0, time.time())
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
        auto = auto_phase(engine, vault, lines, args)
        print(f"webhook: {args.drawdowns} drawdowns, relay concurrency {args.concurrency} ...", flush=True)
        web = webhook_phase(engine, vault, lines, args, f"http://127.0.0.1:{port}/webhook")
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gateway.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# gateway benchmark, {doc['date']}",
        "",
        f"`{doc['command']}`. {describe(doc['machine'])}. Sizes: {doc['sizes']}. Load average before: {load_before}.",
        "",
        "| metric | value | unit | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target'] or ''} | {r['baseline'] or ''} | "
        f"{'' if r['baseline_value'] is None else r['baseline_value']} | "
        f"{'' if r['ratio'] is None else r['ratio']} |"
        for r in results
    ]
    (args.out / "gateway.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
