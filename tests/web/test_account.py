"""Accounts: a borrower resets a forgotten password with a code sent to their mobile (throttled as sign-in, never
telling whether a number has an account), staff with a one-time link an operator makes on the console or the
command line; API keys rotate with an overlap; the audit trail reads newest first; domain errors are shown in the
reader's language; sign-up codes key their number's hash and do not tell a registered number apart."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update

from openice.access.audit import record_audit
from openice.access.users import FAILURES_PER_USER
from openice.clock import iso
from openice.errors import Amount, Conflict, ValidationError
from openice.storage import api_tables, decisioning_tables
from openice.web.i18n import Words
from openice.web.visit import LANG_COOKIE, REASON_MOST
from tests.cli import one_line_error, openice
from tests.decisioning.helpers import VAULT
from tests.web.conftest import PASSWORD, Site, csrf_of, sign_in
from tests.web.test_portal import offers_for_inst_a
from tests.web.test_signup import MOBILE, form_token, last_code, outbox, send_code, signed_up

NEW_PASSWORD = "a brand new passphrase"


def audit_rows(site: Site, action: str) -> list[Any]:
    log = api_tables.audit_log
    with site.engine.connect() as conn:
        return list(conn.execute(select(log).where(log.c.action == action).order_by(log.c.id)))


def db_url(engine: Engine) -> str:
    """The test database as the command line reaches it (on PostgreSQL: in the test's own schema)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    with engine.connect() as conn:
        schema = conn.execute(text("SHOW search_path")).scalar_one()
    return f"{url}?options=-csearch_path%3D{schema}"


def ask_reset(client: TestClient, mobile: str = MOBILE) -> Any:
    token = form_token(client, "/app/forgot")
    return client.post("/app/forgot", data={"mobile": mobile, "form_token": token}, follow_redirects=False)


def give_reset(client: TestClient, code: str, password: str = NEW_PASSWORD) -> Any:
    token = form_token(client, "/app/forgot/code")
    data = {"code": code, "password": password, "form_token": token}
    return client.post("/app/forgot/code", data=data, follow_redirects=False)


def age_codes(site: Site) -> None:
    """Past the one-minute wait between two codes to a number."""
    codes = api_tables.sign_up_codes
    earlier = iso(datetime.now(UTC) - timedelta(minutes=2))
    with site.engine.begin() as conn:
        conn.execute(update(codes).values(created_at=earlier))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_borrower_resets_a_forgotten_password_by_text_and_every_session_ends(site: Site) -> None:
    before = signed_up(site)  # a session opened with the old password
    assert before.get("/app/identity").status_code == 200
    age_codes(site)
    client = site.client()
    login = client.get("/app/login").text
    assert 'href="/app/forgot"' in login
    asked = ask_reset(client)
    assert asked.status_code == 303 and asked.headers["location"] == "/app/forgot/code"
    message = outbox(site)[-1]
    assert "new password" in message.text and message.mobile == "139****5678"
    code = last_code(site)

    refused = give_reset(client, wrong(code))
    assert refused.status_code == 422 and 'id="code-error"' in refused.text
    short = give_reset(client, code, "short")
    assert short.status_code == 422 and 'id="password-error"' in short.text  # the code is not spent
    done = give_reset(client, code)
    assert done.status_code == 303 and done.headers["location"] == "/app/login?reset=done", done.text
    assert 'id="reset-done"' in client.get("/app/login?reset=done").text
    assert give_reset(client, code).status_code in (303, 422)  # the cookie is gone or the code is spent
    assert before.get("/app/identity", follow_redirects=False).status_code == 303  # signed out
    assert sign_in(site.client(), "app", MOBILE, PASSWORD).status_code == 401
    assert sign_in(site.client(), "app", MOBILE, NEW_PASSWORD).status_code == 303
    [entry] = audit_rows(site, "user.password_reset")
    assert entry.resource.startswith("user/U") and '"sms"' in entry.detail and entry.role == "borrower"


def test_a_reset_never_tells_whether_a_number_has_an_account(site: Site) -> None:
    signed_up(site)
    age_codes(site)
    sent = len(outbox(site))
    answers = []
    for mobile in (MOBILE, "13800001111"):
        client = site.client()
        asked = ask_reset(client, mobile)
        refused = give_reset(client, "000000" if last_code(site) != "000000" else "111111")
        said = re.search(r'id="code-error">([^<]+)<', refused.text)
        answers.append((asked.status_code, asked.headers["location"], refused.status_code, said and said.group(1)))
    assert answers[0] == answers[1]
    assert answers[0][:3] == (303, "/app/forgot/code", 422) and "not right" in str(answers[0][3])
    assert len(outbox(site)) == sent + 1  # only the registered number got a text


def test_wrong_reset_codes_are_throttled_as_sign_in_is(site: Site) -> None:
    signed_up(site)
    age_codes(site)
    client = site.client()
    ask_reset(client)
    code = last_code(site)
    for _ in range(FAILURES_PER_USER):
        assert give_reset(client, wrong(code)).status_code == 422
    throttled = give_reset(client, code)
    assert throttled.status_code == 429 and "try again in" in throttled.text
    assert sign_in(site.client(), "app", MOBILE, PASSWORD).status_code == 429  # the same limit


def reset_link_from_console(site: Site, username: str) -> tuple[str, str]:
    ops = site.signed_in("ops", "console")
    page = ops.get("/console/users").text
    user_id = site.users[username]["id"]
    assert f'action="/console/users/{user_id}/reset"' in page
    made = ops.post(f"/console/users/{user_id}/reset", data={"csrf": csrf_of(page)})
    assert made.status_code == 200
    found = re.search(r'<code id="link">([^<]+)</code>', made.text)
    assert found
    assert found.group(1) not in ops.get("/console/users").text  # shown once
    return found.group(1), user_id


def set_with_link(client: TestClient, link: str, password: str = NEW_PASSWORD) -> Any:
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{path}")
    assert page.headers["referrer-policy"] == "no-referrer"
    token = re.search(r'name="token" value="([^"]*)"', page.text)
    front = path.split("/", 1)[0]
    form = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form
    data = {"token": token.group(1) if token else "", "password": password, "form_token": form.group(1)}
    return client.post(f"/{front}/reset", data=data, follow_redirects=False)


def test_an_operator_makes_a_one_time_reset_link_for_staff(site: Site) -> None:
    other = site.signed_in("inst-a", "portal")
    link, user_id = reset_link_from_console(site, "inst-a")
    assert "/portal/reset?token=" in link
    [made] = audit_rows(site, "user.reset_link")
    assert made.resource == f"user/{user_id}" and made.key_id == site.users["ops"]["id"]
    assert other.get("/portal/", follow_redirects=False).status_code == 200  # nothing changes until it is used

    client = site.client()
    short = set_with_link(client, link, "short")
    assert short.status_code == 422 and 'id="password-error"' in short.text
    done = set_with_link(client, link)
    assert done.status_code == 303 and done.headers["location"] == "/portal/login?reset=done"
    assert other.get("/portal/", follow_redirects=False).status_code == 303  # every session ended
    assert sign_in(site.client(), "portal", "inst-a", NEW_PASSWORD).status_code == 303
    again = set_with_link(site.client(), link, "yet another passphrase")
    assert again.status_code == 410 and 'id="reset-error"' in again.text  # single use
    unknown = set_with_link(site.client(), link.replace("token=", "token=x"), "yet another passphrase")
    assert unknown.status_code == 410 and unknown.text.count("reset-error") == again.text.count("reset-error")
    [entry] = audit_rows(site, "user.password_reset")
    assert entry.key_id == user_id and '"link"' in entry.detail


def test_a_newer_link_or_the_passing_of_time_ends_a_link(site: Site) -> None:
    first, _ = reset_link_from_console(site, "desk-b")
    second, _ = reset_link_from_console(site, "desk-b")
    assert set_with_link(site.client(), first).status_code == 410
    resets = api_tables.password_resets
    with site.engine.begin() as conn:
        conn.execute(update(resets).values(expires_at=iso(datetime.now(UTC) - timedelta(seconds=1))))
    assert set_with_link(site.client(), second).status_code == 410
    assert sign_in(site.client(), "desk", "desk-b", PASSWORD).status_code == 303


def test_the_command_line_prints_the_same_link(site: Site) -> None:
    url = db_url(site.engine)
    printed = openice("user", "reset-password", "INST-B", "--db", url, "--base-url", "https://ice.example/")
    assert printed.returncode == 0, printed.stderr
    link = printed.stdout.strip().splitlines()[-1]
    assert link.startswith("https://ice.example/portal/reset?token=")
    [entry] = audit_rows(site, "user.reset_link")
    assert entry.role == "system" and '"cli"' in entry.detail
    assert set_with_link(site.client(), link).status_code == 303
    assert sign_in(site.client(), "portal", "inst-b", NEW_PASSWORD).status_code == 303
    assert "nobody" in one_line_error(openice("user", "reset-password", "nobody", "--db", url))


def rotate_on_console(client: TestClient, key_id: str, overlap: str) -> Any:
    page = client.get("/console/keys").text
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key
    data = {"csrf": csrf_of(page), "key": key.group(1), "overlap_hours": overlap}
    return client.post(f"/console/keys/{key_id}/rotate", data=data)


def new_key(site: Site, idempotency_key: str) -> tuple[str, str]:
    made = site.world.call(
        "operator", "POST", "/v1/api-keys", key=idempotency_key, json={"role": "institution", "tenant": "INST-B"}
    ).json()
    return made["secret"], made["id"]


def works(site: Site, secret: str) -> bool:
    answer = site.world.client.get("/v1/institutions/INST-B", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code in (200, 401)
    return answer.status_code == 200


def test_a_key_rotates_on_the_console_with_an_overlap_then_the_old_secret_stops(site: Site) -> None:
    old, key_id = new_key(site, "k-rot")
    ops = site.signed_in("ops", "console")
    bad = rotate_on_console(ops, key_id, "forever")
    assert bad.status_code == 422 and 'id="revoke-error"' in bad.text and "0 to 720" in bad.text
    assert audit_rows(site, "api_key.rotated") == [] and works(site, old)

    rotated = rotate_on_console(ops, key_id, "2")
    assert rotated.status_code == 200 and 'id="overlap"' in rotated.text
    secret = re.search(r'<code id="secret">([^<]+)</code>', rotated.text)
    assert secret
    new = secret.group(1)
    assert works(site, old) and works(site, new) and new not in ops.get("/console/keys").text
    [entry] = audit_rows(site, "api_key.rotated")
    assert entry.resource == key_id and '"overlap_hours": 2.0' in entry.detail
    view = site.world.call("operator", "GET", f"/v1/api-keys/{key_id}").json()
    assert view["id"] == key_id and view["revoked_at"] is None and view["previous_until"]

    keys = api_tables.api_keys
    with site.engine.begin() as conn:  # the overlap has passed
        conn.execute(update(keys).where(keys.c.id == key_id).values(previous_until=iso(datetime.now(UTC))))
    assert not works(site, old) and works(site, new)


def test_the_command_line_rotates_a_key(site: Site) -> None:
    old, key_id = new_key(site, "k-cli")
    url = db_url(site.engine)
    done = openice("api-key", "rotate", key_id, "--overlap-hours", "0", "--db", url)
    assert done.returncode == 0, done.stderr
    new = done.stdout.strip().splitlines()[-1]
    assert not works(site, old) and works(site, new)
    [entry] = audit_rows(site, "api_key.rotated")
    assert entry.resource == key_id and entry.role == "system"
    with site.engine.connect() as conn:
        stored = conn.execute(select(api_tables.api_keys).where(api_tables.api_keys.c.id == key_id)).one()
    assert new not in str(tuple(stored)) and stored.key_hash == hashlib.sha256(new.encode()).hexdigest()
    assert "key_id" in one_line_error(openice("api-key", "rotate", "K-none", "--db", url))


def test_the_audit_trail_reads_newest_first_and_pages_without_gaps(site: Site) -> None:
    with site.engine.begin() as conn:
        for k in range(70):
            record_audit(conn, None, f"req-{k}", "test.filler", f"thing/{k}", {"k": k})
    ops = site.signed_in("ops", "console")
    every = [e["id"] for e in site.world.call("operator", "GET", "/v1/audit", params={"limit": 200}).json()["items"]]
    assert len(every) < 200
    shown: list[int] = []
    page = ops.get("/console/audit").text
    while True:
        ids = [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", page)]
        assert ids == sorted(ids, reverse=True)
        shown += ids
        nxt = re.search(r'rel="next" href="([^"]+)"', page)
        if not nxt:
            break
        page = ops.get(nxt.group(1).replace("&amp;", "&")).text
    assert shown == sorted(every, reverse=True) and len(shown) > 50


def test_an_error_is_written_in_the_readers_language_or_else_in_english() -> None:
    above = ValidationError(
        "CNY 10.00 is more than the CNY 5.00 due today",
        field="amount",
        reason="repay.above_due",
        values={"amount": Amount(1000, "CNY"), "due": Amount(500, "CNY")},
    )
    assert Words("zh-CN").error(above) == "¥10.00 超过了今天应还的 ¥5.00：多出的部分请作为提前还款"
    assert Words("en").error(above).startswith("CN¥10.00 is more than the CN¥5.00 due today")
    unknown = Conflict("something new", field="loan_id", reason="no.such.reason")
    assert Words("zh-CN").error(unknown) == "something new"
    assert Words("zh-CN").error(unknown, with_field=True) == "loan_id: something new"
    assert Words("en").error(Conflict("plain")) == "plain"


def test_a_desk_payment_above_what_is_due_and_a_promise_above_the_overdue_read_in_chinese(site: Site) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    desk = site.signed_in("ann", "desk")
    desk.cookies.set(LANG_COOKIE, "zh-CN")
    page = desk.get(f"/desk/cases/{case['id']}").text
    paid = desk.post(
        f"/desk/cases/{case['id']}/payments", data={"csrf": csrf_of(page), "amount": "999999", "key": "big-1"}
    )
    assert paid.status_code == 422
    error = re.search(r'id="amount-error">([^<]+)<', paid.text)
    assert error and error.group(1).startswith("¥999,999.00 超过了今天应还的 ¥"), error
    promise = desk.post(
        f"/desk/cases/{case['id']}/contacts",
        data={
            "csrf": csrf_of(page),
            "channel": "call",
            "outcome": "promise",
            "promise_amount": "999999",
            "promise_date": site.world.call("operator", "GET", "/v1/business-date").json()["business_date"],
            "key": "promise-1",
        },
    )
    assert promise.status_code == 422
    said = re.search(r'id="promise_amount-error">([^<]+)<', promise.text)
    assert said and said.group(1).startswith("承诺还款金额最多为逾期金额（¥"), said


def test_sign_up_codes_hash_the_number_with_the_key(site: Site) -> None:
    assert send_code(site.client()).status_code == 303
    with site.engine.connect() as conn:
        stored = conn.execute(select(api_tables.sign_up_codes)).one()
    assert stored.mobile_hash == VAULT.keyed_hash("sign_up_mobile", MOBILE) and stored.purpose == "sign_up"
    assert stored.mobile_hash != hashlib.sha256(MOBILE.encode()).hexdigest()


def test_a_registered_number_gets_the_same_answer_and_its_owner_a_notice(site: Site) -> None:
    signed_up(site)
    age_codes(site)
    fresh = send_code(site.client(), "13800002222")
    taken = send_code(site.client())
    assert (taken.status_code, taken.headers["location"]) == (fresh.status_code, fresh.headers["location"])
    notice = outbox(site)[-1]
    assert notice.mobile == "139****5678" and "already has an account" in notice.text
    assert not re.search(r"\b\d{6}\b", notice.text)  # no code to sign up again with


@pytest.mark.parametrize("where", ["write-off", "reveal"])
def test_a_reason_too_long_is_answered_beside_its_field(site: Site, where: str) -> None:
    ops = site.signed_in("ops", "console")
    ops.cookies.set(LANG_COOKIE, "zh-CN")
    long = "x" * (REASON_MOST + 1)
    if where == "write-off":
        loan = site.world.ids[1]["loan"]
        page = ops.get(f"/console/loans/{loan}").text
        key = re.search(r'name="key" value="([^"]+)"', page)
        assert key
        answer = ops.post(
            f"/console/loans/{loan}/write-off", data={"csrf": csrf_of(page), "reason": long, "key": key.group(1)}
        )
        field = "reason"
    else:
        borrower = site.world.ids[1]["borrower"]
        page = ops.get(f"/console/borrowers/{borrower}").text
        answer = ops.post(f"/console/borrowers/{borrower}/reveal", data={"csrf": csrf_of(page), "reason": long})
        field = "reveal_reason"
    assert answer.status_code == 422
    said = re.search(rf'id="{field}-error">([^<]+)<', answer.text)
    assert said and said.group(1) == f"最多 {REASON_MOST} 个字符（当前 {REASON_MOST + 1} 个）"
    assert audit_rows(site, "pii.revealed") == [] and audit_rows(site, "loan.write_off") == []


def test_the_portal_hides_offers_past_their_deadline_before_the_sweeper_runs(site: Site) -> None:
    late, live = offers_for_inst_a(site, 2)
    offers = decisioning_tables.offers
    with site.engine.begin() as conn:
        conn.execute(update(offers).where(offers.c.id == late).values(expires_at=iso(datetime.now(UTC))))
    home = site.signed_in("inst-a", "portal").get("/portal/").text
    assert f'id="offer-{late}"' not in home and f'id="offer-{live}"' in home
    with site.engine.connect() as conn:  # not yet closed: the page did not wait for the sweeper
        assert conn.execute(select(offers.c.status).where(offers.c.id == late)).scalar_one() == "sent"
