"""One idempotency store for every request that moves money or creates something: servicing's money calls, the
API's creates (registration, applications, keys, offer answers, collections) and drawdowns.

A key is claimed in the caller's own transaction before the work runs (INSERT ... ON CONFLICT DO NOTHING): a
concurrent duplicate's claim waits on the key's unique index until the first commits, then replays the stored
response. The claim, the work, its audit row and the response commit together or not at all, so a request that
fails, or whose process dies, leaves no claim behind: nothing can stay "in progress".

Keys are scoped by their caller (`scoped`): an API caller's role and tenant, the CLI's own scope, so one scope's
key never replays another's response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openice.clock import now_iso
from openice.errors import Conflict, ValidationError
from openice.storage import direct
from openice.storage.idempotency_tables import KEY_LENGTH, idempotency_keys

CLI_SCOPE = "cli"

# Built once: they run on every money call and create.
_CLAIM = {
    name: dialect.insert(idempotency_keys).on_conflict_do_nothing().returning(idempotency_keys.c.key)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_CLAIMED = select(idempotency_keys).where(idempotency_keys.c.key == bindparam("key")).with_for_update()
_ANSWER = update(idempotency_keys).where(idempotency_keys.c.key == bindparam("scoped_key"))


def scoped(scope: str, key: str) -> str:
    """`key` within its caller's scope (an API caller's "role/tenant", `CLI_SCOPE`); an empty key stays empty, so
    the store refuses it."""
    return f"{scope}/{key}" if key else key


def cli_key(key: str) -> str:
    """A key given on the command line, in the CLI's scope."""
    return scoped(CLI_SCOPE, key)


def request_hash(operation: str, payload: dict[str, Any]) -> str:
    text = json.dumps({"op": operation, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Idempotency:
    """Claims a key, replays its stored response, and stores a new one, all on the caller's connection (inside
    its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(
        self, key: str | None, operation: str, payload: dict[str, Any], work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """`work()`'s result under `key`: done once, replayed after."""
        stored = self.claim(key, operation, payload)
        if stored is not None:
            return stored
        result = work()
        self.answer(key, result)
        return result

    def claim(self, key: str | None, operation: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Claim `key` for this request: None when it is new (do the work, then `answer`), else the response
        stored under it. The same key with another operation or payload is a conflict."""
        if not key or not isinstance(key, str) or len(key) > KEY_LENGTH:
            raise ValidationError(
                f"every money-moving or creating call needs an idempotency key of 1-{KEY_LENGTH} characters",
                field="idempotency_key",
            )
        digest = request_hash(operation, payload)
        claimed = direct.execute(
            self.conn,
            _CLAIM[self.conn.dialect.name],
            dict(key=key, operation=operation, request_hash=digest, created_at=now_iso()),
        ).first()
        if claimed is not None:
            return None
        row = self.conn.execute(_CLAIMED, {"key": key}).one()
        if row.operation != operation or row.request_hash != digest:
            raise Conflict(
                f"idempotency key {key!r} was already used for a different request; use a new key",
                field="idempotency_key",
            )
        if row.response is None:
            # A committed claim without a response was left by a process that died between a claim committed on
            # its own and the work (how API keys were claimed once): it is abandoned, so this request takes over.
            return None
        return json.loads(row.response)

    def answer(self, key: str | None, response: dict[str, Any]) -> None:
        """Store the response of the work done under the key this transaction claimed."""
        direct.execute(self.conn, _ANSWER, {"scoped_key": key, "response": json.dumps(response, default=str)})
