"""People who sign in to the web front-ends: users with argon2id password hashes and an optional TOTP second
factor, their sessions (only a hash of the cookie's token is stored), throttled sign-in, and password resets by a
one-time link an operator makes (a borrower resets theirs by a code sent to their mobile: `openice.access.sign_up`).

A user's role and tenant mean what an API key's do (`openice.tenancy`): a signed-in person sees exactly what a key
of the same role and tenant would. Their `Principal` carries the user id where a key's carries the key id, so the
audit trail names the person.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, and_, func, insert, select, update

from openice.access.audit import record_audit
from openice.clock import iso, now_iso
from openice.decisioning.queries import borrower_exists, institution_exists
from openice.errors import Conflict, NotFound, ValidationError
from openice.storage import api_tables
from openice.storage.uow import UnitsOfWork
from openice.tenancy import PLATFORM, Principal, Role

LOCALES = ("en", "zh-CN")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{2,63}$")
MIN_PASSWORD = 10
SESSION_HOURS = 12
# Guessing is slowed per user name and per client address over a sliding window; a success does not reset it.
THROTTLE_WINDOW = timedelta(minutes=15)
FAILURES_PER_USER = 5
FAILURES_PER_CLIENT = 30
SECOND_FACTOR_ROLES = (Role.OPERATOR, Role.INSTITUTION)
RESET_LINK_LIFE = timedelta(hours=24)  # an operator's reset link: long enough to reach a colleague, then dead

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Checked when the user name is unknown, so an unknown name costs as long as a wrong password.
_DECOY = _hasher.hash(secrets.token_urlsafe(16))


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Throttled(Exception):
    """Too many failed sign-ins lately: the caller may try again after `wait` seconds."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {max(1, wait // 60)} minutes")
        self.wait = wait


@dataclass(frozen=True)
class WebSession:
    """A live session: who it is, the form token its posts must carry, and whether it still owes a TOTP code."""

    user_id: str
    username: str
    display_name: str
    role: Role
    tenant: str | None
    locale: str
    csrf: str
    second_factor_due: bool

    @property
    def principal(self) -> Principal:
        """The caller the services see; a borrower not yet registered has no tenant and sees nothing."""
        return Principal(self.user_id, self.role, self.tenant or f"unregistered:{self.user_id}")


def user_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "tenant": row.tenant,
        "display_name": row.display_name,
        "locale": row.locale,
        "second_factor": row.totp_secret is not None,
        "created_at": row.created_at,
        "disabled_at": row.disabled_at,
    }


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"at least {MIN_PASSWORD} characters", field="password")


def throttle(conn: Connection, name: str, client: str, now: datetime) -> None:
    """Throttled when this user name or this client failed too often lately (a wrong password, or a wrong code of a
    password reset: the same guessing, the same limit)."""
    since = iso(now - THROTTLE_WINDOW)
    attempts = api_tables.sign_in_attempts
    failed = and_(attempts.c.at >= since, attempts.c.succeeded.is_(False))
    for column, value, limit in (
        (attempts.c.username, name, FAILURES_PER_USER),
        (attempts.c.client, client[:64], FAILURES_PER_CLIENT),
    ):
        count, oldest = conn.execute(select(func.count(), func.min(attempts.c.at)).where(failed, column == value)).one()
        if count >= limit:
            reopens = datetime.fromisoformat(oldest) + THROTTLE_WINDOW
            raise Throttled(int((reopens - now).total_seconds()) + 1)


def record_attempt(conn: Connection, name: str, client: str, now: datetime, succeeded: bool) -> None:
    conn.execute(
        insert(api_tables.sign_in_attempts).values(username=name, client=client[:64], at=iso(now), succeeded=succeeded)
    )


def set_password(conn: Connection, row: Any, password: str, request_id: str, how: str) -> None:
    """The user's new password: every session of theirs ends (whoever held one is signed out), and the trail says
    so under the user's own name."""
    _check_password(password)
    at = now_iso()
    conn.execute(
        update(api_tables.users).where(api_tables.users.c.id == row.id).values(password_hash=_hasher.hash(password))
    )
    Users._end_all(conn, row.id, at)
    who = Principal(row.id, Role(row.role), row.tenant or f"unregistered:{row.id}")
    record_audit(conn, who, request_id, "user.password_reset", f"user/{row.id}", {"by": how})


def _check_tenant(conn: Connection, role: Role, tenant: str | None) -> None:
    """As for API keys: operators are the platform's, institutions and their desks name a real institution."""
    if role is Role.OPERATOR and tenant != PLATFORM:
        raise ValidationError(f"an operator's tenant is {PLATFORM!r}", field="tenant")
    if role is Role.INVESTOR:
        raise ValidationError(
            "investors read their deals' reports over the API, with a key; no page is theirs", field="role"
        )
    if role is Role.INSTITUTION or (role is Role.COLLECTIONS and tenant != PLATFORM):
        if tenant is None or not institution_exists(conn, tenant):
            raise ValidationError(f"no institution {tenant!r}", field="tenant")
    if role is Role.BORROWER and tenant is not None and not borrower_exists(conn, tenant):
        raise ValidationError(f"no borrower {tenant!r}", field="tenant")


class Users:
    """Creates users, signs them in and out, and finds the session behind a cookie."""

    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    def create(
        self,
        username: str,
        password: str,
        role: str,
        tenant: str | None,
        display_name: str = "",
        locale: str = "en",
        second_factor: bool = False,
        created_by: str | None = None,
    ) -> dict[str, Any]:
        """A new user; with `second_factor` the result carries the TOTP provisioning URI, shown once."""
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise ValidationError(
                "3 to 64 letters, digits or . _ @ + -, starting with a letter or digit", field="username"
            )
        _check_password(password)
        try:
            kind = Role(role)
        except ValueError:
            raise ValidationError(f"must be one of {[r.value for r in Role]}", field="role") from None
        if locale not in LOCALES:
            raise ValidationError(f"must be one of {list(LOCALES)}", field="locale")
        if second_factor and kind not in SECOND_FACTOR_ROLES:
            raise ValidationError("a second factor is for operator and institution users", field="second_factor")
        totp = pyotp.random_base32() if second_factor else None
        user_id = "U" + uuid.uuid4().hex[:20]
        with self.units.begin() as conn:
            _check_tenant(conn, kind, tenant)
            if conn.execute(select(api_tables.users.c.id).where(api_tables.users.c.username == name)).first():
                raise Conflict(f"{name!r} is taken", field="username")
            conn.execute(
                insert(api_tables.users).values(
                    id=user_id,
                    username=name,
                    password_hash=_hasher.hash(password),
                    role=kind.value,
                    tenant=tenant,
                    display_name=display_name.strip() or name,
                    locale=locale,
                    totp_secret=totp,
                    created_at=now_iso(),
                    created_by=created_by,
                )
            )
            row = conn.execute(select(api_tables.users).where(api_tables.users.c.id == user_id)).one()
        made = user_view(row)
        if totp is not None:
            made["totp_uri"] = pyotp.TOTP(totp).provisioning_uri(name=name, issuer_name="openice")
        return made

    def list(self, role: str | None = None) -> list[dict[str, Any]]:
        query = select(api_tables.users).order_by(api_tables.users.c.username)
        if role:
            query = query.where(api_tables.users.c.role == role)
        with self.units.begin(readonly=True) as conn:
            return [user_view(row) for row in conn.execute(query)]

    def disable(self, user_id: str) -> dict[str, Any]:
        """The user can no longer sign in, and their open sessions end now."""
        at = now_iso()
        with self.units.begin() as conn:
            row = conn.execute(select(api_tables.users).where(api_tables.users.c.id == user_id)).first()
            if row is None:
                raise NotFound(f"no user {user_id!r}", field="user_id")
            conn.execute(
                update(api_tables.users)
                .where(api_tables.users.c.id == user_id, api_tables.users.c.disabled_at.is_(None))
                .values(disabled_at=at)
            )
            self._end_all(conn, user_id, at)
            return user_view(conn.execute(select(api_tables.users).where(api_tables.users.c.id == user_id)).one())

    def bind_borrower(self, user_id: str, borrower_id: str) -> dict[str, Any]:
        """A signed-up borrower user becomes the registered borrower: their tenant, from then on, in every session.
        Once only, and one user per borrower, so nobody reaches another person's book by registering again."""
        u = api_tables.users
        with self.units.begin() as conn:
            row = conn.execute(select(u).where(u.c.id == user_id)).first()
            if row is None or row.role != Role.BORROWER.value:
                raise NotFound(f"no borrower user {user_id!r}", field="user_id")
            if row.tenant is not None:
                raise Conflict("this user is registered already", field="user_id")
            _check_tenant(conn, Role.BORROWER, borrower_id)
            if conn.execute(select(u.c.id).where(u.c.role == Role.BORROWER.value, u.c.tenant == borrower_id)).first():
                raise Conflict("another user is this borrower already", field="national_id")
            conn.execute(update(u).where(u.c.id == user_id).values(tenant=borrower_id))
            return user_view(conn.execute(select(u).where(u.c.id == user_id)).one())

    def set_locale(self, user_id: str, locale: str) -> None:
        if locale not in LOCALES:
            raise ValidationError(f"must be one of {list(LOCALES)}", field="locale")
        with self.units.begin() as conn:
            conn.execute(update(api_tables.users).where(api_tables.users.c.id == user_id).values(locale=locale))

    def sign_in(self, username: str, password: str, client: str) -> tuple[str, WebSession] | None:
        """A new session (its cookie token and its view) for the right password, None for a wrong one; Throttled
        when this name or this client failed too often lately. A TOTP user's session owes its code first."""
        name = username.strip().lower()[:64]
        now = datetime.now(UTC)
        with self.units.begin() as conn:
            throttle(conn, name, client, now)
            row = active_user(conn, name)
            ok = _verify(row.password_hash if row else _DECOY, password) and row is not None
            record_attempt(conn, name, client, now, ok)
            if not ok or row is None:
                return None
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            conn.execute(
                insert(api_tables.web_sessions).values(
                    token_hash=_hash_token(token),
                    user_id=row.id,
                    csrf=csrf,
                    second_factor_due=row.totp_secret is not None,
                    created_at=iso(now),
                    expires_at=iso(now + timedelta(hours=SESSION_HOURS)),
                )
            )
        return token, _session_view(row, csrf, row.totp_secret is not None)

    def reset_link(self, user: str, created_by: str | None) -> tuple[str, dict[str, Any]]:
        """A one-time token for `user` (id or user name) to set a new password, valid for RESET_LINK_LIFE; shown
        once (only its hash is stored). An earlier unused link of the same user stops working."""
        u, resets = api_tables.users, api_tables.password_resets
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.units.begin() as conn:
            row = conn.execute(select(u).where((u.c.id == user) | (u.c.username == user.strip().lower()))).first()
            if row is None or row.disabled_at is not None:
                raise NotFound(f"no active user {user!r}", field="user")
            conn.execute(
                update(resets)
                .where(resets.c.user_id == row.id, resets.c.used_at.is_(None))
                .values(used_at=iso(now))  # superseded
            )
            conn.execute(
                insert(resets).values(
                    token_hash=_hash_token(token),
                    user_id=row.id,
                    created_by=created_by,
                    created_at=iso(now),
                    expires_at=iso(now + RESET_LINK_LIFE),
                )
            )
        return token, user_view(row)

    def reset_with_link(self, token: str, password: str, request_id: str) -> dict[str, Any] | None:
        """Set the new password with a live link's token, which is spent; None for a token unknown, used or past
        its time (they look the same). A password the users refuse raises before the token is spent."""
        u, resets = api_tables.users, api_tables.password_resets
        now = iso(datetime.now(UTC))
        with self.units.begin() as conn:
            row = conn.execute(
                select(u)
                .join(resets, resets.c.user_id == u.c.id)
                .where(
                    resets.c.token_hash == _hash_token(token),
                    resets.c.used_at.is_(None),
                    resets.c.expires_at > now,
                    u.c.disabled_at.is_(None),
                )
            ).first()
            if row is None:
                return None
            set_password(conn, row, password, request_id, "link")
            conn.execute(update(resets).where(resets.c.token_hash == _hash_token(token)).values(used_at=now))
            return user_view(row)

    def check_second_factor(self, token: str, code: str) -> WebSession | None:
        """The session, no longer owing its code, when the TOTP code is right (one step of drift either way)."""
        with self.units.begin() as conn:
            found = self._find(conn, token)
            if found is None:
                return None
            row, session = found
            if not session.second_factor_due:
                return _session_view(row, session.csrf, False)
            if not pyotp.TOTP(row.totp_secret).verify(code.strip(), valid_window=1):
                return None
            conn.execute(
                update(api_tables.web_sessions)
                .where(api_tables.web_sessions.c.token_hash == _hash_token(token))
                .values(second_factor_due=False)
            )
            return _session_view(row, session.csrf, False)

    def session(self, token: str) -> WebSession | None:
        """The live session behind a cookie's token (ended, expired or a disabled user's: None)."""
        with self.units.begin(readonly=True) as conn:
            found = self._find(conn, token)
        return None if found is None else found[1]

    def session_on(self, conn: Connection, token: str) -> WebSession | None:
        """As `session`, on a request's own connection."""
        found = self._find(conn, token)
        return None if found is None else found[1]

    def _find(self, conn: Connection, token: str) -> tuple[Any, WebSession] | None:
        s, u = api_tables.web_sessions, api_tables.users
        row = conn.execute(
            select(u, s.c.csrf, s.c.second_factor_due)
            .join(s, s.c.user_id == u.c.id)
            .where(
                s.c.token_hash == _hash_token(token),
                s.c.ended_at.is_(None),
                s.c.expires_at > now_iso(),
                u.c.disabled_at.is_(None),
            )
        ).first()
        return None if row is None else (row, _session_view(row, row.csrf, row.second_factor_due))

    def sign_out(self, token: str) -> None:
        with self.units.begin() as conn:
            conn.execute(
                update(api_tables.web_sessions)
                .where(
                    api_tables.web_sessions.c.token_hash == _hash_token(token),
                    api_tables.web_sessions.c.ended_at.is_(None),
                )
                .values(ended_at=now_iso())
            )

    @staticmethod
    def _end_all(conn: Connection, user_id: str, at: str) -> None:
        conn.execute(
            update(api_tables.web_sessions)
            .where(api_tables.web_sessions.c.user_id == user_id, api_tables.web_sessions.c.ended_at.is_(None))
            .values(ended_at=at)
        )


def active_user(conn: Connection, name: str) -> Any:
    """The user who may sign in under this name, or None."""
    u = api_tables.users
    return conn.execute(select(u).where(u.c.username == name, u.c.disabled_at.is_(None))).first()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _session_view(row: Any, csrf: str, second_factor_due: bool) -> WebSession:
    return WebSession(
        user_id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        tenant=row.tenant,
        locale=row.locale,
        csrf=csrf,
        second_factor_due=bool(second_factor_due),
    )
