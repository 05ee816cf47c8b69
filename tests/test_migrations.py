"""The migrations build exactly the schema the code declares (every stage's tables, their types and server
defaults), on SQLite and PostgreSQL, and step back down."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, column, insert, inspect, select, table

from openice.decisioning.pii import ENV_KEY
from openice.errors import Unavailable
from openice.idempotency import Idempotency
from openice.storage import schema
from openice.storage.engine import alembic_config
from openice.storage.gateway_tables import secret_context
from openice.storage.schema import metadata
from tests.decisioning.helpers import VAULT


def schema_drift(engine: Engine) -> list:
    with engine.connect() as conn:
        options = {"compare_type": True, "compare_server_default": True}
        return compare_metadata(MigrationContext.configure(conn, opts=options), metadata)


def test_migrated_schema_equals_the_declared_tables(engine: Engine) -> None:
    assert schema_drift(engine) == []
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(metadata.tables)


def test_the_schema_holds_every_table_module() -> None:
    """Alembic's env reads `schema.metadata`: a table module it does not import would be invisible to it."""
    modules = {path.stem for path in Path(schema.__file__).parent.glob("*_tables.py")}
    assert {module.__name__.rsplit(".", 1)[1] for module in schema.TABLE_MODULES} == modules


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_newest_migration_steps_down_and_up_again(engine: Engine) -> None:
    config = alembic_config(engine)
    head = revision(engine)
    tables = set(inspect(engine).get_table_names())
    command.downgrade(config, "-1")
    assert revision(engine) not in (head, None)
    command.upgrade(config, "head")
    assert revision(engine) == head and set(inspect(engine).get_table_names()) == tables
    assert schema_drift(engine) == []


def test_the_idempotency_store_takes_in_the_old_stores_and_gives_them_back(engine: Engine) -> None:
    """Migration 0014: the API's stored creates and the drawdowns' keys move into `idempotency_keys`, a key from the
    command line gets the CLI's scope and matching's own key matching's, a money call keeps a key an API create also
    used; and back down again."""
    config = alembic_config(engine)
    command.downgrade(config, "0013")
    store, creates, drawdowns = (
        table(name, *(column(c) for c in columns))
        for name, columns in (
            ("idempotency_keys", ("key", "operation", "request_hash", "response", "created_at")),
            ("api_requests", ("scope_key", "operation", "request_hash", "status_code", "response", "created_at")),
            (
                "drawdowns",
                ("id", "idempotency_key", "line_id", "borrower_id", "amount", "tenor", "requested_day", "status"),
            ),
        )
    )
    row = dict(request_hash="h", response='{"ok": 1}', created_at="2026-01-15T00:00:00+00:00")
    with engine.begin() as conn:
        conn.execute(
            insert(store),
            [
                dict(key="k1", operation="repay", **row),
                dict(key="borrower/B1/pay", operation="repay", **row),
                dict(key="drawdown-7", operation="originate", **row),
                dict(key="borrower/B1/both", operation="repay", **row),
            ],
        )
        conn.execute(
            insert(creates),
            [
                dict(scope_key="borrower/B1/app", operation="apply:B1", status_code=201, **row),
                dict(scope_key="borrower/B1/both", operation="apply:B1", status_code=201, **row),
            ],
        )
        conn.execute(
            insert(drawdowns),
            [
                dict(
                    id=7,
                    idempotency_key="borrower/B1/dd",
                    line_id="L1",
                    borrower_id="B1",
                    amount=100,
                    tenor=12,
                    requested_day=0,
                    status="funded",
                ),
                dict(
                    id=8,
                    idempotency_key="d-cli",
                    line_id="L1",
                    borrower_id="B1",
                    amount=200,
                    tenor=6,
                    requested_day=0,
                    status="funded",
                ),
            ],
        )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        moved = {r.key: (r.operation, r.response) for r in conn.execute(select(store))}
    assert moved == {
        "cli/k1": ("repay", '{"ok": 1}'),
        "borrower/B1/pay": ("repay", '{"ok": 1}'),
        "matching/drawdown-7": ("originate", '{"ok": 1}'),
        "borrower/B1/both": ("repay", '{"ok": 1}'),
        "borrower/B1/app": ("apply:B1", '{"ok": 1}'),
        "borrower/B1/dd": ("drawdown", '{"drawdown_id": 7}'),
        "cli/d-cli": ("drawdown", '{"drawdown_id": 8}'),
    }
    with engine.connect() as conn:
        replayed = Idempotency(conn).claim("cli/d-cli", "drawdown", {"line_id": "L1", "amount": 200, "tenor": 6})
    assert replayed == {"drawdown_id": 8}
    command.downgrade(config, "0013")
    with engine.connect() as conn:
        assert {r.key for r in conn.execute(select(store))} == {
            "k1",
            "borrower/B1/pay",
            "drawdown-7",
            "borrower/B1/both",
        }
        assert {r.scope_key for r in conn.execute(select(creates))} == {"borrower/B1/app"}
        assert dict(conn.execute(select(drawdowns.c.id, drawdowns.c.idempotency_key)).all()) == {
            7: "borrower/B1/dd",
            8: "d-cli",
        }
    command.upgrade(config, "head")
    assert schema_drift(engine) == []


def test_stored_webhook_secrets_are_encrypted_going_up_and_given_back_going_down(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 0025: the signing secrets stored in clear before it are encrypted under the PII key, bound to their
    institution; it refuses to run without the key when there are any; going down decrypts them."""
    config = alembic_config(engine)
    command.downgrade(config, "0021")
    stored = table(
        "institution_secrets", *(column(c) for c in ("institution_code", "current", "previous", "rotated_at"))
    )
    current, previous = "ab" * 32, "cd" * 32
    with engine.begin() as conn:
        conn.execute(
            insert(stored).values(institution_code="WEB", current=current, previous=previous, rotated_at="2026-01-15")
        )
        conn.execute(insert(stored).values(institution_code="NEW", current=current, rotated_at="2026-01-15"))
    monkeypatch.delenv(ENV_KEY, raising=False)
    with pytest.raises(Unavailable, match="webhook signing secrets are stored") as refused:
        command.upgrade(config, "head")
    assert refused.value.field == ENV_KEY
    monkeypatch.setenv(ENV_KEY, bytes(range(32)).hex())  # VAULT's key
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = {r.institution_code: r for r in conn.execute(select(stored))}
    raw = " ".join(f"{r.current} {r.previous}" for r in rows.values())
    assert current not in raw and previous not in raw
    opened = {
        code: [VAULT.decrypt(secret_context(code), s) if s else s for s in (r.current, r.previous)]
        for code, r in rows.items()
    }
    assert opened == {"WEB": [current, previous], "NEW": [current, None]}
    command.downgrade(config, "0021")
    with engine.connect() as conn:
        back = {r.institution_code: (r.current, r.previous) for r in conn.execute(select(stored))}
    assert back == {"WEB": (current, previous), "NEW": (current, None)}
    command.upgrade(config, "head")
    assert schema_drift(engine) == []


def test_stored_institutions_take_the_book_s_currency_and_no_kind(engine: Engine) -> None:
    """Migration 0028: a definition stored before institutions carried a currency gets the book's (its products',
    the first in order: CNY before USD), one that names its own keeps it; the new `kind` column is empty."""
    from openice.matching.institutions import Institution
    from openice.matching.repository import InstitutionRepository
    from tests.matching.test_boxes import institution

    config = alembic_config(engine)
    command.downgrade(config, "0026")
    old = table("institutions", *(column(c) for c in INSTITUTION_COLUMNS))
    products = table("products", *(column(c) for c in ("code", "currency", "definition", "created_at")))
    stored = {
        "OLD": institution("OLD").model_dump_json(exclude={"currency", "kind"}),
        "OWN": institution("OWN", currency="USD").model_dump_json(exclude={"kind"}),
    }
    with engine.begin() as conn:
        for code, definition in stored.items():
            row = {**dict.fromkeys(INSTITUTION_COLUMNS, 0), "code": code, "name": code, "credit_box": "{}"}
            conn.execute(insert(old).values({**row, "business_model": "capital-light", "definition": definition}))
        for code, currency in (("P-USD", "USD"), ("P-CNY", "CNY")):
            conn.execute(insert(products).values(code=code, currency=currency, definition="{}", created_at="x"))
    command.upgrade(config, "head")
    with engine.connect() as conn:
        read = {r.code: Institution.model_validate_json(r.definition) for r in conn.execute(select(old))}
        assert {code: i.currency for code, i in read.items()} == {"OLD": "CNY", "OWN": "USD"}
        assert InstitutionRepository(conn).get("OLD").kind is None
        kinds = conn.execute(select(column("kind")).select_from(table("institutions"))).scalars().all()
        assert kinds == [None, None]


INSTITUTION_COLUMNS = (
    "code",
    "name",
    "business_model",
    "funding_cost_ppm",
    "rate_ppm",
    "credit_box",
    "daily_quota",
    "monthly_quota",
    "min_monthly_volume",
    "max_avg_pd",
    "priority",
    "active",
    "definition",
)
