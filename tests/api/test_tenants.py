"""`POST /v1/tenants`, on SQLite and PostgreSQL: an operator onboards an institution in one request, whose key,
administrator link and webhook secret work; a second onboarding of the code is a 409 that changes nothing, and only
operators may onboard."""

from __future__ import annotations

import time

from openice.access.users import Users
from openice.matching.gateway import Webhooks
from openice.matching.institutions import CreditBox
from openice.matching.webhooks import sign
from openice.storage.uow import EngineUnits
from tests.api.conftest import World, bearer
from tests.api.test_idempotency import state
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import body, institution

# Typed as PUT /v1/institutions takes it: the quotas of 10^9 and 10^10 fen as "10000000.00" and "100000000.00" CNY.
BODY = {"institution": body(institution("INST-N")), "admin_email": "Admin@Inst-N.cn"}


def test_an_operator_onboards_a_tenant_whose_secrets_work(world: World) -> None:
    made = world.call("operator", "POST", "/v1/tenants", key="onboard-n", json={**BODY, "decides": "portal"})
    assert made.status_code == 201, made.text
    answer = made.json()
    assert (answer["institution"], answer["acceptance"], answer["admin_username"]) == (
        "INST-N",
        "manual",
        "admin@inst-n.cn",
    )
    terms = answer["definition"]
    assert (terms["currency"], terms["daily_quota"], terms["monthly_quota"]) == ("CNY", "10000000.00", "100000000.00")
    secrets = answer["secrets"]
    own = world.client.get("/v1/institutions/INST-N", headers=bearer(secrets["api_key_secret"]))
    assert own.status_code == 200 and own.json() == terms  # read back as it was answered, in the book's CNY
    other = world.client.get("/v1/institutions/INST-A", headers=bearer(secrets["api_key_secret"]))
    assert other.status_code == 404  # a tenant like the others: another institution is missing to it
    users = Users(EngineUnits(world.engine))
    assert users.reset_with_link(secrets["set_password_token"], "a new password!", "req") is not None
    assert users.sign_in("admin@inst-n.cn", "a new password!", "test") is not None
    now = int(time.time())  # the secret handed over is the one its signed callbacks are checked against
    signed = sign([secrets["webhook_secret"]], now, b"m")
    Webhooks(EngineUnits(world.engine), lambda: VAULT).check_callback("INST-N", signed, b"m", now)


def test_a_second_onboarding_is_a_409_and_only_operators_onboard(world: World) -> None:
    assert world.call("operator", "POST", "/v1/tenants", key="first", json=BODY).status_code == 201
    before = state(world)
    again = world.call("operator", "POST", "/v1/tenants", key="second", json={**BODY, "admin_email": "x@inst-n.cn"})
    assert again.status_code == 409 and again.json()["field"] == "institution", again.text
    for who in ("INST-A", "borrower1", "collections"):
        refused = world.call(who, "POST", "/v1/tenants", key=f"by-{who}", json={**BODY, "admin_email": "y@n.cn"})
        assert refused.status_code == 403, (who, refused.text)
    bad = world.call("operator", "POST", "/v1/tenants", key="bad", json={**BODY, "admin_email": "nobody"})
    assert bad.status_code == 422 and bad.json()["field"] == "admin_email", bad.text
    zero = {**BODY["institution"], "code": "INST-Z", "daily_quota": "0"}
    nothing = world.call("operator", "POST", "/v1/tenants", key="zero", json={**BODY, "institution": zero})
    assert nothing.status_code == 422 and nothing.json()["field"] == "daily_quota", nothing.text
    assert state(world) == before


def test_an_institution_in_another_currency_keeps_it_and_funds_none_of_the_book_s_products(world: World) -> None:
    """The book lends in CNY; a USD institution is onboarded with its quotas in USD, read back in USD, and a CNY
    drawdown its open box would take goes to another institution."""
    dollars = body(institution("INST-U", credit_box=CreditBox(max_pd=0.2)), "USD")
    made = world.call("operator", "POST", "/v1/tenants", key="usd", json={**BODY, "institution": dollars})
    assert made.status_code == 201, made.text
    terms = made.json()["definition"]
    # 10^9 cents a day is 10,000,000.00 USD
    assert (terms["currency"], terms["daily_quota"]) == ("USD", "10000000.00")
    read = world.call("operator", "GET", "/v1/institutions/INST-U").json()
    assert read == terms
    quota = world.call("operator", "GET", "/v1/institutions/INST-U/quota").json()
    assert quota["periods"][0]["quota"] == {"amount": "10000000.00", "currency": "USD"}
    line = world.ids[1]["line"]
    drawn = world.call(
        "borrower1",
        "POST",
        f"/v1/credit-lines/{line}/drawdowns",
        key="dd-usd",
        json={"amount": "1000.00", "currency": "CNY", "tenor": 12},
    )
    assert drawn.status_code == 201 and drawn.json()["institution_code"] == "INST-A", drawn.text
