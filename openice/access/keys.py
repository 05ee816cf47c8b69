"""API keys: random 256-bit secrets shown once, stored only as SHA-256, scoped to a role and a tenant.

A key's tenant is what the data layer filters by (`openice.tenancy`): 'platform' for operators, an
institution code for institutions, a borrower id for borrowers, 'platform' or an institution code for
collections agents, the names of the deals it may read separated by commas for investors.

A rotation gives a key a new secret and keeps everything else (its id, so the audit trail and rate limit go on
naming the same key); the previous secret keeps working for an overlap, so a client can switch without an outage.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update

from openice.clock import iso, now_iso
from openice.decisioning.queries import borrower_exists, institution_exists
from openice.errors import NotFound, ValidationError
from openice.funding.queries import missing_deals
from openice.storage import api_tables, direct
from openice.storage.uow import UnitsOfWork
from openice.tenancy import PLATFORM, Principal, Role, investor_deals

# Every request's key check, built once. The key is looked up on every request (not cached in the worker), so a
# revoked key (or a rotated key's previous secret past its overlap) is refused by every worker from then on.
_keys = api_tables.api_keys
_LIVE_KEY = select(_keys.c.id, _keys.c.role, _keys.c.tenant).where(
    or_(
        _keys.c.key_hash == bindparam("key_hash"),
        and_(_keys.c.previous_hash == bindparam("key_hash"), _keys.c.previous_until > bindparam("now")),
    ),
    _keys.c.revoked_at.is_(None),
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "tenant": row.tenant,
        "label": row.label,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
        "replaced_by": row.replaced_by,
        "rotated_at": row.rotated_at,
        "previous_until": row.previous_until,
    }


class ApiKeys:
    """Creates, rotates, revokes and checks keys; only hashes reach the database."""

    def __init__(self, units: UnitsOfWork) -> None:
        self.units = units

    def _check_tenant(self, conn: Any, role: Role, tenant: str) -> None:
        exists = {Role.INSTITUTION: institution_exists, Role.BORROWER: borrower_exists}
        if role is Role.OPERATOR and tenant != PLATFORM:
            raise ValidationError(f"an operator key's tenant is {PLATFORM!r}", field="tenant")
        if role is Role.COLLECTIONS and tenant != PLATFORM:
            role = Role.INSTITUTION  # an institution's own collections desk
        if role is Role.INVESTOR:
            names = investor_deals(tenant)
            if not names:
                raise ValidationError("an investor key names its deals, separated by commas", field="tenant")
            missing = missing_deals(conn, names)
            if missing:
                raise ValidationError(f"no deal {missing[0]!r} has been issued to scope the key to", field="tenant")
        if role in exists and not exists[role](conn, tenant):
            raise ValidationError(f"no {role.value} {tenant!r} to scope the key to", field="tenant")

    def create(self, role: str, tenant: str, label: str = "", created_by: str | None = None) -> dict[str, Any]:
        """A new key; the secret is in the result and nowhere else, ever."""
        try:
            kind = Role(role)
        except ValueError:
            raise ValidationError(f"must be one of {[r.value for r in Role]}", field="role") from None
        secret = secrets.token_urlsafe(32)
        key_id = "K" + uuid.uuid4().hex[:20]
        with self.units.begin() as conn:
            self._check_tenant(conn, kind, tenant)
            conn.execute(
                insert(api_tables.api_keys).values(
                    id=key_id,
                    key_hash=hash_secret(secret),
                    role=kind.value,
                    tenant=tenant,
                    label=label,
                    created_at=now_iso(),
                    created_by=created_by,
                )
            )
            row = conn.execute(select(api_tables.api_keys).where(api_tables.api_keys.c.id == key_id)).one()
        return {**key_view(row), "secret": secret}

    def rotate(self, key_id: str, overlap: timedelta) -> dict[str, Any]:
        """A fresh secret for the same key; the current one keeps working for `overlap` (zero: stops at once), and
        one older than that stops now. The secret is in the result and nowhere else."""
        if overlap < timedelta(0):
            raise ValidationError("must not be negative", field="overlap_hours")
        self._live(key_id)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.units.begin() as conn:
            conn.execute(
                update(_keys)
                .where(_keys.c.id == key_id, _keys.c.revoked_at.is_(None))
                .values(
                    previous_hash=_keys.c.key_hash if overlap else None,
                    previous_until=iso(now + overlap) if overlap else None,
                    key_hash=hash_secret(secret),
                    rotated_at=iso(now),
                )
            )
            row = conn.execute(select(_keys).where(_keys.c.id == key_id)).one()
        return {**key_view(row), "secret": secret}

    def revoke(self, key_id: str) -> dict[str, Any]:
        self._live(key_id)
        with self.units.begin() as conn:
            conn.execute(
                update(api_tables.api_keys)
                .where(api_tables.api_keys.c.id == key_id, api_tables.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_iso())
            )
            return key_view(conn.execute(select(api_tables.api_keys).where(api_tables.api_keys.c.id == key_id)).one())

    def _live(self, key_id: str) -> Any:
        with self.units.begin(readonly=True) as conn:
            row = conn.execute(select(api_tables.api_keys).where(api_tables.api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no api key {key_id!r}", field="key_id")
        if row.revoked_at is not None:
            raise ValidationError(f"api key {key_id} is already revoked", field="key_id")
        return row

    def authenticate(self, secret: str) -> Principal | None:
        """The live key with this secret, or None (unknown and revoked keys look the same to a caller)."""
        with self.units.begin(readonly=True) as conn:
            row = direct.execute(conn, _LIVE_KEY, {"key_hash": hash_secret(secret), "now": now_iso()}).first()
        return None if row is None else Principal(row.id, Role(row.role), row.tenant)
