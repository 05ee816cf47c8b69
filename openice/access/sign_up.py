"""A borrower signs up with their mobile number: a six-digit one-time code sent by text message proves they hold
it, then the borrower user is made (user name = the number, no tenant until they register their identity) and
signed in. A borrower who forgot their password proves the same way that they hold the number, and sets a new one.

Guessing is bounded: a code lives five minutes and takes five wrong tries; codes are sent at most once a minute
and five times an hour per number, and twenty times an hour per client address; a reset's wrong codes also count as
failed sign-ins of that user name. Only a salted hash of a code is stored, and the number only as a keyed hash (the
PII hashing key): eleven digits are too few for a plain hash to hide them.

Neither form tells whether a number has an account: asking for a sign-up code for a registered number, or a reset
code for one that is not, is answered as any other request (a code is even stored, never sent, so a wrong guess
reads the same); only the number's owner learns it, by the text message (or its absence).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from openice.access.sms import SmsSender
from openice.access.users import Users, WebSession, active_user, record_attempt, set_password, throttle
from openice.clock import iso
from openice.decisioning.identity import check_mobile, mask_mobile
from openice.decisioning.pii import PiiVault
from openice.storage import api_tables
from openice.storage.uow import JoinedUnits, UnitsOfWork
from openice.tenancy import Role

CODE_DIGITS = 6
CODE_LIFE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(minutes=1)
HOUR = timedelta(hours=1)
CODES_PER_NUMBER_HOUR = 5
CODES_PER_CLIENT_HOUR = 20
SIGN_UP, RESET = "sign_up", "reset"  # what a code is for

_codes = api_tables.sign_up_codes


class Verdict(StrEnum):
    """What a given code turned out to be; only ACCEPTED makes the user (or sets the new password)."""

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
    """Sends one-time codes and turns a right one into a signed-in borrower user, or a borrower's new password."""

    def __init__(self, units: UnitsOfWork, sender: SmsSender, vault: PiiVault) -> None:
        self.units, self.sender, self.vault = units, sender, vault

    def _mobile_hash(self, number: str) -> str:
        return self.vault.keyed_hash("sign_up_mobile", number)

    def send_code(
        self, mobile: str, client: str, text: Callable[[str], str], registered_text: Callable[[], str]
    ) -> str:
        """Send a new code to a valid mainland number; `text` words the message around the code. A number that has
        signed up already is told so by `registered_text` instead, and the caller sees no difference. Returns the
        number as stored (digits only)."""
        number = check_mobile(mobile)
        with self.units.begin() as conn:
            code = self._store(conn, number, SIGN_UP, client)
            taken = conn.execute(select(api_tables.users.c.id).where(api_tables.users.c.username == number)).first()
        self.sender.send(number, registered_text() if taken else text(code))  # after the commit: one SQLite writer
        return number

    def send_reset_code(self, mobile: str, client: str, text: Callable[[str], str]) -> str:
        """Send a password-reset code to a borrower's registered number; a number with no borrower account gets
        nothing, and the caller sees no difference. Returns the number as stored."""
        number = check_mobile(mobile)
        with self.units.begin() as conn:
            code = self._store(conn, number, RESET, client)
            row = active_user(conn, number)
        if row is not None and row.role == Role.BORROWER.value:
            self.sender.send(number, text(code))
        return number

    def _store(self, conn: Connection, number: str, purpose: str, client: str) -> str:
        """A new code for the number (throttled), stored as a salted hash; the code itself is returned."""
        now = datetime.now(UTC)
        mobile_hash = self._mobile_hash(number)
        self._throttle(conn, mobile_hash, client[:64], now)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        conn.execute(
            insert(_codes).values(
                mobile_hash=mobile_hash,
                purpose=purpose,
                client=client[:64],
                salt=salt,
                code_hash=_digest(salt, code),
                created_at=iso(now),
                expires_at=iso(now + CODE_LIFE),
                attempts=0,
            )
        )
        return code

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

    def _spend(self, conn: Connection, number: str, purpose: str, code: str, now: datetime) -> tuple[Verdict, Any]:
        """The verdict on the latest code of this purpose sent to the number; a wrong one counts against it, a right
        one is used up."""
        row = conn.execute(
            select(_codes)
            .where(_codes.c.mobile_hash == self._mobile_hash(number), _codes.c.purpose == purpose)
            .where(_codes.c.used_at.is_(None))
            .order_by(_codes.c.id.desc())
            .limit(1)
        ).first()
        if row is None or row.expires_at <= iso(now):
            return Verdict.EXPIRED, row
        if row.attempts >= MAX_ATTEMPTS:
            return Verdict.EXHAUSTED, row
        if not secrets.compare_digest(_digest(row.salt, code.strip()), row.code_hash):
            conn.execute(update(_codes).where(_codes.c.id == row.id).values(attempts=_codes.c.attempts + 1))
            return Verdict.WRONG, row
        conn.execute(update(_codes).where(_codes.c.id == row.id).values(used_at=iso(now)))
        return Verdict.ACCEPTED, row

    def confirm(
        self, mobile: str, code: str, password: str, locale: str, client: str
    ) -> tuple[Verdict, tuple[str, WebSession] | None]:
        """Check the latest code sent to the number; when it is right, make the borrower user with this password
        and sign them in (a new session: its cookie token and view). A wrong code counts against the code; a
        password the users refuse raises before the code is spent."""
        number = check_mobile(mobile)
        with self.units.begin() as conn:
            verdict, _row = self._spend(conn, number, SIGN_UP, code, datetime.now(UTC))
            if verdict is not Verdict.ACCEPTED:
                return verdict, None
            Users(JoinedUnits(conn)).create(
                number, password, "borrower", None, display_name=mask_mobile(number), locale=locale
            )
        return Verdict.ACCEPTED, Users(self.units).sign_in(number, password, client)

    def reset(self, mobile: str, code: str, password: str, client: str, request_id: str) -> Verdict:
        """Set a borrower's new password with the reset code sent to their number: throttled as a sign-in (a wrong
        code is a failed sign-in of that name), every session of theirs ends, and the trail records it. A password
        the users refuse raises before the code is spent."""
        number = check_mobile(mobile)
        now = datetime.now(UTC)
        with self.units.begin() as conn:
            throttle(conn, number, client, now)
            verdict, _row = self._spend(conn, number, RESET, code, now)
            user = active_user(conn, number)
            if verdict is Verdict.ACCEPTED and (user is None or user.role != Role.BORROWER.value):
                verdict = Verdict.EXPIRED  # a code never sent was guessed: nothing to reset
            if verdict is Verdict.ACCEPTED:
                set_password(conn, user, password, request_id, "sms")
            record_attempt(conn, number, client, now, verdict is Verdict.ACCEPTED)
        return verdict
