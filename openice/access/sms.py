"""Text messages to a mobile number, behind one small interface so a gateway can replace the development sender.

The development sender delivers nothing: it writes the message to the server log and to the `sms_outbox` table,
so whoever runs the service can read a one-time code. The number is kept masked; only the text is in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import insert

from openice.clock import now_iso
from openice.decisioning.identity import mask_mobile
from openice.storage import api_tables
from openice.storage.uow import UnitsOfWork

log = logging.getLogger("openice.sms")


class SmsSender(Protocol):
    def send(self, mobile: str, text: str) -> None: ...


class OutboxSms:
    """Development: the message goes to the log and the outbox, never to a phone."""

    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    def send(self, mobile: str, text: str) -> None:
        masked = mask_mobile(mobile)
        log.warning("SMS not delivered (development outbox) to %s: %s", masked, text)
        with self.units.begin() as conn:
            conn.execute(insert(api_tables.sms_outbox).values(mobile=masked, text=text, created_at=now_iso()))


# The `sms` setting names one of these.
SENDERS: dict[str, Callable[[UnitsOfWork], SmsSender]] = {"outbox": OutboxSms}
