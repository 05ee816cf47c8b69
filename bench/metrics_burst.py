"""Burst benchmark of the metrics endpoint: forty analysts ask for the same quarter at once, on `openice serve`
over PostgreSQL, loopback only.

    .venv/bin/python -m bench.metrics_burst            # 200 borrowers, 40 concurrent metric requests, 1 worker
    .venv/bin/python -m bench.metrics_burst --quick    # 50 borrowers

Setup (not timed): bench/load.py's world (demo products, institutions, a model package, borrowers with funded
loans, business days closed until the first installments are due).

Warm-up (not measured): loan reads, and one metrics request for another quarter, as a serving worker has made.
Idle (the baseline, same run, same server): GET /v1/loans/{id} one after another for --reads requests; its p99.
Burst: --burst concurrent GET /v1/portfolio/metrics for the current quarter while the same reads go on; the reads'
p99 during the burst against the idle p99 (target: within 2x), how many times the server computed the metrics
(from its own openice_metric_computations_total; target 1 per worker), and the server's CPU per metrics request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.load import World, free_port, group_cpu, kill_group, metric, setup, start_server
from bench.machine import machine_facts
from bench.published import check_loopback, loopback_options, publish

COMPUTATIONS = "openice_metric_computations_total"


def computations(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(COMPUTATIONS + " "))


async def reads(client: httpx.AsyncClient, world: World, until: asyncio.Event | None, count: int) -> list[float]:
    """Loan reads one after another: `count` of them, or (in a burst) until the burst is over and `count` are done."""
    auth = {"Authorization": f"Bearer {world.operator}"}
    loans = [loan for b in world.borrowers for loan in b.loans]
    out: list[float] = []
    while len(out) < count or (until is not None and not until.is_set()):
        started = time.perf_counter()
        answer = await client.get(f"/v1/loans/{loans[len(out) % len(loans)]}", headers=auth)
        if answer.status_code != 200:
            raise RuntimeError(f"loan read answered {answer.status_code}: {answer.text[:200]}")
        out.append(time.perf_counter() - started)
    return out


async def burst(
    client: httpx.AsyncClient, world: World, n: int, quarter: str, count: int
) -> tuple[list[float], list[float]]:
    auth = {"Authorization": f"Bearer {world.operator}"}
    done = asyncio.Event()

    async def ask() -> float:
        started = time.perf_counter()
        answer = await client.get("/v1/portfolio/metrics", params={"quarter": quarter}, headers=auth, timeout=600)
        if answer.status_code != 200:
            raise RuntimeError(f"metrics answered {answer.status_code}: {answer.text[:200]}")
        return time.perf_counter() - started

    reader = asyncio.create_task(reads(client, world, done, count))
    await asyncio.sleep(0.05)  # the reads are under way before the burst lands
    metrics = await asyncio.gather(*(ask() for _ in range(n)))
    done.set()
    return await reader, list(metrics)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    loopback_options(parser)
    parser.add_argument("--schema", default="openice_burst")
    parser.add_argument("--borrowers", type=int, default=200)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--quick", action="store_true", help="50 borrowers")
    args = parser.parse_args()
    if args.quick:
        args.borrowers = 50
    if not 1 <= args.burst <= 200 or not 10 <= args.reads <= 10_000 or not 1 <= args.workers <= 4:
        parser.error("keep --burst in 1..200, --reads in 10..10000 and --workers in 1..4")
    check_loopback(parser, args)
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"setting up {args.borrowers} borrowers in schema {args.schema} ...", flush=True)
    world = setup(args)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(world, port, args.workers)
    try:
        quarter = "2026Q1"  # the setup's book is open in February 2026: a partly closed quarter

        async def run() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                await reads(client, world, None, 50)  # warm: statements built and prepared (not measured)
                # A serving worker has computed metrics before: the statement shapes are transpiled (not measured).
                warm = await client.get(
                    "/v1/portfolio/metrics",
                    params={"quarter": "2025Q4"},
                    headers={"Authorization": f"Bearer {world.operator}"},
                    timeout=600,
                )
                if warm.status_code != 200:
                    raise RuntimeError(f"metrics answered {warm.status_code}: {warm.text[:200]}")
                idle = await reads(client, world, None, args.reads)
                before_cpu, before_n = group_cpu(server.pid), computations(base)
                started = time.perf_counter()
                during, metrics = await burst(client, world, args.burst, quarter, args.reads)
                return {
                    "idle": idle,
                    "during": during,
                    "metrics": metrics,
                    "wall": time.perf_counter() - started,
                    "cpu": group_cpu(server.pid) - before_cpu,
                    "computed": computations(base) - before_n,
                }

        got = asyncio.run(run())
    finally:
        kill_group(server)
    idle_p99, burst_p99 = pct(got["idle"], 99), pct(got["during"], 99)
    results = [
        metric("loan_read_p99_idle", idle_p99, "ms", None),
        metric(
            "loan_read_p99_during_burst",
            burst_p99,
            "ms",
            f"<= 2x idle ({2 * idle_p99} ms)",
            "loan_read_p99_idle, same run and server",
            idle_p99,
        ),
        metric(
            "loan_read_p50_during_burst", pct(got["during"], 50), "ms", None, "loan_read_p50_idle", pct(got["idle"], 50)
        ),
        metric(
            "metric_computations_in_burst",
            got["computed"],
            "count",
            args.workers,
            f"{args.burst} concurrent metric requests",
            args.burst,
        ),
        metric("metrics_request_p99", pct(got["metrics"], 99), "ms", None),
        metric("server_cpu_per_metrics_request", round(got["cpu"] / args.burst * 1000, 2), "ms", None),
    ]
    doc = {
        "name": "metrics_burst",
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "load_average_before": load_before,
        "sizes": {
            "borrowers": args.borrowers,
            "burst": args.burst,
            "reads": args.reads,
            "workers": args.workers,
            "reads_during_burst": len(got["during"]),
        },
        "results": results,
    }
    publish(args.out, doc, "metrics burst benchmark")


if __name__ == "__main__":
    main()
