"""A reference institution's webhook receiver (`openice institution-sim`): it checks the platform's signature,
takes each delivery once by its idempotency key, and answers an offer at once by its credit box, after a latency
drawn around a median, failing a share of requests or all of them while it is down. For tests, the demo and the
integration work of a real institution (this is the receiver docs/gateway.md describes, in full)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openice.matching.institutions import CreditBox
from openice.matching.webhooks import SIGNATURE_HEADER, SignatureError, verify
from openice.money import to_minor

LATENCY_SPREAD = 0.25  # sigma of the log-normal latency: most answers within a third of the median either way


@dataclass
class SimulatedInstitution:
    """What the simulated institution is like; tests change `down`, `error_rate` and `latency_ms` while it runs."""

    secret: str
    box: CreditBox = field(default_factory=CreditBox)
    latency_ms: float = 0.0  # median
    error_rate: float = 0.0  # share of requests answered 503
    down_until: float = 0.0  # unix seconds: every request before then is answered 503
    answer: bool = True  # False: it takes offers and answers later through the API
    seed: int = 0
    rng: random.Random = field(init=False)
    taken: dict[str, bytes] = field(default_factory=dict)  # idempotency key -> the response it got
    received: int = 0  # requests, counting retries and refusals
    events: Counter[str] = field(default_factory=Counter)  # deliveries taken, by event
    refused: int = 0  # wrong or stale signatures

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def down_for(self, seconds: float) -> None:
        self.down_until = time.time() + seconds

    def decide(self, report: dict[str, Any]) -> dict[str, str]:
        """Accept what its credit box lets through (score, PD, amount and tenor of the report, whose money is major
        units of its `currency`; the box's is minor units)."""
        box, credit, drawdown = self.box, report["credit"], report["drawdown"]
        amount = to_minor(drawdown["amount"], report["currency"])
        checks = {
            "score": (box.min_score is None or credit["score"] >= box.min_score)
            and (box.max_score is None or credit["score"] <= box.max_score),
            "pd": box.min_pd <= credit["pd"] <= box.max_pd,
            "amount": box.min_amount <= amount <= box.max_amount,
            "tenor": box.min_tenor <= drawdown["tenor"] <= box.max_tenor,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            return {"decision": "decline", "reason": f"outside our box: {', '.join(failed)}"}
        return {"decision": "accept", "reason": "inside our credit box"}

    async def receive(self, request: Request) -> Response:
        self.received += 1
        body = await request.body()
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000 * math.exp(self.rng.gauss(0, LATENCY_SPREAD)))
        if time.time() < self.down_until or self.rng.random() < self.error_rate:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        try:
            verify([self.secret], request.headers.get(SIGNATURE_HEADER, ""), body, int(time.time()))
        except SignatureError as bad:
            self.refused += 1
            return JSONResponse({"error": str(bad)}, status_code=401)
        key = request.headers.get("Idempotency-Key", "")
        if key not in self.taken:  # a retry of a delivery already taken gets the same answer, and nothing more
            event = json.loads(body)
            self.events[event.get("event", "")] += 1
            answer = self.decide(event["report"]) if event.get("event") == "offer" and self.answer else {}
            self.taken[key] = json.dumps(answer).encode()
        return Response(self.taken[key], media_type="application/json")

    async def stats(self, _request: Request) -> Response:
        counts = {"received": self.received, "taken": len(self.taken), "refused": self.refused}
        return JSONResponse({**counts, "events": dict(self.events)})

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/webhook", self.receive, methods=["POST"]), Route("/stats", self.stats, methods=["GET"])]
        )
