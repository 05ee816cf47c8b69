"""Onboarding a tenant and the deployment modes, on SQLite and PostgreSQL: everything an institution needs is created
in one transaction and works (the key authenticates, the link sets a password, the secret signs), a second run or
a failure half-way leaves the book as it was, and an on-premise book holds its one institution and no other."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from openice import deployment
from openice.access.keys import ApiKeys
from openice.access.users import Users
from openice.deployment import Deployment, Mode
from openice.errors import Conflict, Unauthenticated, ValidationError
from openice.matching.gateway import Webhooks
from openice.matching.institutions import TypedInstitution
from openice.matching.service import register_institutions
from openice.matching.webhooks import sign
from openice.storage import api_tables, decisioning_tables, deployment_tables, gateway_tables
from openice.storage.uow import EngineUnits
from openice.tenancy import Principal, Role
from openice.tenants import Decides, definition, onboard
from tests.cli import one_line_error, openice
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import body, institution

COUNTED = (
    decisioning_tables.institutions,
    api_tables.users,
    api_tables.api_keys,
    api_tables.password_resets,
    gateway_tables.institution_secrets,
    api_tables.audit_log,
    deployment_tables.deployment,
)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in COUNTED}


def terms(code: str = "BANK-A", **changes: Any) -> dict[str, Any]:
    """The institution as its file types it: money in major units of the book's currency (the demo products' CNY)."""
    return body(institution(code, **changes))


@pytest.mark.usefixtures("servicing")  # the book's products: their currency types the file
def test_onboarding_creates_a_tenant_whose_key_link_and_secret_work(engine: Engine) -> None:
    before = counts(engine)
    done = onboard(engine, definition(terms(), "BANK-A", Decides.PORTAL, None), "Admin@Bank-A.cn", lambda: VAULT)
    # one of each, in the one transaction; the mode is not touched
    assert counts(engine) == {name: n + (name != "deployment") for name, n in before.items()}
    units = EngineUnits(engine)
    assert ApiKeys(units).authenticate(done.key_secret) == Principal(done.key_id, Role.INSTITUTION, "BANK-A")
    assert (done.admin["username"], done.admin["role"], done.admin["tenant"]) == (
        "admin@bank-a.cn",
        "institution",
        "BANK-A",
    )
    users = Users(units)
    assert users.sign_in("admin@bank-a.cn", "a password nobody typed", "test") is None  # no password before the link
    assert users.reset_with_link(done.reset_token, "correct horse battery", "req-1") is not None
    signed_in = users.sign_in("admin@bank-a.cn", "correct horse battery", "test")
    assert signed_in is not None and signed_in[1].principal.tenant == "BANK-A"
    assert users.reset_with_link(done.reset_token, "another password!", "req-2") is None  # single use
    with engine.connect() as conn:
        stored = conn.execute(select(decisioning_tables.institutions.c.definition)).scalar_one()
        log = api_tables.audit_log
        action = conn.execute(select(log.c.action, log.c.resource).order_by(log.c.id)).first()
    assert '"acceptance":"manual"' in stored  # --decides portal: a person answers in the portal
    assert tuple(action) == ("tenant.onboarded", "institution/BANK-A")
    # The secret handed over is the one the platform checks the institution's signed callbacks against.
    now = int(time.time())
    with pytest.raises(Unauthenticated, match="signature"):
        Webhooks(units, lambda: VAULT).check_callback(
            "BANK-A", sign(["not the secret"], now, b"answer"), b"answer", now
        )
    Webhooks(units, lambda: VAULT).check_callback("BANK-A", sign([done.webhook_secret], now, b"answer"), b"answer", now)


@pytest.mark.usefixtures("servicing")  # the book's products: their currency types the file
def test_a_second_onboarding_of_the_same_code_is_refused_and_changes_nothing(engine: Engine) -> None:
    onboard(engine, definition(terms(), "BANK-A", None, None), "admin@bank-a.cn", lambda: VAULT)
    before = counts(engine)
    with pytest.raises(Conflict, match="institution BANK-A exists already") as refused:
        onboard(engine, definition(terms(daily_quota=5), "BANK-A", None, None), "other@bank-a.cn", lambda: VAULT)
    assert refused.value.field == "institution"
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(decisioning_tables.institutions.c.daily_quota)).scalar_one() == 10**9


@pytest.mark.usefixtures("servicing")  # the book's products: their currency types the file
def test_a_failure_half_way_leaves_no_part_of_the_tenant(engine: Engine) -> None:
    """The administrator's name is taken: the institution registered before it in the same transaction goes too."""
    onboard(engine, definition(terms(), "BANK-A", None, None), "admin@bank.cn", lambda: VAULT)
    before = counts(engine)
    with pytest.raises(Conflict, match="taken"):
        onboard(engine, definition(terms("BANK-B"), "BANK-B", None, None), "admin@bank.cn", lambda: VAULT)
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(decisioning_tables.institutions.c.code)).scalars().all() == ["BANK-A"]


@pytest.mark.usefixtures("servicing")  # the book's products: their currency types the file
def test_on_premise_holds_its_one_institution_and_no_other(engine: Engine) -> None:
    with engine.begin() as conn:
        assert deployment.read(conn) == deployment.SAAS  # no row: SaaS, as before modes existed
        chosen = deployment.choose(conn, deployment.asked(Mode.ON_PREMISE, "BANK-A"))
    assert chosen == Deployment(Mode.ON_PREMISE, "BANK-A")
    before = counts(engine)
    with pytest.raises(Conflict, match="runs on-premise for BANK-A: it holds no other institution"):
        onboard(engine, definition(terms("BANK-B"), "BANK-B", None, None), "admin@bank-b.cn", lambda: VAULT)
    with pytest.raises(Conflict, match="holds no other"):
        register_institutions(EngineUnits(engine), [institution("BANK-B")])  # PUT /v1/institutions, `match`
    assert counts(engine) == before
    onboard(engine, definition(terms(), "BANK-A", Decides.AUTO, None), "admin@bank-a.cn", lambda: VAULT)
    register_institutions(EngineUnits(engine), [institution("BANK-A", daily_quota=10**8)])  # its own terms change
    with engine.begin() as conn:
        assert deployment.choose(conn, deployment.asked(Mode.ON_PREMISE, "BANK-A")) == chosen  # again: unchanged
        for mode, code, field in ((Mode.SAAS, None, "mode"), (Mode.ON_PREMISE, "BANK-B", "institution")):
            with pytest.raises(Conflict, match="runs on-premise for BANK-A: it cannot become") as refused:
                deployment.choose(conn, deployment.asked(mode, code))
            assert refused.value.field == field
        assert deployment.read(conn) == chosen


def test_on_premise_is_refused_over_a_platform_book_of_other_institutions(engine: Engine) -> None:
    register_institutions(EngineUnits(engine), [institution("BANK-A"), institution("BANK-B"), institution("BANK-C")])
    with engine.begin() as conn, pytest.raises(Conflict, match="holds institutions BANK-B, BANK-C: on-premise runs"):
        deployment.choose(conn, deployment.asked(Mode.ON_PREMISE, "BANK-A"))
    with engine.begin() as conn:
        assert deployment.read(conn) == deployment.SAAS
        assert deployment.choose(conn, deployment.asked(Mode.SAAS, None)) == deployment.SAAS  # stored now
        assert deployment.read(conn) == deployment.SAAS


@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [
        (Mode.ON_PREMISE, None, "names its one institution"),
        (Mode.SAAS, "BANK-A", "only an on-premise deployment names its institution"),
    ],
)
def test_a_mode_and_an_institution_go_together(mode: Mode, code: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        deployment.asked(mode, code)
    assert refused.value.field == "institution"


def test_the_definition_takes_the_file_as_an_operator_writes_it() -> None:
    listed = {"institutions": [terms()]}
    assert definition(listed, "BANK-A", None, None) == TypedInstitution.of(institution("BANK-A"), "CNY")
    no_code = {k: v for k, v in terms().items() if k != "code"}
    webhook = definition(no_code, "BANK-A", Decides.WEBHOOK, "http://127.0.0.1:9100/webhook")
    assert (webhook.code, webhook.acceptance, webhook.webhook_url) == (
        "BANK-A",
        "webhook",
        "http://127.0.0.1:9100/webhook",
    )
    for document, code, decides, field, message in (
        ({"institutions": [terms(), terms("BANK-B")]}, "BANK-A", None, "file", "lists several"),
        ([terms()], "BANK-A", None, "file", "expected one institution"),
        (terms("BANK-B"), "BANK-A", None, "institution", "defines 'BANK-B', not 'BANK-A'"),
        (terms(), "BANK-A", Decides.WEBHOOK, "webhook_url", "needs its address"),
        ({**terms(), "daily_quota": "ten"}, "BANK-A", None, "daily_quota", "decimal"),
    ):
        with pytest.raises(ValidationError, match=message) as refused:
            definition(document, code, decides, None)
        assert refused.value.field == field


@pytest.mark.usefixtures("servicing")  # the book's products: their currency types the file
def test_the_administrator_is_named_by_an_e_mail_address(engine: Engine) -> None:
    before = counts(engine)
    with pytest.raises(ValidationError, match="is not an e-mail address") as refused:
        onboard(engine, definition(terms(), "BANK-A", None, None), "admin", lambda: VAULT)
    assert refused.value.field == "admin_email" and counts(engine) == before


def test_db_init_stores_the_mode_and_refuses_a_change_in_one_line(tmp_path: Path) -> None:
    """The command as an operator types it, on SQLite: a mode without its institution is refused before a database
    file exists; a stored on-premise mode stays, and plain `db init` keeps it."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    missing = one_line_error(openice("db", "init", "--db", url, "--mode", "on-premise"))
    assert missing == "error: --institution: an on-premise deployment names its one institution"
    assert not (tmp_path / "bank.db").exists()
    made = openice("db", "init", "--db", url, "--mode", "on-premise", "--institution", "BANK-A")
    assert made.returncode == 0 and "(on-premise for BANK-A)" in made.stderr, made.stderr
    to_saas = one_line_error(openice("db", "init", "--db", url, "--mode", "saas"))
    assert to_saas == "error: --mode: this database runs on-premise for BANK-A: it cannot become SaaS"
    kept = openice("db", "init", "--db", url)
    assert kept.returncode == 0 and "(on-premise for BANK-A)" in kept.stderr, kept.stderr


def test_onboarding_reads_the_file_in_major_units_of_its_currency_or_the_book_s(engine: Engine) -> None:
    """Before any product a file naming no currency has none to be read in: refused saying what to give, nothing
    written. One naming CNY is onboarded on the empty book: the quotas typed 1234.56 and 98765.43 CNY are stored as
    123,456 and 9,876,543 fen, with the currency in the definition."""
    typed = {**terms(), "daily_quota": "1234.56", "monthly_quota": "98765.43"}
    unnamed = {k: v for k, v in typed.items() if k != "currency"}
    before = counts(engine)
    with pytest.raises(ValidationError, match='give the institution\'s "currency"') as refused:
        onboard(engine, definition(unnamed, "BANK-A", None, None), "admin@bank-a.cn", lambda: VAULT)
    assert refused.value.field == "currency" and counts(engine) == before
    with pytest.raises(ValidationError, match="0 is not from 0.01 CNY") as nothing:
        onboard(engine, definition({**typed, "daily_quota": "0"}, "BANK-A", None, None), "a@bank-a.cn", lambda: VAULT)
    assert nothing.value.field == "daily_quota" and counts(engine) == before
    done = onboard(engine, definition(typed, "BANK-A", None, None), "admin@bank-a.cn", lambda: VAULT)
    assert (done.institution.currency, done.institution.daily_quota, done.institution.monthly_quota) == (
        "CNY",
        "1234.56",
        "98765.43",
    )
    quotas = decisioning_tables.institutions.c
    with engine.connect() as conn:
        assert tuple(conn.execute(select(quotas.daily_quota, quotas.monthly_quota)).one()) == (123_456, 9_876_543)
