"""Load and fault benchmark of the HTTP service: `openice serve` on PostgreSQL, loopback only.

    .venv/bin/python -m bench.load                 # 300 req/s for 60 s, 2 workers, then the fault run
    .venv/bin/python -m bench.load --quick         # 100 req/s for 10 s: a smoke run
    .venv/bin/python -m bench.load --rate 300,40 --duration S --workers N --borrowers B --fault-duration S

Each rate in --rate is one load phase on a fresh server; the fault run uses the last rate.

Setup (not timed): a fresh PostgreSQL schema, the demo products, three institutions, a model package trained on
the bundled credit_data set, B borrowers each with an approved line and one funded loan, business days closed
until the first installments are due, and an API key per borrower.

Each phase gets a fresh server, waits until all its workers have started and warms it with 5 s of the mix at
20 req/s (not measured). Load: an open-loop generator (requests start on a fixed schedule whatever the server
does, so a slow server cannot slow the clock; every request is built and encoded before the clock starts) sends a
mix of applications (each one a stored decision), drawdowns (routed and originated), repayments and reads, each
with the borrower's or the operator's key. Latency is measured from the scheduled start, so queueing in the
client counts against the server too.

Baseline (same run, unless --no-baseline): the same generator at the first rate on GET /health for
--baseline-duration seconds on a fresh server, so each phase's sustained rate also reads as a ratio of what the
HTTP stack and the generator alone sustain on this machine at that moment. Every phase records the CPU time per
request of the generator's process and of the server's process group (from /proc).

Fault: the same mix; halfway through, the server's whole process group gets SIGKILL and a new server starts.
Every repayment without an answer is retried with its Idempotency-Key until answered. Then: every acknowledged
repayment exists exactly once with its amount, no repayment exists that was not acknowledged, every journal entry
balances, and every loan's balance snapshot equals its ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text

from bench.machine import describe, machine_facts
from openice.access.keys import ApiKeys
from openice.close_of_day import run_until
from openice.datasets import load
from openice.decisioning.domain import ApplicationInput, TypedApplication
from openice.decisioning.pii import PiiVault, new_key, parse_key
from openice.decisioning.policy import Policy
from openice.decisioning.service import Decisioning
from openice.decisioning.synthetic import application, registration
from openice.matching.institutions import CreditBox, Institution
from openice.matching.service import Matching
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage import servicing_tables
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits

ROOT = Path(__file__).resolve().parents[1]

START = date(2026, 1, 15)
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MIX = (
    ("apply", 0.10),
    ("drawdown", 0.10),
    ("repay", 0.30),
    ("read_loan", 0.20),
    ("list_loans", 0.10),
    ("read_line", 0.10),
    ("list_decisions", 0.10),
)
HEALTH = (("health", 1.0),)  # the baseline: the same open-loop generator on GET /health
POLICY = {"max_pd": 0.4}
IN_FLIGHT = 64  # connections the generator keeps open; later requests queue in the client, on the clock
KEEP_ALIVE_REUSE = 3.0  # seconds an idle connection is reused; the server closes idle ones after 5


@dataclass
class Borrower:
    id: str
    key: str
    line: str
    loans: list[int]


@dataclass
class World:
    url: str
    operator: str
    borrowers: list[Borrower]
    bureau: list[dict[str, Any]]
    env: dict[str, str]


@dataclass
class Sample:
    op: str
    status: int  # 0: no answer (connection refused, reset or timed out)
    latency: float
    key: str | None = None
    loan: int | None = None
    borrower: int | None = None
    body: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0
    generator_cpu: float = 0.0  # CPU seconds of this (the generator's) process during the run
    server_cpu: float = 0.0  # CPU seconds of the server's process group (master and workers) during the run


def bureau_rows() -> list[dict[str, Any]]:
    frame = load("credit_data").frame
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.sample(2000, random_state=5).to_dict("records")
    ]


def train(package: Path | None) -> Path:
    """A model package for the served decisions (trained now when none is given; not timed)."""
    if package is not None:
        return package
    from openice.scoring.model import TrainConfig
    from openice.scoring.train import train_package

    out = Path(tempfile.mkdtemp(prefix="openice-load-")) / "credit_data"
    data = load("credit_data")
    train_package(data.frame, data.target, out, cfg=TrainConfig(inner_folds=2))
    return out


def institutions() -> list[Institution]:
    box = CreditBox(max_pd=0.4)
    return [
        Institution(
            code=code,
            name=code,
            business_model=model,
            funding_cost="0.04",
            rate=rate,
            credit_box=box,
            daily_quota=10**12,
            monthly_quota=10**13,
            priority=k,
            guarantee_payout_dpd=90 if model == "capital-heavy" else None,
        )
        for k, (code, model, rate) in enumerate(
            (
                ("BANK-1", "capital-light", "0.08"),
                ("TRUST-2", "capital-heavy", "0.07"),
                ("CFC-3", "capital-light", "0.09"),
            )
        )
    ]


def setup(args: argparse.Namespace) -> World:
    """A fresh schema with borrowers who have lines, funded loans and installments due."""
    schema = args.schema
    admin = create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    url = f"{args.pg}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate(engine, START)
    units = EngineUnits(engine)
    servicing = Servicing(units)
    for product in demo_products():
        servicing.create_product(product)
    pii_key = new_key()
    vault = PiiVault(parse_key(pii_key))
    package = train(args.package)
    from openice.scoring.loaded_model import Scorer

    decisioning = Decisioning(units, Scorer.load(package), vault, Policy.from_json(POLICY))
    matching = Matching(units, vault)
    matching.register_institutions(institutions())
    rng = np.random.default_rng(7)
    bureau = bureau_rows()
    keys = ApiKeys(units)
    borrowers: list[Borrower] = []
    k = 0
    while len(borrowers) < args.borrowers:
        k += 1
        reg = registration(rng, k, START)
        bid = decisioning.register(reg)["borrower_id"]
        app = application(rng, "CASH-EI", 12)
        app.update(
            income_monthly=max(app["income_monthly"], 1_500_000),
            requested_amount=5_000_000,
            bureau=bureau[k % len(bureau)],
        )
        decision = decisioning.apply(bid, app)
        if decision["line_id"] is None:
            continue
        funded = matching.drawdown(decision["line_id"], 300_000, 12, f"setup-{bid}")
        if funded["status"] != "funded":
            continue
        borrowers.append(
            Borrower(bid, keys.create("borrower", bid)["secret"], decision["line_id"], [funded["loan_id"]])
        )
    run_until(engine, START + timedelta(days=32))  # the first installments are due: repayments have a target
    operator = keys.create("operator", "platform")["secret"]
    policy_file = Path(tempfile.mkdtemp(prefix="openice-policy-")) / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    engine.dispose()
    env = {
        **os.environ,
        "OPENICE_PII_KEY": pii_key,
        "OPENICE_MODEL": str(package),
        "OPENICE_POLICY": str(policy_file),
        "OPENICE_RATE_LIMIT_PER_SECOND": "100000",
        "OPENICE_RATE_LIMIT_BURST": "100000",
    }
    return World(url, operator, borrowers, bureau, env)


def arun(coro: Any) -> Any:
    """Run the generator on uvloop when it is installed (it is with the api extra): less of the generator's CPU on
    the cores the server is measured on."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(world: World, port: int, workers: int) -> subprocess.Popen[bytes]:
    """`openice serve` in its own process group, so one SIGKILL takes the master and every worker."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openice",
            "serve",
            "--db",
            world.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=world.env,
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready in 120 s")


def warm(world: World, port: int, proc: subprocess.Popen[bytes], tag: str) -> None:
    """Before a measured phase (not timed): wait until every worker has finished starting (/ready answers as soon
    as one has; the others may still be loading the model), then send a few seconds of the mix at a low rate so that
    both workers have built their statements and prepared them on their connections."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        before = group_cpu(proc.pid)
        time.sleep(1.0)
        if group_cpu(proc.pid) - before < 0.1:
            break
    arun(generate(f"http://127.0.0.1:{port}", world, 20, 5, tag, 1000))


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def request_for(op: str, i: int, world: World, rng: np.random.Generator, tag: str) -> tuple[Sample, dict[str, Any]]:
    """One request of the mix: (the sample to fill in, the request's arguments)."""
    b = int(rng.integers(len(world.borrowers)))
    who = world.borrowers[b]
    auth = {"Authorization": f"Bearer {who.key}"}
    sample = Sample(op, 0, 0.0, borrower=b)
    if op == "health":
        return sample, dict(method="GET", url="/health", headers={})
    if op == "apply":
        app = application(rng, "CASH-EI", 12)
        app["bureau"] = world.bureau[i % len(world.bureau)]
        body = TypedApplication.of(ApplicationInput.model_validate(app), "CNY").model_dump(mode="json")
        key = f"{tag}-app-{i}"
        return sample, dict(
            method="POST",
            url=f"/v1/borrowers/{who.id}/applications",
            body=body,
            headers={**auth, "Idempotency-Key": key},
        )
    if op == "drawdown":
        return sample, dict(
            method="POST",
            url=f"/v1/credit-lines/{who.line}/drawdowns",
            body={"amount": "500.00", "currency": "CNY", "tenor": 12},
            headers={**auth, "Idempotency-Key": f"{tag}-dd-{i}"},
        )
    loan = who.loans[int(rng.integers(len(who.loans)))]
    if op == "repay":
        sample.key, sample.loan, sample.body = f"{tag}-pay-{i}", loan, {"amount": "1.00", "currency": "CNY"}
        return sample, dict(
            method="POST",
            url=f"/v1/loans/{loan}/repayments",
            body=sample.body,
            headers={**auth, "Idempotency-Key": sample.key},
        )
    if op == "read_loan":
        return sample, dict(method="GET", url=f"/v1/loans/{loan}", headers=auth)
    if op == "list_loans":
        return sample, dict(
            method="GET", url="/v1/loans", params={"limit": 20}, headers={"Authorization": f"Bearer {world.operator}"}
        )
    if op == "read_line":
        return sample, dict(method="GET", url=f"/v1/credit-lines/{who.line}", headers=auth)
    return sample, dict(method="GET", url="/v1/decisions", params={"limit": 10}, headers=auth)


class Wire:
    """A small HTTP/1.1 keep-alive client over asyncio streams, for the generator only: httpx spends about 1.5 ms
    of CPU a request, which on 2 shared cores would be charged to the server under test. Responses carry a
    Content-Length (uvicorn); anything unexpected is "no answer", like a refused or reset connection."""

    class Failed(Exception):
        pass

    def __init__(self, base: str, timeout: float) -> None:
        netloc = base.split("://", 1)[1]
        self.host, self.port = netloc.split(":")[0], int(netloc.split(":")[1])
        self.timeout = timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    def encode(
        self, method: str, url: str, headers: dict[str, str], body: Any = None, params: dict[str, Any] | None = None
    ) -> bytes:
        """The request's bytes on the wire (built before the clock starts: the generator shares the cores)."""
        payload = b"" if body is None else json.dumps(body).encode()
        path = url + ("?" + urlencode(params) if params else "")
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(payload)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        return head.encode() + payload

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        return await self.send(self.encode(method, url, headers, body, params))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._connection()
                writer.write(raw)
                status_line = await reader.readline()
                status, length, close = int(status_line.split()[1]), 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection":
                        close = value.strip().lower() == b"close"
                data = await reader.readexactly(length)
        except (OSError, EOFError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            raise Wire.Failed(str(exc)) from exc
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status, data

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The most recently used idle connection, unless the server may have closed it (its keep-alive is 5 s)."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < KEEP_ALIVE_REUSE:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of this process group."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def generate(
    base: str,
    world: World,
    rate: float,
    duration: float,
    tag: str,
    seed: int,
    at_half: Any = None,
    server: int | None = None,
    mix: tuple[tuple[str, float], ...] = MIX,
) -> Run:
    """Open-loop load: request i starts at t0 + i / rate; latency counts from that scheduled instant. `server` is the
    server's process group, whose CPU time is recorded; `mix` = (("health", 1.0),) is the baseline."""
    rng = np.random.default_rng(seed)
    names, weights = zip(*mix, strict=True)
    ops = rng.choice(names, size=int(rate * duration), p=np.array(weights) / sum(weights))
    run = Run()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(IN_FLIGHT)  # at most IN_FLIGHT connections; later requests wait here, on the clock
    client = Wire(base, timeout=10.0)

    async def one(sample: Sample, raw: bytes, scheduled: float) -> None:
        try:
            async with gate:
                status, data = await client.send(raw)
            sample.status = status
            if sample.op == "repay" and status == 201:
                sample.answer = json.loads(data)
        except Wire.Failed:
            sample.status = 0
        sample.latency = loop.time() - scheduled
        run.samples.append(sample)

    prepared = []  # every request built and encoded before the clock starts; the schedule is unchanged
    for i, op in enumerate(ops):
        sample, kwargs = request_for(str(op), i, world, rng, tag)
        prepared.append((sample, client.encode(**kwargs)))
    # The prepared requests and the set-up live through the phase: out of the collector's view, no full collection
    # in this process walks them mid-run and delays the requests due meanwhile (it would count against the server).
    gc.collect()
    gc.freeze()
    cpu0, server0 = time.process_time(), group_cpu(server) if server else 0.0
    t0 = loop.time()
    tasks = []
    fault = asyncio.create_task(at_half(duration / 2)) if at_half else None
    for i, (sample, raw) in enumerate(prepared):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(sample, raw, scheduled)))
    await asyncio.gather(*tasks)
    if fault:
        await fault
    run.elapsed = loop.time() - t0
    run.generator_cpu = time.process_time() - cpu0
    run.server_cpu = group_cpu(server) - server0 if server else 0.0
    client.close()
    gc.unfreeze()
    return run


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


def summarise(run: Run, mix: tuple[tuple[str, float], ...] = MIX) -> dict[str, Any]:
    ok = [s for s in run.samples if 200 <= s.status < 300]
    by_op = {}
    for name, _ in mix:
        mine = [s.latency for s in run.samples if s.op == name]
        by_op[name] = {
            "n": len(mine),
            "p50_ms": round(pct(mine, 50), 1),
            "p99_ms": round(pct(mine, 99), 1),
            "errors": sum(1 for s in run.samples if s.op == name and not 200 <= s.status < 300),
        }
    statuses: dict[str, int] = {}
    for s in run.samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    latencies = [s.latency for s in run.samples]
    return {
        "requests": len(run.samples),
        "ok": len(ok),
        "errors": len(run.samples) - len(ok),
        "rps": len(ok) / run.elapsed,
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "by_op": by_op,
        "statuses": statuses,
        "elapsed_s": run.elapsed,
        "generator_cpu_ms_per_request": 1000 * run.generator_cpu / max(len(run.samples), 1),
        "server_cpu_ms_per_request": 1000 * run.server_cpu / max(len(run.samples), 1),
    }


async def settle(base: str, world: World, pending: list[Sample]) -> int:
    """Retry every unanswered repayment with its own Idempotency-Key until it is answered; returns the retries."""
    retries = 0
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        for sample in pending:
            who = world.borrowers[sample.borrower or 0]
            for _ in range(20):
                retries += 1
                try:
                    response = await client.post(
                        f"/v1/loans/{sample.loan}/repayments",
                        json=sample.body,
                        headers={"Authorization": f"Bearer {who.key}", "Idempotency-Key": sample.key or ""},
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.5)
                    continue
                if response.status_code == 201:
                    sample.status, sample.answer = 201, response.json()
                    break
                await asyncio.sleep(0.2)
    return retries


def verify(world: World, repayments: list[Sample], first_txn: int) -> dict[str, int]:
    """No acknowledged repayment lost or doubled, no unacknowledged one booked, every entry and snapshot balanced."""
    engine = make_engine(world.url)
    acknowledged = {s.answer["transaction_id"]: s for s in repayments if s.answer}
    with engine.connect() as conn:
        booked = {
            r.id: r
            for r in conn.execute(
                select(servicing_tables.transactions).where(
                    servicing_tables.transactions.c.id > first_txn, servicing_tables.transactions.c.kind == "repayment"
                )
            )
        }
        unbalanced = conn.execute(
            select(func.count()).select_from(
                select(servicing_tables.journal_lines.c.entry_id)
                .group_by(servicing_tables.journal_lines.c.entry_id)
                .having(func.sum(servicing_tables.journal_lines.c.amount) != 0)
                .subquery()
            )
        ).scalar_one()
        ledger = {
            (r.loan_id, r.account): int(r.total)
            for r in conn.execute(
                select(
                    servicing_tables.journal_lines.c.loan_id,
                    servicing_tables.journal_lines.c.account,
                    func.sum(servicing_tables.journal_lines.c.amount).label("total"),
                ).group_by(servicing_tables.journal_lines.c.loan_id, servicing_tables.journal_lines.c.account)
            )
        }
        snapshots = list(conn.execute(select(servicing_tables.loans)))
        stuck = conn.execute(text("SELECT count(*) FROM drawdowns WHERE status = 'routing'")).scalar_one()
    engine.dispose()
    accounts = [c.name[4:] for c in servicing_tables.loans.columns if c.name.startswith("bal_")]
    mismatched = sum(1 for row in snapshots for a in accounts if getattr(row, f"bal_{a}") != ledger.get((row.id, a), 0))
    lost = sum(1 for txn in acknowledged if txn not in booked or booked[txn].amount != 100)
    return {
        "acknowledged": len(acknowledged),
        "unanswered_after_retries": sum(1 for s in repayments if not s.answer),
        "lost": lost,
        "doubled": len(set(booked) - set(acknowledged)),  # every key ends acknowledged once
        "unbalanced_entries": int(unbalanced),
        "snapshot_mismatches": mismatched,
        "drawdowns_left_routing": int(stuck),
    }


def max_txn(world: World) -> int:
    engine = make_engine(world.url)
    with engine.connect() as conn:
        value = conn.execute(select(func.coalesce(func.max(servicing_tables.transactions.c.id), 0))).scalar_one()
    engine.dispose()
    return int(value)


def fault_run(world: World, args: argparse.Namespace, port: int, rate: float) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    proc = start_server(world, port, args.workers)
    first = max_txn(world)
    restart: dict[str, float] = {}
    holder = {"proc": proc}

    async def crash(after: float) -> None:
        await asyncio.sleep(after)
        kill_group(holder["proc"])
        started = time.monotonic()
        holder["proc"] = await asyncio.to_thread(start_server, world, port, args.workers)
        restart["seconds"] = time.monotonic() - started

    run = arun(generate(base, world, rate, args.fault_duration, "fault", 99, crash))
    repayments = [s for s in run.samples if s.op == "repay"]
    pending = [s for s in repayments if not s.answer]
    retries = arun(settle(base, world, pending))
    kill_group(holder["proc"])
    checks = verify(world, repayments, first)
    return {
        "summary": summarise(run),
        "restart_seconds": restart.get("seconds"),
        "unanswered_before_retry": len(pending),
        "retries": retries,
        **checks,
    }


def metric(
    name: str, value: Any, unit: str, target: Any, baseline: str | None = None, baseline_value: float | None = None
) -> dict[str, Any]:
    """`baseline` names what was measured in the same run to compare with; ratio = value / baseline_value."""
    ratio = round(value / baseline_value, 3) if baseline_value else None
    return {
        "metric": name,
        "value": value,
        "unit": unit,
        "target": target,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
    }


def write(
    args: argparse.Namespace,
    phases: dict[float, dict[str, Any]],
    fault: dict[str, Any] | None,
    baseline: dict[str, Any] | None = None,
) -> None:
    results = []
    rates = [float(r) for r in str(args.rate).split(",")]
    base_name = f"GET /health offered {rates[0]:g} req/s, same run" if baseline else None
    base_rps = round(baseline["rps"], 1) if baseline else None
    if baseline:
        results += [
            metric("baseline_health_sustained_ok_requests_per_second", base_rps, "req/s", None),
            metric("baseline_health_latency_p99", round(baseline["p99_ms"], 1), "ms", None),
            metric(
                "baseline_health_generator_cpu_per_request",
                round(baseline["generator_cpu_ms_per_request"], 2),
                "ms",
                None,
            ),
            metric(
                "baseline_health_server_cpu_per_request", round(baseline["server_cpu_ms_per_request"], 2), "ms", None
            ),
        ]
    for rate, s in phases.items():
        results += [
            metric(
                f"offered_{rate:g}rps_sustained_ok_requests_per_second",
                round(s["rps"], 1),
                "req/s",
                300,
                base_name,
                base_rps,
            ),
            metric(f"offered_{rate:g}rps_latency_p50", round(s["p50_ms"], 1), "ms", None),
            metric(f"offered_{rate:g}rps_latency_p99", round(s["p99_ms"], 1), "ms", 100),
            metric(f"offered_{rate:g}rps_errors", s["errors"], "requests", 0),
            metric(f"offered_{rate:g}rps_server_cpu_per_request", round(s["server_cpu_ms_per_request"], 2), "ms", None),
            metric(
                f"offered_{rate:g}rps_generator_cpu_per_request",
                round(s["generator_cpu_ms_per_request"], 2),
                "ms",
                None,
            ),
        ]
    if fault:
        for name in ("lost", "doubled", "unbalanced_entries", "snapshot_mismatches", "unanswered_after_retries"):
            results.append(metric(f"fault_{name}", fault[name], "count", 0))
        results.append(metric("fault_restart_to_ready", round(fault["restart_seconds"] or -1, 2), "s", None))
    doc = {
        "name": "load",
        "date": date.today().isoformat(),
        "machine": machine_facts(),
        "note": "2 cores shared with other developers' work; the load generator, 2 server workers and "
        "PostgreSQL all run on them",
        "load_average_before": args.load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sizes": {
            "rate": args.rate,
            "duration_s": args.duration,
            "workers": args.workers,
            "borrowers": args.borrowers,
            "fault_duration_s": args.fault_duration,
        },
        "results": results,
        "baseline": baseline,
        "load": {f"{k:g}": v for k, v in phases.items()},
        "fault": fault,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    lines = [
        f"# load benchmark, {doc['date']}",
        "",
        f"{describe(doc['machine'])} at the end; {doc['note']}. Sizes: {doc['sizes']}. Load average before: "
        f"{doc['load_average_before']}, after: {doc['load_average_after']}.",
        "",
        "| metric | value | unit | target | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['value']} | {r['unit']} | {r['target']} | {r['baseline'] or ''} | "
        f"{'' if r['baseline_value'] is None else r['baseline_value']} | "
        f"{'' if r['ratio'] is None else r['ratio']} |"
        for r in results
    ]
    for rate, summary in phases.items():
        lines += [
            "",
            f"Offered {rate:g} req/s for {args.duration:g} s, by operation:",
            "",
            "| operation | requests | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {op} | {v['n']} | {v['p50_ms']} | {v['p99_ms']} | {v['errors']} |" for op, v in summary["by_op"].items()
        ]
        lines += [
            "",
            f"Status codes (0 = no answer within 10 s): {summary['statuses']}",
            f"CPU per request: server (master and workers) {summary['server_cpu_ms_per_request']:.2f} ms, "
            f"load generator {summary['generator_cpu_ms_per_request']:.2f} ms",
        ]
    if fault:
        lines += [
            "",
            f"Fault run: {json.dumps({k: v for k, v in fault.items() if k != 'summary'}, default=str)}",
            f"Fault-run status codes: {fault['summary']['statuses']}",
        ]
    (args.out / "load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("OPENICE_TEST_PG_URL", PG))
    parser.add_argument("--schema", default="openice_load")
    parser.add_argument("--rate", default="300", help="comma-separated offered rates, one load phase each")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--fault-duration", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--borrowers", type=int, default=200)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--no-fault", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the /health phase")
    parser.add_argument("--baseline-duration", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="100 req/s for 10 s, 50 borrowers, 10 s fault run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.load_before = [round(x, 2) for x in os.getloadavg()]
    if args.quick:
        args.rate, args.duration, args.borrowers, args.fault_duration = "100", 10.0, 50, 10.0
    rates = [float(r) for r in args.rate.split(",")]
    if not 1 <= args.duration <= 600 or not all(1 <= r <= 5000 for r in rates) or not 1 <= args.fault_duration <= 600:
        parser.error("keep --rate in 1..5000 and durations in 1..600 s")
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        parser.error("the benchmark runs against loopback only")
    print(f"setting up {args.borrowers} borrowers in schema {args.schema} ...", flush=True)
    world = setup(args)
    baseline = None
    if not args.no_baseline:  # the same server, generator and rate on GET /health: what the stack alone sustains
        port = free_port()
        server = start_server(world, port, args.workers)
        try:
            warm(world, port, server, "warm-health")
            baseline = summarise(
                arun(
                    generate(
                        f"http://127.0.0.1:{port}",
                        world,
                        rates[0],
                        args.baseline_duration,
                        "health",
                        0,
                        server=server.pid,
                        mix=HEALTH,
                    )
                ),
                HEALTH,
            )
        finally:
            kill_group(server)
        print(
            f"baseline, /health offered {rates[0]:g} req/s: "
            f"{json.dumps({k: v for k, v in baseline.items() if k != 'by_op'})}",
            flush=True,
        )
    phases = {}
    for n, rate in enumerate(rates):
        port = free_port()
        server = start_server(world, port, args.workers)
        try:
            warm(world, port, server, f"warm{n}")
            phases[rate] = summarise(
                arun(
                    generate(
                        f"http://127.0.0.1:{port}", world, rate, args.duration, f"load{n}", n + 1, server=server.pid
                    )
                )
            )
        finally:
            kill_group(server)
        print(
            f"offered {rate:g} req/s: {json.dumps({k: v for k, v in phases[rate].items() if k != 'by_op'})}", flush=True
        )
    fault = None if args.no_fault else fault_run(world, args, free_port(), rates[-1])
    write(args, phases, fault, baseline)


if __name__ == "__main__":
    main()
