"""Repositories of the decisioning stage: the only code here that writes SQL."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, union, update

from openice.clock import now_iso
from openice.decisioning.pii import ENV_KEY, HASH_ENV_KEY, NEW_ENV_KEY, PiiVault
from openice.errors import Conflict, NotFound, Unavailable, ValidationError
from openice.storage import decisioning_tables, direct, gateway_tables

IDENTIFIER_COLUMNS = ("national_id_hash", "mobile_hash", "device_hash")
BLACKLIST_KINDS = ("national_id", "mobile", "device")


def _others(column: str) -> Any:
    query = union(
        select(decisioning_tables.borrowers.c.id.label("bid")).where(
            decisioning_tables.borrowers.c[column] == bindparam(column)
        ),
        select(decisioning_tables.applications.c.borrower_id.label("bid")).where(
            decisioning_tables.applications.c[column] == bindparam(column)
        ),
    ).subquery()
    return select(func.count()).select_from(query).where(query.c.bid != bindparam("borrower_id")).scalar_subquery()


def _recent(column: str) -> Any:
    return (
        select(func.count())
        .select_from(decisioning_tables.applications)
        .where(
            decisioning_tables.applications.c[column] == bindparam(column),
            decisioning_tables.applications.c.applied_at > bindparam("since"),
        )
        .scalar_subquery()
    )


# An application's identity facts in one statement (six counts), built once: they were six round trips, each
# with a statement built anew.
_FACTS = select(
    *[_others(c).label(f"others_{c}") for c in IDENTIFIER_COLUMNS],
    *[_recent(c).label(f"recent_{c}") for c in IDENTIFIER_COLUMNS],
)
_BORROWER = select(decisioning_tables.borrowers).where(decisioning_tables.borrowers.c.id == bindparam("borrower_id"))
_DECISION = select(decisioning_tables.decisions).where(decisioning_tables.decisions.c.id == bindparam("decision_id"))
_LINE = select(decisioning_tables.credit_lines).where(decisioning_tables.credit_lines.c.id == bindparam("line_id"))
# One parameter per kind, not an expanding IN list: that would need SQLAlchemy at run time (`direct`'s slow path).
_LISTED = select(decisioning_tables.blacklist.c.kind, decisioning_tables.blacklist.c.value_hash).where(
    decisioning_tables.blacklist.c.value_hash.in_([bindparam(kind) for kind in BLACKLIST_KINDS])
)
_L = decisioning_tables.credit_lines.c
_RESERVE_LINE = (
    update(decisioning_tables.credit_lines)
    .where(
        _L.id == bindparam("line_id"),
        _L.status == "active",
        _L.expiry_day >= bindparam("today"),
        _L.drawn + bindparam("b_amount") <= _L.amount,
    )
    .values(drawn=_L.drawn + bindparam("b_amount"))
)
_INSERT_APPLICATION = insert(decisioning_tables.applications)
_INSERT_DECISION = insert(decisioning_tables.decisions)
_INSERT_LINE = insert(decisioning_tables.credit_lines)


class BorrowerRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(decisioning_tables.borrowers).values(**row))

    def get(self, borrower_id: str) -> Any:
        row = direct.execute(self.conn, _BORROWER, {"borrower_id": borrower_id}).first()
        if row is None:
            raise NotFound(f"no borrower {borrower_id!r}; register first", field="borrower_id")
        return row

    def same_person(self, national_id_hash: str, name_hash: str) -> str | None:
        """An earlier registration of this ID under the same name: re-registering returns it (the ID fixes the DOB)."""
        row = self.conn.execute(
            select(decisioning_tables.borrowers.c.id)
            .where(
                decisioning_tables.borrowers.c.national_id_hash == national_id_hash,
                decisioning_tables.borrowers.c.name_hash == name_hash,
            )
            .order_by(decisioning_tables.borrowers.c.registered_at)
        ).first()
        return None if row is None else row.id


class ApplicationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        direct.execute(self.conn, _INSERT_APPLICATION, row)

    def identity_facts(self, hashes: dict[str, str], borrower_id: str, since: int) -> dict[str, int]:
        """For each identifier column (national_id_hash, mobile_hash, device_hash) and its value: `others_<column>`,
        the distinct other borrowers registered or applying with it, and `recent_<column>`, the applications with it
        since `since`; one statement."""
        row = direct.execute(self.conn, _FACTS, {**hashes, "borrower_id": borrower_id, "since": since}).one()
        return {k: int(v) for k, v in row._mapping.items()}


class DecisionRepository:
    """Insert and read only: a decision is never changed once stored."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        direct.execute(self.conn, _INSERT_DECISION, {"created_at": now_iso(), **row})

    def get(self, decision_id: str) -> Any:
        row = direct.execute(self.conn, _DECISION, {"decision_id": decision_id}).first()
        if row is None:
            raise NotFound(f"no decision {decision_id!r}", field="decision_id")
        return row


class CreditLineRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        direct.execute(self.conn, _INSERT_LINE, {"drawn": 0, **row})

    def get(self, line_id: str) -> Any:
        row = direct.execute(self.conn, _LINE, {"line_id": line_id}).first()
        if row is None:
            raise NotFound(f"no credit line {line_id!r}", field="line_id")
        return row

    def reserve(self, line_id: str, amount: int, today: int) -> bool:
        """Take `amount` of the line's room atomically; False when the line is closed, expired or too small."""
        result = direct.execute(self.conn, _RESERVE_LINE, {"line_id": line_id, "today": today, "b_amount": amount})
        reserved: int = result.rowcount
        return reserved == 1

    def release(self, line_id: str, amount: int) -> None:
        c = decisioning_tables.credit_lines.c
        self.conn.execute(update(decisioning_tables.credit_lines).where(c.id == line_id).values(drawn=c.drawn - amount))


class BlacklistRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, kind: str, value_hash: str, reason: str, day: int) -> None:
        if not self.conn.execute(
            select(decisioning_tables.blacklist.c.kind).where(
                decisioning_tables.blacklist.c.kind == kind, decisioning_tables.blacklist.c.value_hash == value_hash
            )
        ).first():
            self.conn.execute(
                insert(decisioning_tables.blacklist).values(
                    kind=kind, value_hash=value_hash, reason=reason, added_day=day
                )
            )

    def hits(self, hashes: dict[str, str]) -> tuple[str, ...]:
        """The kinds (`BLACKLIST_KINDS`, each with its hash in `hashes`) whose hash is listed."""
        rows = direct.execute(self.conn, _LISTED, hashes)
        listed = {(r.kind, r.value_hash) for r in rows}
        return tuple(kind for kind, h in hashes.items() if (kind, h) in listed)


def dumps(value: Any) -> str:
    """Stored JSON is JSON: a non-finite number is an error here, never a `NaN` no other reader parses."""
    return json.dumps(value, sort_keys=True, default=str, allow_nan=False)


def bind_pii_key(engine: Engine, vault: PiiVault | None) -> None:
    """Refuse a PII key that is missing or is not the one this database's personal data was encrypted with, before
    any request is served (a wrong key would break duplicate detection silently and leave rows no one can read),
    and refuse to serve while a key rotation is under way. The keys' check values are stored at first use; a
    database from before the check proves the key on one row."""
    with engine.begin() as conn:
        check_pii_key(conn, vault)


def check_pii_key(conn: Connection, vault: PiiVault | None) -> None:
    """`bind_pii_key` inside a transaction the caller holds (a migration that encrypts with the key)."""
    stored = conn.execute(
        select(decisioning_tables.pii_key_check).where(decisioning_tables.pii_key_check.c.id == 1)
    ).first()
    if stored is not None and stored.rotating_to is not None:
        raise Unavailable("a key rotation is under way: finish it with `openice pii rotate`", field=ENV_KEY)
    _check_keys(conn, stored, vault)


def _check_keys(conn: Connection, stored: Any, vault: PiiVault | None) -> None:
    mismatch = ValidationError(
        "is not the key this database's personal data was encrypted with; start with that key "
        "(or rotate to a new one with `openice pii rotate`)",
        field=ENV_KEY,
    )
    sample = conn.execute(select(decisioning_tables.borrowers.c.name_enc).limit(1)).scalar()
    if vault is None:
        if stored is not None or sample is not None:
            raise Unavailable(
                "is not set, and this database holds personal data: set it to the key the data was encrypted with",
                field=ENV_KEY,
            )
        return
    if stored is not None:
        if not hmac.compare_digest(stored.check_value, vault.check_value()):
            raise mismatch
        if stored.hash_check_value is None:
            conn.execute(
                update(decisioning_tables.pii_key_check)
                .where(decisioning_tables.pii_key_check.c.id == 1)
                .values(hash_check_value=vault.hash_check_value())
            )
        elif not hmac.compare_digest(stored.hash_check_value, vault.hash_check_value()):
            raise ValidationError(
                "is not the hashing key this database's keyed hashes were made with (after a "
                "rotation: the one `openice pii rotate` printed)",
                field=HASH_ENV_KEY,
            )
        return
    if sample is not None:
        try:
            vault.decrypt("name", sample)
        except (InvalidTag, ValidationError):
            raise mismatch from None
    conn.execute(
        insert(decisioning_tables.pii_key_check).values(
            id=1, check_value=vault.check_value(), hash_check_value=vault.hash_check_value(), created_at=now_iso()
        )
    )


ENCRYPTED = ("name", "national_id", "mobile", "date_of_birth")


def rotate_pii_key(
    engine: Engine, old: PiiVault, new: PiiVault, batch: int = 500, on_batch: Callable[[int, int], None] | None = None
) -> int:
    """Re-encrypt every borrower's personal data under `new` (which hashes as `old` does), a batch per
    transaction, so a rotation killed at any point is resumed by running it again with the same keys: rows already
    under the new key are skipped, and the database names the key it is rotating to until the last row is done.
    Returns the rows re-encrypted by this run; `on_batch(done, total)` follows the progress."""
    if old.hash_check_value() != new.hash_check_value():
        raise ValidationError("must hash as the old key does", field=NEW_ENV_KEY)
    table = decisioning_tables.borrowers
    with engine.begin() as conn:
        stored = conn.execute(
            select(decisioning_tables.pii_key_check).where(decisioning_tables.pii_key_check.c.id == 1)
        ).first()
        if stored is not None and stored.rotating_to not in (None, new.check_value()):
            raise Conflict("a rotation to another key is under way: finish it with that key", field=NEW_ENV_KEY)
        if stored is not None and stored.rotating_to is None and stored.check_value == new.check_value():
            return 0  # done already (a run stopped after its last commit): running it again changes nothing
        _check_keys(conn, stored, old)
        conn.execute(
            update(decisioning_tables.pii_key_check)
            .where(decisioning_tables.pii_key_check.c.id == 1)
            .values(rotating_to=new.check_value())
        )
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        rotated = conn.execute(
            select(func.count()).select_from(table).where(table.c.name_enc.startswith(f"v2:{new.key_id}:"))
        ).scalar_one()
    pending = (
        select(table.c.id, *(table.c[f"{c}_enc"] for c in ENCRYPTED))
        .where(~table.c.name_enc.startswith(f"v2:{new.key_id}:"))
        .order_by(table.c.id)
        .limit(batch)
    )
    done = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(pending).all()
            for row in rows:
                conn.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(**{f"{c}_enc": new.encrypt(c, old.decrypt(c, getattr(row, f"{c}_enc"))) for c in ENCRYPTED})
                )
        if not rows:
            break
        done += len(rows)
        if on_batch is not None:
            on_batch(rotated + done, total)
    with engine.begin() as conn:
        _rekey_webhook_secrets(conn, old, new)
        conn.execute(
            update(decisioning_tables.pii_key_check)
            .where(decisioning_tables.pii_key_check.c.id == 1)
            .values(check_value=new.check_value(), hash_check_value=new.hash_check_value(), rotating_to=None)
        )
    return done


def _rekey_webhook_secrets(conn: Connection, old: PiiVault, new: PiiVault) -> None:
    """The institutions' webhook signing secrets are encrypted under the same key: a handful of rows, moved in the
    transaction that ends the rotation (those already under the new key are left)."""
    table = gateway_tables.institution_secrets
    for row in conn.execute(select(table).where(~table.c.current.startswith(f"v2:{new.key_id}:"))).all():
        context = gateway_tables.secret_context(row.institution_code)
        sealed = {c: getattr(row, c) for c in ("current", "previous") if getattr(row, c) is not None}
        values = {c: new.encrypt(context, old.decrypt(context, token)) for c, token in sealed.items()}
        conn.execute(update(table).where(table.c.institution_code == row.institution_code).values(**values))
