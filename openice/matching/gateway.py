"""The platform's side of talking to institutions over HTTP: which delivery goes out next and how it is signed,
what each attempt's outcome does (the offer's answer, the next attempt, a dead letter, the circuit), the signing
secrets, the dead letters an operator replays, and the check of a signed callback. The relay (`openice.relay`) does
the I/O; everything here is one unit of work at a time."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from openice.decisioning.pii import PiiVault
from openice.errors import Conflict, NotFound, Unauthenticated, ValidationError
from openice.matching.deliveries import (
    CallbackSignatures,
    CircuitRepository,
    DeliveryRepository,
    LoanEvents,
    SecretRepository,
)
from openice.matching.repository import InstitutionRepository, OfferRepository
from openice.matching.service import Matching
from openice.matching.webhooks import (
    SIGNATURE_HEADER,
    WINDOW_SECONDS,
    Backoff,
    SignatureError,
    event_subject,
    fingerprint,
    loan_event,
    loan_event_body,
    sign,
    verify,
)
from openice.storage.days import from_day
from openice.storage.uow import UnitsOfWork
from openice.tenancy import Principal, Role

SECRET_OVERLAP_HOURS = 24  # how long a rotated signing secret stays valid beside its successor, unless told
LEASE_SECONDS = 60.0  # how long a relay holds a delivery it is sending; past it, another relay may send it again


@dataclass(frozen=True)
class Outgoing:
    """One attempt at a delivery, ready to send: signed now, with the delivery's idempotency key."""

    delivery: Any  # its row, as leased
    delivery_id: int
    institution: str
    event_type: str
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float
    attempt: int


@dataclass(frozen=True)
class Answered:
    """An offer's answer taken from a webhook's response, and what `Matching.answer` made of it."""

    offer_id: int
    accepted: bool
    result: dict[str, Any]


class _Unit:
    def __init__(self, conn: Connection, vault: Callable[[], PiiVault]) -> None:
        self.conn = conn
        self.institutions = InstitutionRepository(conn)
        self.offers = OfferRepository(conn)
        self.deliveries = DeliveryRepository(conn)
        self.secrets = SecretRepository(conn, vault)
        self.circuits = CircuitRepository(conn)
        self.signatures = CallbackSignatures(conn)
        self.loan_events = LoanEvents(conn)


@contextmanager
def _opened(
    units: UnitsOfWork, vault: Callable[[], PiiVault], readonly: bool, savepoint: bool = True
) -> Iterator[_Unit]:
    with units.begin(readonly=readonly, savepoint=savepoint) as conn:
        yield _Unit(conn, vault)


def webhook_principal(institution: str) -> Principal:
    """The institution, answering in its webhook's response (audited as such)."""
    return Principal("webhook", Role.INSTITUTION, institution)


class Gateway:
    """The relay's side: which delivery goes out next, signed how, and what each attempt's outcome does."""

    def __init__(
        self, units: UnitsOfWork, vault: PiiVault, backoff: Backoff | None = None, rng: random.Random | None = None
    ) -> None:
        self.units = units
        self.matching = Matching(units, vault)
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.withdrawn: list[dict[str, Any]] = []  # offers this instance took back, for the caller's audit trail

    def _unit(self, readonly: bool = False) -> AbstractContextManager[_Unit]:
        """No savepoint: nothing goes on after an error inside one of these units (the relay's transaction rolls
        back, or its own savepoint around a prepare does), so the savepoint's two statements would be spent for
        nothing on every delivery."""
        return _opened(self.units, lambda: self.matching.vault, readonly, savepoint=False)

    # ---- outbound ----------------------------------------------------------------------------------
    def publish(self, now: float, limit: int = 500) -> int:
        """Queue a delivery of each new servicing event that is an institution event (`webhooks.loan_event`) to
        the loan's funder (a statement's: its institution), if it has a webhook and subscribes to it, and mark the
        events published: in one unit, so an event is queued once. Returns how many events it read. A loan event's
        body is built here, its money in major units (`webhooks.loan_event_body`); the outbox keeps minor units."""
        with self._unit() as unit:
            events = unit.loan_events.unpublished(limit)
            if not events:
                return 0
            institutions = {i.code: i for i in unit.institutions.active()}
            for event in events:
                payload = json.loads(event.payload)
                kind = loan_event(event.event_type, payload)
                code = payload.get("institution") or event.funder  # a payout's loan has passed to the platform
                inst = institutions.get(code)
                if kind is None or inst is None or inst.webhook_url is None or kind not in inst.events:
                    continue
                on = from_day(event.business_day).isoformat()
                if event.loan_id is None:  # a statement is no loan's, and carries its own currency
                    body = {"event": kind, "business_date": on, **payload}
                else:
                    body = loan_event_body(kind, event.loan_id, on, event.currency, payload)
                subject = event_subject(event.loan_id, inst.code)
                unit.deliveries.enqueue(inst.code, kind, subject, f"event-{event.id}", body, now)
            unit.loan_events.published([e.id for e in events])
            return len(events)

    def claim(self, now: float, limit: int, lease_seconds: float = LEASE_SECONDS) -> list[Any]:
        with self._unit() as unit:
            return unit.deliveries.claim(now, lease_seconds, limit)

    def prepare(self, delivery: Any, now: float) -> Outgoing | None:
        """The attempt to send for a leased delivery; None when there is nothing to send now: its offer is no
        longer open (withdrawn), or the institution's circuit is open (an offer then goes to the next institution;
        another event waits for the cool-down)."""
        with self._unit() as unit:
            inst = unit.institutions.get(delivery.institution_code)
            offer = self._open_offer(unit, delivery)
            if delivery.event_type == "offer" and offer is None:
                return None
            circuit = unit.circuits.get(inst, lock=True)
            allowed = circuit.allows(now)
            if allowed:
                if circuit.trying(now) != circuit:
                    unit.circuits.save(inst.code, circuit.trying(now))
                secrets = unit.secrets.in_use(inst.code, now)
            elif offer is None:  # another event waits for the cool-down
                unit.deliveries.postpone(
                    delivery.id, delivery.attempts, (circuit.since or now) + circuit.cooldown, "circuit open"
                )
                return None
        if not allowed:
            self._withdraw(delivery, offer, "unreachable: its circuit is open")
            return None
        if not secrets or inst.webhook_url is None:
            self.failed(delivery, delivery.attempts + 1, "no signing secret or webhook_url for the institution", now)
            return None
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secrets, int(now), body),
            "Idempotency-Key": delivery.idempotency_key,
            "Openice-Event": delivery.event_type,
            "Openice-Delivery": str(delivery.id),
        }
        return Outgoing(
            delivery,
            delivery.id,
            inst.code,
            delivery.event_type,
            inst.webhook_url,
            body,
            headers,
            inst.webhook_timeout_seconds,
            delivery.attempts + 1,
        )

    def _open_offer(self, unit: _Unit, delivery: Any, withdraw: bool = True) -> Any:
        """An offer delivery's offer while it still waits for an answer, else None (and, with `withdraw`, the
        delivery is not sent: the offer was answered, expired or re-routed meanwhile)."""
        if delivery.event_type != "offer":
            return None
        offer = unit.offers.get(json.loads(delivery.payload)["offer_id"])
        if offer.status != "sent":
            if withdraw:
                unit.deliveries.withdrawn(delivery.id, f"the offer is already {offer.status}")
            return None
        return offer

    def _withdraw(self, delivery: Any, offer: Any, why: str, dead: bool = False) -> None:
        """The offer goes to the next institution; the delivery is not sent again (a dead one stays dead)."""
        moved = self.matching.withdraw(offer, why)
        if moved is not None:
            self.withdrawn.append(moved)
        if not dead:
            with self._unit() as unit:
                unit.deliveries.withdrawn(delivery.id, why)

    def succeeded(self, out: Outgoing, answer: tuple[bool, str] | None) -> Answered | None:
        """The institution took the delivery (2xx). An offer's answer in the response goes through the same path as
        the API's accept and decline: answering again the same way changes nothing, and too late is recorded, not
        applied. Returns the answer applied (for the audit trail), or None."""
        with self._unit() as unit:
            unit.circuits.succeeded(out.institution)
            offer = self._open_offer(unit, out.delivery, withdraw=False)  # its payload, as leased, names the offer
        answered, outcome = None, "taken; answer later" if out.event_type == "offer" else "taken"
        if out.event_type == "offer" and offer is None:  # answered through the API, expired or re-routed meanwhile
            outcome = "answer not applied: the offer was no longer open"
        elif out.event_type == "offer" and answer is not None:
            accepted, reason = answer
            offer_id = offer.id
            try:
                result = self.matching.answer(webhook_principal(out.institution), offer_id, accepted, reason)
                answered = Answered(offer_id, accepted, result)
                outcome = f"{'accepted' if accepted else 'declined'}: drawdown {result['status']}"
            except (Conflict, NotFound) as late:
                outcome = f"answer not applied: {late.message}"
        with self._unit() as unit:
            unit.deliveries.delivered(out.delivery_id, out.attempt, outcome)
        return answered

    def failed(self, delivery: Any, attempt: int, error: str, now: float) -> None:
        """An attempt failed (no answer in time, a refused connection, a status other than 2xx): the next one after
        the backoff, or a dead letter once the attempts are spent. The institution's circuit counts the failure; an
        offer whose institution is out of attempts or whose circuit opened goes to the next institution."""
        with self._unit() as unit:
            inst = unit.institutions.get(delivery.institution_code)
            circuit = unit.circuits.get(inst, lock=True).failed(now)
            unit.circuits.save(inst.code, circuit)
            offer = self._open_offer(unit, delivery)
            if delivery.event_type == "offer" and offer is None:  # withdrawn: nothing left to deliver
                return
            if self.backoff.exhausted(attempt):  # the offer, if any, is withdrawn below
                unit.deliveries.dead(delivery.id, attempt, error)
            else:
                unit.deliveries.postpone(delivery.id, attempt, now + self.backoff.delay(attempt, self.rng), error)
        exhausted = self.backoff.exhausted(attempt)
        if offer is not None and (exhausted or not circuit.allows(now)):
            why = "unreachable: " + ("out of attempts" if exhausted else "its circuit opened")
            self._withdraw(delivery, offer, why, dead=exhausted)


class Webhooks:
    """What operators and institutions do with the gateway besides delivering: signing secrets, dead letters and
    their replay, and the check of a signed callback. `vault` gives the PII key the secrets are encrypted under; it
    is asked for only by what reads or writes a secret, so dead letters need no key."""

    def __init__(self, units: UnitsOfWork, vault: Callable[[], PiiVault]) -> None:
        self.units = units
        self.vault = vault

    def _unit(self, readonly: bool = False) -> AbstractContextManager[_Unit]:
        return _opened(self.units, self.vault, readonly)

    # ---- secrets -----------------------------------------------------------------------------------
    def rotate_secret(self, code: str, overlap_seconds: float, now: float) -> str:
        """A new signing secret for the institution (its first, or one replacing the current, which both sides
        keep accepting for `overlap_seconds`); shown to the operator once, to hand to the institution."""
        if overlap_seconds < 0:
            raise ValidationError("must not be negative", field="overlap")
        with self._unit() as unit:
            unit.institutions.get(code)  # NotFound for an unknown institution
            return unit.secrets.rotate(code, overlap_seconds, now)

    def status(self, code: str, now: float, limit: int = 20) -> dict[str, Any]:
        """What an institution sees of its integration: its circuit, when its secret was rotated (never the secret),
        its latest deliveries and the dead letters waiting for an operator's replay."""
        with self._unit(readonly=True) as unit:
            inst = unit.institutions.get(code)
            circuit = unit.circuits.get(inst)
            secret = unit.secrets.state(code)
            return {
                "circuit": {"state": circuit.state.value, "failures": circuit.failures, "since": circuit.since},
                "secret": None
                if secret is None
                else {
                    "rotated_at": secret.rotated_at,
                    "previous_accepted": secret.previous_until is not None and now < secret.previous_until,
                },
                "deliveries": [dict(r._mapping) for r in unit.deliveries.recent(code, limit)],
                "dead_letters": [dict(r._mapping) for r in unit.deliveries.dead_letters(True, limit, code)],
            }

    # ---- operators ---------------------------------------------------------------------------------
    def dead_letters(self, pending_only: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        with self._unit(readonly=True) as unit:
            return [dict(r._mapping) for r in unit.deliveries.dead_letters(pending_only, limit)]

    def replay(self, dead_letter_id: int, now: float) -> int:
        """Queue a dead letter's delivery again; its idempotency key is unchanged."""
        with self._unit() as unit:
            return unit.deliveries.replay(dead_letter_id, now)

    # ---- inbound -----------------------------------------------------------------------------------
    def check_callback(self, institution: str, header: str, message: bytes, now: float) -> None:
        """A callback signed by `institution` (`message` is `webhooks.callback_message`): the signature must match
        under one of its secrets, be within the timestamp window, and not have been used before (a replayed callback
        is refused). `Unauthenticated` otherwise, and the caller changes nothing."""
        with self._unit() as unit:
            secrets = unit.secrets.in_use(institution, now)
            if not secrets:
                raise Unauthenticated(f"{institution} has no signing secret", field=SIGNATURE_HEADER)
            try:
                timestamp = verify(secrets, header, message, int(now))
            except SignatureError as bad:
                raise Unauthenticated(str(bad), field=SIGNATURE_HEADER) from None
            seen = fingerprint(institution, timestamp, message)
            if not unit.signatures.first_use(seen, institution, timestamp, now - 2 * WINDOW_SECONDS):
                raise Unauthenticated("this signed callback was already taken (a replay)", field=SIGNATURE_HEADER)
