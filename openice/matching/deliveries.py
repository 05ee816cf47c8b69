"""Repositories of the institution gateway: the deliveries of institution events (at least once, in order per
subject), their dead letters, the institutions' signing secrets and circuit breakers, and the signatures of
callbacks already taken."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openice.clock import now_iso
from openice.decisioning.pii import PiiVault
from openice.errors import Conflict, NotFound
from openice.matching.institutions import Institution
from openice.matching.webhooks import Circuit, CircuitState
from openice.storage import gateway_tables, servicing_tables

_DELIVERIES = gateway_tables.deliveries
_D = _DELIVERIES.c
_EARLIER = _DELIVERIES.alias("earlier")
# The relay's statements, built once with bound parameters: it runs them for every delivery.
_FREE = or_(_D.lease_until.is_(None), _D.lease_until <= bindparam("now"))
_DUE = (
    select(_D.id)
    .where(
        _D.status == "pending",
        _D.next_attempt_at <= bindparam("now"),
        _FREE,
        ~exists().where(_EARLIER.c.subject == _D.subject, _EARLIER.c.status == "pending", _EARLIER.c.id < _D.id),
    )
    .order_by(_D.id)
    .limit(bindparam("limit"))
)
_LEASE = (
    update(_DELIVERIES)
    .where(_D.id == bindparam("delivery_id"), _D.status == "pending", _FREE)
    .values(lease_until=bindparam("until"))
)
_DELIVERY = select(_DELIVERIES).where(_D.id == bindparam("delivery_id"))
_TRIPPED = select(gateway_tables.institution_circuits).where(
    gateway_tables.institution_circuits.c.state != CircuitState.CLOSED.value
)  # every drawdown's routing reads it


class DeliveryRepository:
    """Deliveries wait as `pending` until `next_attempt_at`; a relay leases a due one (`lease_until`) while it sends
    it, so a relay that dies leaves it to the next once the lease runs out. Of a subject's pending deliveries only
    the oldest is due: an institution sees a loan's events in the order they happened."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def enqueue(
        self, institution: str, event_type: str, subject: str, key: str, payload: dict[str, Any], now: float
    ) -> int:
        return int(
            self.conn.execute(
                insert(_DELIVERIES)
                .values(
                    institution_code=institution,
                    event_type=event_type,
                    subject=subject,
                    idempotency_key=key,
                    payload=json.dumps(payload, default=str, sort_keys=True, separators=(",", ":")),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now_iso(),
                )
                .returning(_D.id)
            ).scalar_one()
        )

    def claim(self, now: float, lease_seconds: float, limit: int) -> list[Any]:
        """Lease up to `limit` due deliveries, oldest first: each by a conditional UPDATE, so two relays never
        hold the same one."""
        due = self.conn.execute(_DUE, {"now": now, "limit": limit}).scalars().all()
        claimed = []
        for delivery_id in due:
            lease = {"delivery_id": delivery_id, "now": now, "until": now + lease_seconds}
            if self.conn.execute(_LEASE, lease).rowcount == 1:
                claimed.append(delivery_id)
        if not claimed:
            return []
        return list(self.conn.execute(select(_DELIVERIES).where(_D.id.in_(claimed)).order_by(_D.id)))

    def get(self, delivery_id: int) -> Any:
        row = self.conn.execute(_DELIVERY, {"delivery_id": delivery_id}).first()
        if row is None:
            raise NotFound(f"no delivery {delivery_id}", field="delivery_id")
        return row

    def delivered(self, delivery_id: int, attempts: int, outcome: str) -> None:
        self._close(delivery_id, "delivered", attempts, outcome=outcome, delivered_at=now_iso())

    def withdrawn(self, delivery_id: int, outcome: str) -> None:
        """Not worth sending any more (its offer was answered, expired or re-routed meanwhile)."""
        self._close(delivery_id, "withdrawn", None, outcome=outcome)

    def postpone(self, delivery_id: int, attempts: int, at: float, error: str | None) -> None:
        """Back to the queue until `at`, having taken `attempts` attempts so far."""
        self.conn.execute(
            update(_DELIVERIES)
            .where(_D.id == delivery_id)
            .values(attempts=attempts, next_attempt_at=at, lease_until=None, last_error=error)
        )

    def dead(self, delivery_id: int, attempts: int, error: str) -> int:
        """Out of attempts: a dead letter an operator may replay."""
        row = self.get(delivery_id)
        self._close(delivery_id, "dead", attempts, last_error=error)
        return int(
            self.conn.execute(
                insert(gateway_tables.dead_letters)
                .values(
                    delivery_id=delivery_id,
                    institution_code=row.institution_code,
                    event_type=row.event_type,
                    attempts=attempts,
                    last_error=error,
                    created_at=now_iso(),
                )
                .returning(gateway_tables.dead_letters.c.id)
            ).scalar_one()
        )

    def _close(self, delivery_id: int, status: str, attempts: int | None, **values: Any) -> None:
        if attempts is not None:
            values["attempts"] = attempts
        self.conn.execute(
            update(_DELIVERIES).where(_D.id == delivery_id).values(status=status, lease_until=None, **values)
        )

    def dead_letters(self, pending_only: bool = True, limit: int = 100, institution: str | None = None) -> list[Any]:
        letters = gateway_tables.dead_letters
        query = (
            select(letters, _D.subject, _D.idempotency_key)
            .join(_DELIVERIES, _D.id == letters.c.delivery_id)
            .order_by(letters.c.id)
            .limit(limit)
        )
        if institution is not None:
            query = query.where(letters.c.institution_code == institution)
        return list(self.conn.execute(query.where(letters.c.replayed_at.is_(None)) if pending_only else query))

    def recent(self, institution: str, limit: int) -> list[Any]:
        """An institution's latest deliveries, newest first."""
        columns = [c for c in _DELIVERIES.c if c.name not in ("payload", "lease_until")]
        query = select(*columns).where(_D.institution_code == institution).order_by(_D.id.desc()).limit(limit)
        return list(self.conn.execute(query))

    def replay(self, dead_letter_id: int, now: float) -> int:
        """Send a dead letter's delivery again, from its first attempt, under the same idempotency key (so an
        institution that did take it once takes it once). A letter replays once."""
        letters = gateway_tables.dead_letters
        letter = self.conn.execute(select(letters).where(letters.c.id == dead_letter_id)).first()
        if letter is None:
            raise NotFound(f"no dead letter {dead_letter_id}", field="dead_letter_id")
        done = self.conn.execute(
            update(letters)
            .where(letters.c.id == dead_letter_id, letters.c.replayed_at.is_(None))
            .values(replayed_at=now_iso())
        )
        if done.rowcount != 1:
            raise Conflict(f"dead letter {dead_letter_id} was already replayed", field="dead_letter_id")
        self.conn.execute(
            update(_DELIVERIES)
            .where(_D.id == letter.delivery_id)
            .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
        )
        return int(letter.delivery_id)


class LoanEvents:
    """Servicing's outbox, read by the gateway: its events not yet published, oldest first, with each loan's funder
    when the event happened (the institution it concerns, though the loan has since passed to the platform) and its
    currency (its money's). Publishing marks them, in the transaction that queues their deliveries."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def unpublished(self, limit: int) -> list[Any]:
        """Locked until the unit ends, so two relays publish each event once and a loan's events in order."""
        outbox, loans = servicing_tables.outbox, servicing_tables.loans
        query = (
            select(
                *(c for c in outbox.c if c.name != "funder"),
                func.coalesce(outbox.c.funder, loans.c.funder).label("funder"),  # as it was, else as it is
                loans.c.currency,
            )
            .join(loans, loans.c.id == outbox.c.loan_id, isouter=True)
            .where(outbox.c.published.is_(False))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return list(self.conn.execute(query.with_for_update(of=outbox)))

    def published(self, ids: list[int]) -> None:
        outbox = servicing_tables.outbox
        self.conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published=True))


class SecretRepository:
    """Each institution's signing secret, and the one it replaced while their overlap lasts: encrypted under the PII
    key, each bound to its institution, so the table alone (a backup, a replica) signs nothing."""

    def __init__(self, conn: Connection, vault: Callable[[], PiiVault]) -> None:
        self.conn = conn
        self.vault = vault  # asked for only when a secret is read or written

    def in_use(self, code: str, now: float) -> list[str]:
        """The secrets a request is signed with and a callback may be signed with: the current one first."""
        s = gateway_tables.institution_secrets.c
        row = self.conn.execute(select(gateway_tables.institution_secrets).where(s.institution_code == code)).first()
        if row is None:
            return []
        overlap = row.previous is not None and row.previous_until is not None and now < row.previous_until
        sealed = [row.current, row.previous] if overlap else [row.current]
        vault, context = self.vault(), gateway_tables.secret_context(code)
        return [vault.decrypt(context, token) for token in sealed]

    def state(self, code: str) -> Any:
        """When the institution's secret was last rotated and until when the previous one is accepted (no secret
        itself)."""
        table = gateway_tables.institution_secrets
        query = select(table.c.rotated_at, table.c.previous_until).where(table.c.institution_code == code)
        return self.conn.execute(query).first()

    def rotate(self, code: str, overlap_seconds: float, now: float) -> str:
        """A new current secret; the old one stays valid for `overlap_seconds` so the institution can switch over."""
        table = gateway_tables.institution_secrets
        fresh = secrets.token_hex(32)
        sealed = self.vault().encrypt(gateway_tables.secret_context(code), fresh)
        row = self.conn.execute(select(table).where(table.c.institution_code == code)).first()
        if row is None:
            self.conn.execute(insert(table).values(institution_code=code, current=sealed, rotated_at=now_iso()))
        else:
            self.conn.execute(
                update(table)
                .where(table.c.institution_code == code)
                .values(
                    current=sealed, previous=row.current, previous_until=now + overlap_seconds, rotated_at=now_iso()
                )
            )
        return fresh


class CircuitRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, inst: Institution, lock: bool = False) -> Circuit:
        """The institution's circuit (closed if it never failed); `lock` holds it until the unit ends."""
        c = gateway_tables.institution_circuits.c
        query = select(gateway_tables.institution_circuits).where(c.institution_code == inst.code)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return _circuit(inst, row)

    def save(self, code: str, circuit: Circuit) -> None:
        table = gateway_tables.institution_circuits
        values = dict(state=circuit.state.value, failures=circuit.failures, since=circuit.since)
        done = self.conn.execute(update(table).where(table.c.institution_code == code).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(table).values(institution_code=code, **values))

    def succeeded(self, code: str) -> None:
        """A delivery went through: the institution's circuit is as `Circuit.succeeded` leaves it, in one statement
        that writes (and locks) nothing when it was closed with no failures already, as on nearly every delivery."""
        table, closed = gateway_tables.institution_circuits, Circuit().succeeded()
        self.conn.execute(
            update(table)
            .where(table.c.institution_code == code)
            .where(or_(table.c.state != closed.state.value, table.c.failures != closed.failures))
            .values(state=closed.state.value, failures=closed.failures, since=closed.since)
        )

    def tripped(self, institutions: Mapping[str, Institution]) -> dict[str, Circuit]:
        """The circuits of `institutions` that are not closed (one statement, however many institutions)."""
        rows = self.conn.execute(_TRIPPED)
        return {
            r.institution_code: _circuit(institutions[r.institution_code], r)
            for r in rows
            if r.institution_code in institutions
        }


def _circuit(inst: Institution, row: Any) -> Circuit:
    threshold, cooldown = inst.circuit_threshold, inst.circuit_cooldown_seconds
    if row is None:
        return Circuit(threshold=threshold, cooldown=cooldown)
    return Circuit(CircuitState(row.state), row.failures, row.since, threshold, cooldown)


class CallbackSignatures:
    """Signatures of the callbacks already taken: one seen again is a replay."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def first_use(self, signature: str, code: str, signed_at: float, forget_before: float) -> bool:
        """Remember `signature`; False if it was already used. Signatures older than `forget_before` (outside the
        timestamp window, so refused anyway) are forgotten on the way."""
        table = gateway_tables.callback_signatures
        self.conn.execute(delete(table).where(table.c.signed_at < forget_before))
        try:
            with self.conn.begin_nested():  # two copies at once: the second finds the first's key taken
                self.conn.execute(insert(table).values(signature=signature, institution_code=code, signed_at=signed_at))
        except IntegrityError:
            return False
        return True
