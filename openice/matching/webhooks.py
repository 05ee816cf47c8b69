"""The rules of talking to an institution over HTTP, pure so they are tested by hand: how a request is signed and a
signature verified, how long to wait before the next attempt, and when an institution's circuit opens.

A signature is HMAC-SHA256 over "<unix seconds>.<body>" with the institution's secret, sent as
`Openice-Signature: t=<unix seconds>,v1=<hex>`; while a rotated secret's overlap lasts, the header carries one `v1`
per secret, so the institution may check either. A verifier refuses a timestamp outside its window (a captured
request cannot be sent again later) and a signature it has already seen (nor within the window)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from openice.money import from_minor
from openice.servicing.buckets import CURRENT
from openice.servicing.settlement import READY_EVENT

# What an institution may subscribe to: the offers routed to it, and the life of the loans it funds.
Event = Literal["offer", "loan.funded", "repayment.received", "loan.overdue", "guarantee.payout", "statement.ready"]
SIGNATURE_HEADER = "Openice-Signature"
_SERVICING_EVENTS: dict[str, Event] = {
    "loan.originated": "loan.funded",
    "loan.repayment": "repayment.received",
    "loan.prepayment": "repayment.received",
    "loan.guarantee_payout": "guarantee.payout",
    READY_EVENT: "statement.ready",
}


def loan_event(kind: str, payload: dict[str, Any]) -> Event | None:
    """The institution event a servicing event is, if any: a loan that leaves the current bucket is overdue."""
    if kind == "loan.bucket_changed":
        return "loan.overdue" if payload.get("from") == CURRENT else None
    return _SERVICING_EVENTS.get(kind)


LOAN_EVENT_VERSION = 2  # the loan events' body contract: 2 gives money in major units of `currency`, 1 minor units
# The money in each loan event's detail, which servicing's outbox keeps in minor units.
LOAN_EVENT_MONEY: dict[Event, tuple[str, ...]] = {
    "loan.funded": ("principal",),
    "repayment.received": ("amount",),
    "loan.overdue": (),
    "guarantee.payout": ("amount",),
}


def loan_event_body(
    kind: Event, loan_id: int, business_date: str, currency: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """A loan event as its funder reads it: servicing's `detail` with its money as decimal strings of major units in
    the loan's `currency`, as the API gives money, so no institution has to know servicing's minor units."""
    money = {name: str(from_minor(detail[name], currency)) for name in LOAN_EVENT_MONEY[kind] if name in detail}
    head = {"event": kind, "version": LOAN_EVENT_VERSION, "loan_id": loan_id, "business_date": business_date}
    return {**head, "currency": currency, **detail, **money}


def event_subject(loan_id: int | None, institution: str) -> str:
    """What a servicing event's deliveries are ordered by: its loan's, or an institution's statements."""
    return f"loan/{loan_id}" if loan_id is not None else f"statements/{institution}"


WINDOW_SECONDS = 300  # how far a signed request's timestamp may be from the receiver's clock


class SignatureError(Exception):
    """A request whose signature does not prove it came from the holder of the secret, just now."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def callback_message(method: str, path: str, body: bytes) -> bytes:
    """What an institution's callback signs in place of the bare body: its method and path too, so a signed answer
    to one offer cannot be sent again against another."""
    return f"{method.upper()} {path}\n".encode() + body


def fingerprint(institution: str, timestamp: int, message: bytes) -> str:
    """The same signed message sent twice has the same fingerprint, however its header is written."""
    return hashlib.sha256(f"{institution}\n{timestamp}\n".encode() + message).hexdigest()


def sign(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`: one `v1` per secret in use (the current one first)."""
    if not secrets:
        raise ValueError("no secret to sign with")
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the signatures of a header; a malformed one is a `SignatureError`."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    return timestamp, signatures


def verify(secrets: Sequence[str], header: str, body: bytes, now: int, window: int = WINDOW_SECONDS) -> int:
    """The request's timestamp when one of its signatures is `body`'s under one of `secrets` and the timestamp is
    within `window` seconds of `now`; otherwise `SignatureError` saying which check failed."""
    timestamp, given = parse(header)
    if abs(now - timestamp) > window:
        raise SignatureError(f"the signature's timestamp is more than {window} s from now")
    expected = [signature(s, timestamp, body) for s in secrets]
    if not any(hmac.compare_digest(e, g) for e in expected for g in given):
        raise SignatureError("the signature does not match the body under the institution's secret")
    return timestamp


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with equal jitter: attempt n (from 1) waits between half and all of
    min(cap, base * 2^(n-1)) seconds, so retries of many deliveries spread out instead of arriving together.
    After `attempts` tries a delivery is dead."""

    base: float = 1.0
    cap: float = 300.0
    attempts: int = 8

    def ceiling(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2 ** (attempt - 1)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt `attempt`; `rng` is seeded in tests."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.attempts


class CircuitState(StrEnum):
    CLOSED = "closed"  # deliveries go out; routing offers to it
    OPEN = "open"  # too many failures in a row: nothing goes out and routing skips it until the cool-down ends
    HALF_OPEN = "half_open"  # one trial request is out: its outcome closes the circuit or opens it again


@dataclass(frozen=True)
class Circuit:
    """One institution's circuit breaker: `threshold` failures in a row open it for `cooldown` seconds; then one
    trial request goes out (half-open) and its outcome closes it or opens it again. A trial that never reports
    back (its sender died) counts as lost after another cool-down, and the next request is the trial."""

    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    since: float | None = None  # unix seconds: when it opened, or when the trial went out
    threshold: int = 5
    cooldown: float = 30.0

    def allows(self, now: float) -> bool:
        """Whether a request may go to the institution now (routing asks the same): closed, or its cool-down (or
        the lost trial's) is over."""
        if self.state is CircuitState.CLOSED:
            return True
        return self.since is None or now >= self.since + self.cooldown

    def trying(self, now: float) -> Circuit:
        """The circuit once a request goes out at `now`: past the cool-down, that request is the trial."""
        if self.state is not CircuitState.CLOSED and self.allows(now):
            return replace(self, state=CircuitState.HALF_OPEN, since=now)
        return self

    def succeeded(self) -> Circuit:
        return replace(self, state=CircuitState.CLOSED, failures=0, since=None)

    def failed(self, now: float) -> Circuit:
        """A failed request opens the circuit at the `threshold`-th failure in a row, or at once after a trial."""
        failures = self.failures + 1
        if self.state is not CircuitState.CLOSED or failures >= self.threshold:
            return replace(self, state=CircuitState.OPEN, failures=failures, since=now)
        return replace(self, failures=failures)


def parse_answer(body: bytes) -> tuple[bool, str] | None:
    """An offer's answer in the institution's response: {"decision": "accept" | "decline", "reason": "..."}, as
    (accepted, reason); None when it answers later (any other body, or none)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("decision") not in ("accept", "decline"):
        return None
    reason = data.get("reason")
    accepted = data["decision"] == "accept"
    default = "accepted" if accepted else "declined"
    return accepted, (reason[:500] if isinstance(reason, str) and reason else default)
