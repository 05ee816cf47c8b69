"""The FastAPI application: routers, problem+json errors, request ids, body limits, Prometheus metrics, and
interactive docs served from local files (no CDN: on-premise banks run without internet)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import Engine, event
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openice import deployment
from openice.api import admin, collections, deals, funding, gateway, hybrid, lending, loans, problems, settlements
from openice.api.deps import Services
from openice.api.problems import Problem, problem
from openice.api.settings import Settings
from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.pii import PiiVault
from openice.decisioning.scorer_protocol import ScorerLike
from openice.errors import NotFound, OpeniceError
from openice.relay import Relay
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits

log = logging.getLogger("openice.api")
REQUESTS = Counter("openice_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "openice_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# The service's own /metrics and request ids stay; FastAPI's OpenTelemetry instrumentation is on with the setting
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": Problem, "content": {problems.MEDIA_TYPE: {}}, "description": problems.TITLES[s]}
    for s in (401, 403, 404, 409, 413, 422, 429, 503)
}


class Edge:
    """Pure ASGI middleware: request id in and out, a hard body-size limit, Prometheus timing by route, and a
    gate on how many requests run at once.

    The gate keeps the requests in flight within the connection pool: each holds one connection for its whole
    transaction, so with more of them than connections, threads would block waiting for a connection while the
    request holding a lock they wait on cannot get a thread to commit. Waiting at the gate costs no thread."""

    def __init__(self, app: ASGIApp, max_body: int, concurrency: int) -> None:
        self.app, self.max_body, self.concurrency = app, max_body, concurrency
        self.gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def gate(self) -> asyncio.Semaphore:
        """One semaphore per event loop (a uvicorn worker has one; test clients may start several)."""
        loop = asyncio.get_running_loop()
        if loop not in self.gates:
            self.gates[loop] = asyncio.Semaphore(self.concurrency)
        return self.gates[loop]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started, status = time.perf_counter(), [500]
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            await problem(413, f"the body is larger than {self.max_body} bytes", request_id=rid)(scope, receive, send)
            return
        seen = [0]

        async def limited() -> Message:
            message = await receive()
            seen[0] += len(message.get("body", b""))
            if seen[0] > self.max_body:
                raise HTTPException(413, f"the body is larger than {self.max_body} bytes")
            return message

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            async with self.gate():
                await self.app(scope, limited, tagged)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status[0])).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


@asynccontextmanager
async def _lifespan(services: Services, _app: FastAPI) -> AsyncIterator[None]:
    every = services.settings.offer_sweep_seconds
    sweeper = asyncio.create_task(_sweep_offers(services, every)) if every > 0 else None
    stop = asyncio.Event()
    relay = asyncio.create_task(_relay(services, stop)) if services.settings.relay else None
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await sweeper
        if relay is not None:  # its requests in flight finish (each within its timeout); the rest wait for the next
            stop.set()
            await relay


async def _relay(services: Services, stop: asyncio.Event) -> None:
    """The worker's relay, on the worker's own event loop: its HTTP is async and its database work short trips
    through threads, so the requests it has in flight hold no thread."""
    try:
        vault = services.vault
    except OpeniceError as missing:  # answers re-route drawdowns, which reads the applicant's data
        log.error("no relay in this worker: %s", missing)
        return
    await Relay(services.engine, vault, concurrency=services.settings.relay_concurrency).run(stop)


async def _sweep_offers(services: Services, every: float) -> None:
    """Offers a manual institution leaves unanswered expire on time and their drawdowns move on, whether or not
    another request comes. Every worker sweeps; an offer closes once, whichever gets there first."""
    while True:
        await asyncio.sleep(every)
        try:
            moved = await run_in_threadpool(services.sweep_offers)
        except Exception:  # the database may be down for a while: say so and try again at the next sweep
            log.exception("offer sweep failed; next try in %g s", every)
        else:
            if moved:
                log.info("expired %d unanswered offers", moved)


def _timeouts(engine: Engine, settings: Settings) -> None:
    """Bound how long one statement (PostgreSQL) or one lock wait (SQLite) may hold a request."""

    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if engine.dialect.name == "postgresql":
            cur.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
            dbapi_conn.commit()
        else:
            cur.execute(f"PRAGMA busy_timeout = {int(settings.statement_timeout_ms)}")
        cur.close()


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    scorer: ScorerLike | None = None,
    anomaly: AnomalyModel | None = None,
    vault: PiiVault | None = None,
) -> FastAPI:
    """The service over one database. Tests pass an engine, scorer and vault; `openice serve` loads them."""
    settings = settings or Settings.load()
    if engine is None:
        engine = make_engine(settings.db)
        _timeouts(engine, settings)
    if scorer is None and settings.model:
        from openice.scoring.loaded_model import Scorer

        scorer = Scorer.load(settings.model)
    services = Services(settings, engine, scorer, anomaly, vault)
    app = FastAPI(
        title="openice",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        responses=ERRORS,
        lifespan=partial(_lifespan, services),
        telemetry=None if settings.telemetry else TELEMETRY_OFF,
        description="Applications, decisions, fund matching, servicing and disclosure metrics. "
        "Errors are RFC 9457 problem+json; money is a decimal string with a currency.",
    )
    app.state.services = services
    if scorer is not None and anomaly is None:
        _ = app.state.services.decisioning.anomaly  # fitted now, not inside the first application's request
    problems.install(app)
    for module in (lending, funding, deals, settlements, loans, collections, admin, gateway, hybrid):
        app.include_router(module.router)
    app.include_router(hybrid.well_known)
    _operations(app, engine)
    app.add_middleware(Edge, max_body=settings.max_body_bytes, concurrency=settings.concurrency)
    return app


def _operations(app: FastAPI, engine: Engine) -> None:
    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="openice API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.png",
        )

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], responses={503: ERRORS[503]})
    def ready() -> Any:
        """Readiness: the database answers and has a business date; with the deployment it serves (`mode`: saas or
        on-premise, and on-premise its `institution`)."""
        try:
            Servicing(EngineUnits(engine)).business_date()
        except NotFound:
            return problem(503, "the database has no business date; run migrations first", field="database")
        with engine.connect() as conn:
            deployed = deployment.read(conn)
        return {"status": "ready", "mode": deployed.mode.value, "institution": deployed.institution}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text exposition (per worker process)."""
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


def from_env() -> FastAPI:
    """The factory uvicorn workers call (`openice serve` passes its options through the environment).

    Everything built at start-up (the model, the app, the imported libraries: some 320k objects) lives as long as
    the worker, so it is moved out of the garbage collector's view: a full collection would otherwise walk all of
    it while every request in the worker waits."""
    app = create_app(Settings.load())
    gc.collect()
    gc.freeze()
    return app
