"""The payment interface: how money a borrower pays reaches the platform before servicing books it.

A page that takes a payment books it first, inside its transaction, then asks the gateway to collect; a gateway
that declines raises, and the booking is rolled back with the rest of the transaction, so a loan is never credited
with money that was not collected. The development gateway collects at once; gateways of real payment providers
(and their settlement) plug in behind the same protocol.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from openice.errors import ValidationError


@dataclass(frozen=True)
class Collected:
    """The gateway's receipt: its own reference for the money collected."""

    reference: str
    gateway: str


class PaymentGateway(Protocol):
    def collect(self, loan_id: int, amount: int, currency: str, idempotency_key: str) -> Collected:
        """Collect `amount` minor units for the loan; the same key collects once and returns the same receipt.
        Raises a domain error (naming the field) when the payment is declined."""
        ...


class InstantPayments:
    """Development and tests: every payment succeeds at once; the reference is derived from the key, so a retried
    request gets the receipt of the first."""

    name = "instant"

    def collect(self, loan_id: int, amount: int, currency: str, idempotency_key: str) -> Collected:
        if amount <= 0:
            raise ValidationError("a payment is a positive amount", field="amount")
        digest = hashlib.sha256(f"{loan_id}/{currency}/{idempotency_key}".encode()).hexdigest()[:16]
        return Collected(reference=f"dev-{digest}", gateway=self.name)


GATEWAYS: dict[str, type[InstantPayments]] = {"instant": InstantPayments}


def gateway(name: str) -> PaymentGateway:
    """The configured gateway (`payments` setting)."""
    if name not in GATEWAYS:
        raise ValidationError(f"unknown payment gateway {name!r}; one of {sorted(GATEWAYS)}", field="payments")
    return GATEWAYS[name]()
