"""The relay: delivers institution events from the deliveries table to the institutions' webhooks, at least once
and in order per subject, with async HTTP (one event loop; no thread waits on an institution).

Each delivery is leased (`Gateway.claim`), prepared and signed, sent, and its outcome recorded in one transaction
with whatever the institution's answer does and its audit rows. A relay killed mid-batch leaves its leases to run
out; the next relay sends those deliveries again under the same idempotency key, and an answer applied twice is
applied once (`Matching.answer` replays an answer given the same way). `openice relay` runs it alone; `openice
serve` runs one in each worker (their leases keep them apart).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

import httpx
from sqlalchemy import Connection, Engine

from openice.access.audit import record_audit, record_expiries
from openice.decisioning.pii import PiiVault
from openice.matching.gateway import LEASE_SECONDS, Answered, Gateway, Outgoing, webhook_principal
from openice.matching.webhooks import Backoff, parse_answer
from openice.storage.uow import JoinedUnits

log = logging.getLogger("openice.relay")
T = TypeVar("T")


class Relay:
    def __init__(
        self,
        engine: Engine,
        vault: PiiVault,
        concurrency: int = 64,
        poll_seconds: float = 0.2,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.engine, self.vault = engine, vault
        self.concurrency, self.poll_seconds, self.lease_seconds = concurrency, poll_seconds, lease_seconds
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()

    def _in_transaction(self, request_id: str, work: Callable[[Gateway, Connection], T]) -> T:
        """`work` in one transaction, with the offers it took back audited in it."""
        with self.engine.connect() as conn, conn.begin():
            gateway = Gateway(JoinedUnits(conn), self.vault, self.backoff, self.rng)
            done = work(gateway, conn)
            for moved in gateway.withdrawn:
                detail = {k: v for k, v in moved.items() if k != "offer_id"}
                record_audit(conn, None, request_id, "offer.withdrawn", f"offer/{moved['offer_id']}", detail)
            return done

    def _claim(self, limit: int) -> tuple[int, list[Outgoing]]:
        """In one trip: new loan events queued, up to `limit` due deliveries leased, and each prepared (signed, or
        withdrawn or postponed when there is nothing to send). How many it leased, and what to send."""

        def claim_and_prepare(gateway: Gateway, conn: Connection) -> tuple[int, list[Outgoing]]:
            now = time.time()
            gateway.publish(now)
            leased, ready = gateway.claim(now, limit, self.lease_seconds), list[Outgoing]()
            for delivery in leased:
                withdrawn = len(gateway.withdrawn)
                try:
                    with conn.begin_nested():
                        out = gateway.prepare(delivery, now)
                except Exception:  # this one waits for its lease to run out; the batch goes on
                    del gateway.withdrawn[withdrawn:]
                    log.exception(
                        "delivery %s could not be prepared; it goes again when its lease runs out", delivery.id
                    )
                    continue
                if out is not None:
                    ready.append(out)
            return len(leased), ready

        return self._in_transaction("relay", claim_and_prepare)

    async def _call(self, request_id: str, work: Callable[[Gateway, Connection], T]) -> T:
        return await asyncio.to_thread(self._in_transaction, request_id, work)

    async def deliver(self, client: httpx.AsyncClient, out: Outgoing) -> None:
        """Send one prepared attempt and record its outcome. An error of the relay's own (the database away) leaves
        the lease to run out, and the delivery to a later attempt."""
        rid = f"delivery-{out.delivery_id}"
        try:
            error, answer = await self._send(client, out)
            if error is None:
                await self._call(rid, lambda g, conn: _audit_answer(conn, rid, out, g.succeeded(out, answer)))
            else:
                await self._call(rid, lambda g, _: g.failed(out.delivery, out.attempt, error, time.time()))
        except Exception:
            log.exception("delivery %s: the relay failed; it goes again when its lease runs out", out.delivery_id)

    @staticmethod
    async def _send(client: httpx.AsyncClient, out: Outgoing) -> tuple[str | None, tuple[bool, str] | None]:
        try:
            response = await client.post(out.url, content=out.body, headers=out.headers, timeout=out.timeout)
        except httpx.TimeoutException:
            return f"no answer within {out.timeout:g} s", None
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}", None
        if not response.is_success:
            return f"HTTP {response.status_code}", None
        return None, parse_answer(response.content)

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(limits=httpx.Limits(max_connections=self.concurrency))

    async def once(self) -> int:
        """Take up to the concurrency of the deliveries due now, send them and wait for their outcomes; how many it
        took (those withdrawn or postponed on the way included)."""
        async with self._http() as http:
            leased, ready = await asyncio.to_thread(self._claim, self.concurrency)
            await asyncio.gather(*(self.deliver(http, out) for out in ready))
            return leased

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, with up to `concurrency` requests in flight; then let those finish (each
        has its timeout) and return: a clean shutdown leaves no lease behind."""
        in_flight: set[asyncio.Task[None]] = set()
        async with self._http() as http:
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    room, leased = self.concurrency - len(in_flight), 0
                    ready: list[Outgoing] = []
                    if room > 0:
                        try:
                            leased, ready = await asyncio.to_thread(self._claim, room)
                        except Exception:
                            log.exception("the relay could not read its queue; next try in %g s", self.poll_seconds)
                    for out in ready:
                        task = asyncio.create_task(self.deliver(http, out))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                    if leased < room or room <= 0:  # the queue is empty for now, or every slot is busy
                        await asyncio.wait(
                            {stopping, *in_flight}, timeout=self.poll_seconds, return_when="FIRST_COMPLETED"
                        )
            finally:
                stopping.cancel()
                with suppress(asyncio.CancelledError):
                    await stopping
                if in_flight:
                    await asyncio.wait(in_flight)


def _audit_answer(conn: Connection, request_id: str, out: Outgoing, answered: Answered | None) -> None:
    """The answer in a webhook's response, audited as the API audits one given through the institution's key."""
    if answered is None:
        return
    result = answered.result
    record_expiries(conn, request_id, result["expired"])
    record_audit(
        conn,
        webhook_principal(out.institution),
        request_id,
        f"offer.{'accepted' if answered.accepted else 'declined'}",
        f"offer/{answered.offer_id}",
        {"drawdown_id": result["drawdown_id"], "drawdown_status": result["status"], "loan_id": result["loan_id"]},
    )
