"""Signing in to the front-ends: the same tenancy as API keys, forms that cannot be forged, sessions that cannot
be fixed or outlive a sign-out, guessing slowed down, and a second factor for those who have one."""

from __future__ import annotations

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openice.access.users import FAILURES_PER_USER, Users
from openice.storage import api_tables
from openice.storage.uow import EngineUnits
from openice.web.visit import SESSION_COOKIE
from tests.web.conftest import PASSWORD, Site, csrf_of, form_token, sign_in


def test_a_page_sends_a_stranger_to_sign_in_and_back(site: Site) -> None:
    client = site.client()
    first = client.get("/console/loans?status=active", follow_redirects=False)
    assert (
        first.status_code == 303 and first.headers["location"] == "/console/login?next=/console/loans%3Fstatus%3Dactive"
    )
    token = form_token(client, "console")
    done = client.post(
        "/console/login",
        data={"username": "ops", "password": PASSWORD, "form_token": token, "next": "/console/loans?status=active"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/loans?status=active"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")


def test_a_wrong_password_is_refused_in_place(site: Site) -> None:
    client = site.client()
    answer = sign_in(client, "console", "ops", "not the password")
    assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    assert SESSION_COOKIE not in answer.cookies


def test_each_role_signs_in_to_its_own_front_end(site: Site) -> None:
    client = site.client()
    answer = sign_in(client, "console", "inst-a", PASSWORD)  # signed in at the console, sent to the portal
    assert answer.headers["location"] == "/portal/"
    assert client.get("/console/", follow_redirects=False).status_code == 403
    assert client.get("/desk/", follow_redirects=False).status_code == 403


def test_an_institution_desk_sees_only_its_own_cases_and_loans(site: Site) -> None:
    site.world.first_due()
    loan_a, loan_b = site.world.ids[1]["loan"], site.world.ids[2]["loan"]
    desk_b = site.signed_in("desk-b", "desk")
    queue = desk_b.get("/desk/").text
    assert f"<td>{loan_b}</td>" in queue and f"<td>{loan_a}</td>" not in queue
    platform = site.signed_in("ann", "desk").get("/desk/").text
    assert f"<td>{loan_a}</td>" in platform and f"<td>{loan_b}</td>" in platform
    case_a = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan_a}).json()["items"][0]
    assert desk_b.get(f"/desk/cases/{case_a['id']}").status_code == 404  # another institution's case is missing


def test_posts_without_the_form_token_change_nothing(site: Site) -> None:
    client = site.signed_in("ops", "console")
    before = len(Users(EngineUnits(site.engine)).list())
    data = {"username": "mallory", "password": PASSWORD, "role": "operator", "tenant": "platform"}
    assert client.post("/console/users", data=data).status_code == 403
    assert client.post("/console/users", data={**data, "csrf": "guessed"}).status_code == 403
    assert len(Users(EngineUnits(site.engine)).list()) == before
    good = client.post("/console/users", data={**data, "csrf": csrf_of(client.get("/console/users").text)})
    assert good.status_code == 200 and "mallory" in good.text


def test_a_sign_in_form_without_its_cookie_token_is_refused(site: Site) -> None:
    client = TestClient(site.world.client.app)
    answer = client.post("/console/login", data={"username": "ops", "password": PASSWORD, "form_token": "x"})
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.cookies


def test_bad_input_is_answered_beside_its_field(site: Site) -> None:
    client = site.signed_in("ops", "console")
    csrf = csrf_of(client.get("/console/users").text)
    data = {"username": "x", "password": "short", "role": "operator", "tenant": "platform", "csrf": csrf}
    answer = client.post("/console/users", data=data)
    assert answer.status_code == 422
    assert 'id="username-error"' in answer.text and 'value="x"' in answer.text


def test_a_stored_script_in_a_name_is_shown_as_text(site: Site) -> None:
    Users(EngineUnits(site.engine)).create(
        "eve", PASSWORD, "operator", "platform", display_name="<script>alert(1)</script>"
    )
    page = site.signed_in("eve", "console").get("/console/users").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_planted_session_token_is_never_promoted(site: Site) -> None:
    client = site.client()
    client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker")
    answer = sign_in(client, "console", "ops", PASSWORD)
    assert answer.cookies[SESSION_COOKIE] != "planted-by-an-attacker"
    attacker = site.client()
    attacker.cookies.set(SESSION_COOKIE, "planted-by-an-attacker")
    assert attacker.get("/console/", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_on_the_server(site: Site) -> None:
    client = site.signed_in("ops", "console")
    token = client.cookies[SESSION_COOKIE]
    csrf = csrf_of(client.get("/console/").text)
    assert client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    replay = site.client()
    replay.cookies.set(SESSION_COOKIE, token)  # the old cookie, kept by someone
    assert replay.get("/console/", follow_redirects=False).status_code == 303


def test_disabling_a_user_ends_their_sessions(site: Site) -> None:
    client = site.signed_in("ann", "desk")
    assert client.get("/desk/").status_code == 200
    Users(EngineUnits(site.engine)).disable(site.users["ann"]["id"])
    assert client.get("/desk/", follow_redirects=False).status_code == 303
    assert sign_in(site.client(), "desk", "ann", PASSWORD).status_code == 401


def test_guessing_is_throttled_per_user_name(site: Site) -> None:
    client = site.client()
    for _ in range(FAILURES_PER_USER):
        assert sign_in(client, "console", "ops", "wrong guess").status_code == 401
    blocked = sign_in(client, "console", "ops", PASSWORD)  # even the right password waits out the window
    assert blocked.status_code == 429 and "try again in" in blocked.text
    assert sign_in(client, "desk", "ann", PASSWORD).status_code == 303  # another user is not held up
    with site.engine.connect() as conn:
        rows = conn.execute(
            select(api_tables.sign_in_attempts.c.succeeded).where(api_tables.sign_in_attempts.c.username == "ops")
        ).all()
    assert [r.succeeded for r in rows] == [False] * FAILURES_PER_USER


def test_a_second_factor_is_asked_for_and_checked(site: Site) -> None:
    made = Users(EngineUnits(site.engine)).create("sec", PASSWORD, "operator", "platform", second_factor=True)
    totp = pyotp.parse_uri(made["totp_uri"])
    client = site.client()
    answer = sign_in(client, "console", "sec", PASSWORD)
    assert answer.headers["location"].startswith("/console/second-factor")
    assert client.get("/console/", follow_redirects=False).headers["location"].startswith("/console/second-factor")
    token = form_token(client, "console")
    wrong = client.post("/console/second-factor", data={"code": "000000", "form_token": token}, follow_redirects=False)
    assert wrong.status_code == 401
    right = client.post(
        "/console/second-factor", data={"code": totp.now(), "form_token": token}, follow_redirects=False
    )
    assert right.status_code == 303 and client.get("/console/").status_code == 200


@pytest.mark.parametrize("password", ["", "short"])
def test_a_user_needs_a_real_password(site: Site, password: str) -> None:
    from openice.errors import ValidationError

    with pytest.raises(ValidationError, match="at least 10"):
        Users(EngineUnits(site.engine)).create("weak", password, "operator", "platform")


def test_a_missing_row_or_a_malformed_address_is_a_page_not_a_json_document(site: Site) -> None:
    client = site.signed_in("ops", "console")
    missing = client.get("/console/loans/999999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Not found, or not yours to see." in missing.text
    malformed = client.get("/console/loans?after=-5")
    assert malformed.status_code == 422 and malformed.headers["content-type"].startswith("text/html")
    assert site.client().get("/v1/loans/1").headers["content-type"].startswith("application/problem+json")
