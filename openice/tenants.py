"""A new institution on the platform in one step: its definition (credit box, quotas, pricing, how it decides), its
portal administrator, an API key and a webhook signing secret, created in one transaction through the same
services an operator would call one by one (matching's institutions, access's users and keys, the gateway's
secrets). Either all of it exists afterwards or none of it does; an institution that exists already is refused, so
a second run changes nothing and never prints new secrets for an old tenant.

The secrets come back to the caller once and are stored only as hashes (the key) or for signing (the webhook
secret); the administrator gets no password, but a single-use link to set one.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from openice.access.audit import record_audit
from openice.access.keys import ApiKeys
from openice.access.users import Users
from openice.decisioning.domain import parse
from openice.decisioning.pii import PiiVault
from openice.decisioning.queries import institution_exists
from openice.errors import Conflict, ValidationError
from openice.matching.gateway import Webhooks
from openice.matching.institutions import TypedInstitution
from openice.matching.service import book_terms_currency, register_institutions
from openice.storage.uow import JoinedUnits
from openice.tenancy import Principal

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Decides(StrEnum):
    """How the institution answers the offers routed to it, in the words of the onboarding command."""

    AUTO = "auto"  # its credit box decides at once
    WEBHOOK = "webhook"  # its own system, over its webhook
    PORTAL = "portal"  # a person, in its portal

    @property
    def acceptance(self) -> str:
        return {"auto": "automatic", "webhook": "webhook", "portal": "manual"}[self.value]


@dataclass(frozen=True)
class Onboarded:
    """What the caller hands to the institution, once: nothing here can be read back later."""

    institution: TypedInstitution  # as stored, typed in its currency
    admin: dict[str, Any]  # the portal administrator (a user's view)
    reset_token: str  # sets the administrator's first password (`web.sign_in.reset_path`)
    key_id: str
    key_secret: str
    webhook_secret: str


def definition(document: Any, code: str, decides: Decides | None, webhook_url: str | None) -> TypedInstitution:
    """The institution to create: the file's definition (one institution, alone or as the only entry of
    {"institutions": [...]}, its money typed in major units of its `currency` as `openice match institutions`
    reads it) under the code asked for, with how it decides and its webhook address when given."""
    if isinstance(document, dict) and isinstance(document.get("institutions"), list):
        if len(document["institutions"]) != 1:
            raise ValidationError("onboarding takes one institution; the file lists several", field="file")
        document = document["institutions"][0]
    if not isinstance(document, dict):
        raise ValidationError("expected one institution's definition (a JSON or YAML object)", field="file")
    if document.get("code", code) != code:
        raise ValidationError(f"the file defines {document['code']!r}, not {code!r}", field="institution")
    terms = {**document, "code": code}
    if decides is not None:
        terms["acceptance"] = decides.acceptance
    if webhook_url is not None:
        terms["webhook_url"] = webhook_url
    if terms.get("acceptance") == Decides.WEBHOOK.acceptance and not terms.get("webhook_url"):
        raise ValidationError("an institution deciding by webhook needs its address", field="webhook_url")
    return parse(TypedInstitution, terms)


def onboard(
    engine: Engine, institution: TypedInstitution, admin_email: str, vault: Callable[[], PiiVault]
) -> Onboarded:
    """The command line's onboarding: `onboard_on` in a transaction of its own, audited as the service."""
    try:
        with engine.connect() as conn, conn.begin():
            return onboard_on(conn, institution, admin_email, vault, None, f"cli-{uuid.uuid4().hex}")
    except IntegrityError:  # a concurrent onboarding of the same code committed first
        raise _exists(institution.code) from None


def onboard_on(
    conn: Connection,
    institution: TypedInstitution,
    admin_email: str,
    vault: Callable[[], PiiVault],
    by: Principal | None,
    request_id: str,
) -> Onboarded:
    """Create the tenant in the caller's transaction (`by`: the operator, None for the command line), audited; an
    existing institution (or, on-premise, any but its own), or an institution naming no currency before the book
    has a product to take it from, is refused before anything is written. The money is converted here, once, in
    its currency or the one this transaction reads the book's products in, as PUT /v1/institutions converts it."""
    email = admin_email.strip().lower()
    if not EMAIL.match(email):
        raise ValidationError(f"{admin_email!r} is not an e-mail address", field="admin_email")
    code = institution.code
    if institution_exists(conn, code):
        raise _exists(code)
    book = book_terms_currency(conn)
    stored = institution.in_minor(book)
    creator = "cli" if by is None else by.key_id
    units = JoinedUnits(conn)
    register_institutions(units, [stored])
    users = Users(units)
    # Nobody knows this password: the administrator sets theirs through the link.
    admin = users.create(email, secrets.token_urlsafe(32), "institution", code, created_by=creator)
    token, _ = users.reset_link(admin["id"], creator)
    key = ApiKeys(units).create("institution", code, label="onboarding", created_by=creator)
    webhook_secret = Webhooks(units, vault).rotate_secret(code, 0, time.time())
    detail = {"admin": admin["id"], "key": key["id"], "acceptance": institution.acceptance}
    record_audit(conn, by, request_id, "tenant.onboarded", f"institution/{code}", detail)
    return Onboarded(TypedInstitution.of(stored, book), admin, token, key["id"], key["secret"], webhook_secret)


def _exists(code: str) -> Conflict:
    return Conflict(
        f"institution {code} exists already: onboarding creates a new one (change its terms with "
        f"`openice match institutions` or PUT /v1/institutions/{code})",
        field="institution",
    )
