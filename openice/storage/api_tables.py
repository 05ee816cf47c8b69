"""Tables of the HTTP service: API keys (hashes only), people's sign-in (users, their web sessions, sign-in
attempts, the one-time codes of a borrower's sign-up or password reset, staff's password-reset links and the
development SMS outbox) and the audit trail (stored responses are in `idempotency_tables`).

On the shared `metadata` so Alembic sees them. The audit trail is append-only; migration 0003 adds triggers
that refuse UPDATE and DELETE on it, as for decisions.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, text

from openice.storage.columns import Id, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the secret; the secret is never stored
    Column("role", String(16), nullable=False),  # operator | institution | borrower | collections
    Column("tenant", Text, nullable=False),  # 'platform', an institution code or a borrower id
    Column("label", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(32), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    Column("replaced_by", String(32), nullable=True),
    # A rotation keeps the key (its id, role, tenant) and gives it a new secret; the one before still works until
    # `previous_until`, so a client can switch without an outage.
    Column("previous_hash", String(64), nullable=True),
    Column("previous_until", String(32), nullable=True),
    Column("rotated_at", String(32), nullable=True),
    Index("ix_api_keys_previous_hash", "previous_hash"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("role", String(16), nullable=False),
    Column("tenant", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON, never a secret or personal data
    Index("ix_audit_log_action", "action"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),  # lower case; a borrower's is their mobile number
    Column("password_hash", Text, nullable=False),  # argon2id, with its parameters and salt
    Column("role", String(16), nullable=False),  # operator | institution | borrower | collections
    Column("tenant", Text, nullable=True),  # as an API key's; NULL for a borrower not yet registered
    Column("display_name", Text, nullable=False),
    Column("locale", String(8), nullable=False),  # en | zh-CN
    Column("totp_secret", String(64), nullable=True),  # base32; set when the user signs in with a second factor
    Column("created_at", String(32), nullable=False),
    Column("created_by", String(32), nullable=True),
    Column("disabled_at", String(32), nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token; the token is not stored
    Column("user_id", String(32), nullable=False),
    Column("csrf", String(64), nullable=False),  # every form and state-changing call carries it back
    Column("second_factor_due", Boolean, nullable=False),  # password checked, TOTP code not yet
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("ended_at", String(32), nullable=True),
    Index("ix_web_sessions_user", "user_id"),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("client", String(64), nullable=False),  # the client's address
    Column("at", String(32), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Index("ix_sign_in_attempts_username_at", "username", "at"),
    Index("ix_sign_in_attempts_client_at", "client", "at"),
)

sign_up_codes = Table(
    "sign_up_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # HMAC-SHA256 of the number under the PII hashing key: throttling needs no clear number, and a leaked table
    # cannot be reversed by hashing every 11-digit number
    Column("mobile_hash", String(64), nullable=False),
    Column("purpose", String(16), nullable=False, server_default=text("'sign_up'")),  # sign_up | reset
    Column("client", String(64), nullable=False),  # the client's address
    Column("salt", String(32), nullable=False),
    Column("code_hash", String(64), nullable=False),  # SHA-256 of salt and code; the code is not stored
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),  # wrong codes given so far
    Column("used_at", String(32), nullable=True),
    Index("ix_sign_up_codes_mobile_created", "mobile_hash", "created_at"),
    Index("ix_sign_up_codes_client_created", "client", "created_at"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the link's token; the token is not stored
    Column("user_id", String(32), nullable=False),
    Column("created_by", String(32), nullable=True),  # the operator (or "cli") who made the link
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32), nullable=True),
    Index("ix_password_resets_user", "user_id"),
)

sms_outbox = Table(
    "sms_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mobile", String(16), nullable=False),  # masked (138****5678): the text is what development reads
    Column("text", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)
