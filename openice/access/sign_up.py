"""A borrower signs up with their mobile number: a six-digit one-time code sent by text message proves they hold
it, then the borrower user is made (user name = the number, no tenant until they register their identity) and
signed in.

Guessing is bounded: a code lives five minutes and takes five wrong tries; codes are sent at most once a minute
and five times an hour per number, and twenty times an hour per client address. Only a salted hash of a code is
stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, func, insert, select, update

from openice.access.sms import SmsSender
from openice.access.users import Users, WebSession
from openice.clock import iso
from openice.decisioning.identity import check_mobile, mask_mobile
from openice.errors import Conflict
from openice.storage import api_tables
from openice.storage.uow import JoinedUnits, UnitsOfWork

CODE_DIGITS = 6
CODE_LIFE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(minutes=1)
HOUR = timedelta(hours=1)
CODES_PER_NUMBER_HOUR = 5
CODES_PER_CLIENT_HOUR = 20

_codes = api_tables.sign_up_codes


class Verdict(StrEnum):
    """What a given code turned out to be; only ACCEPTED makes the user."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    EXPIRED = "expired"  # past its five minutes, used, or never sent
    EXHAUSTED = "exhausted"  # too many wrong tries: a new code is needed


class TooSoon(Exception):
    """Codes were sent to this number (or from this client) too often lately: try again after `wait` seconds."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many codes lately; try again in {wait} seconds")
        self.wait = wait


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class SignUps:
    """Sends one-time codes and turns a right one into a signed-in borrower user."""

    def __init__(self, units: UnitsOfWork, sender: SmsSender) -> None:
        self.units, self.sender = units, sender

    def send_code(self, mobile: str, client: str, text: Callable[[str], str]) -> str:
        """Send a new code to a valid mainland number not yet signed up; `text` words the message around the code.
        Returns the number as stored (digits only)."""
        number = check_mobile(mobile)
        now = datetime.now(UTC)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        with self.units.begin() as conn:
            if conn.execute(select(api_tables.users.c.id).where(api_tables.users.c.username == number)).first():
                raise Conflict("this number has signed up already: sign in", field="mobile")
            self._throttle(conn, _digest(number), client[:64], now)
            conn.execute(
                insert(_codes).values(
                    mobile_hash=_digest(number),
                    client=client[:64],
                    salt=salt,
                    code_hash=_digest(salt, code),
                    created_at=iso(now),
                    expires_at=iso(now + CODE_LIFE),
                    attempts=0,
                )
            )
        self.sender.send(number, text(code))  # after the commit: SQLite allows one writer at a time
        return number

    @staticmethod
    def _throttle(conn: Connection, mobile_hash: str, client: str, now: datetime) -> None:
        for column, value, limit in (
            (_codes.c.mobile_hash, mobile_hash, CODES_PER_NUMBER_HOUR),
            (_codes.c.client, client, CODES_PER_CLIENT_HOUR),
        ):
            count, oldest, newest = conn.execute(
                select(func.count(), func.min(_codes.c.created_at), func.max(_codes.c.created_at)).where(
                    column == value, _codes.c.created_at >= iso(now - HOUR)
                )
            ).one()
            if count >= limit:
                raise TooSoon(int((datetime.fromisoformat(oldest) + HOUR - now).total_seconds()) + 1)
            if column is _codes.c.mobile_hash and newest is not None:
                again = datetime.fromisoformat(newest) + RESEND_AFTER
                if again > now:
                    raise TooSoon(int((again - now).total_seconds()) + 1)

    def confirm(
        self, mobile: str, code: str, password: str, locale: str, client: str
    ) -> tuple[Verdict, tuple[str, WebSession] | None]:
        """Check the latest code sent to the number; when it is right, make the borrower user with this password
        and sign them in (a new session: its cookie token and view). A wrong code counts against the code; a
        password the users refuse raises before the code is spent."""
        number = check_mobile(mobile)
        now = datetime.now(UTC)
        with self.units.begin() as conn:
            row = conn.execute(
                select(_codes)
                .where(_codes.c.mobile_hash == _digest(number), _codes.c.used_at.is_(None))
                .order_by(_codes.c.id.desc())
                .limit(1)
            ).first()
            if row is None or row.expires_at <= iso(now):
                return Verdict.EXPIRED, None
            if row.attempts >= MAX_ATTEMPTS:
                return Verdict.EXHAUSTED, None
            if not secrets.compare_digest(_digest(row.salt, code.strip()), row.code_hash):
                conn.execute(update(_codes).where(_codes.c.id == row.id).values(attempts=_codes.c.attempts + 1))
                return Verdict.WRONG, None
            conn.execute(update(_codes).where(_codes.c.id == row.id).values(used_at=iso(now)))
            Users(JoinedUnits(conn)).create(
                number, password, "borrower", None, display_name=mask_mobile(number), locale=locale
            )
        return Verdict.ACCEPTED, Users(self.units).sign_in(number, password, client)
