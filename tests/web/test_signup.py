"""A borrower signs up in the app with a one-time code (read from the development outbox), registers their
identity with consent, applies and reads the decision; wrong, expired and exhausted codes and resend throttling are
refused; a borrower who has only signed up sees nothing but the identity page; bad identity input is answered in
place with nothing stored."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from sqlalchemy import func, select, update

from openice.access.sign_up import MAX_ATTEMPTS
from openice.api.settings import Settings
from openice.errors import ValidationError
from openice.money import MAX_MINOR, to_minor
from openice.storage import api_tables, decisioning_tables
from openice.web.i18n import Words, catalog
from openice.web.onboarding import CONSENT_VERSION, REASONS, reasons_in_words
from tests.decisioning.helpers import person
from tests.web.conftest import PASSWORD, Site, csrf_of
from tests.web.test_borrower_app import audits, fits
from tests.web.test_browser import accessible

MOBILE = "13912345678"
APPLICATION = {
    "product_code": "CASH-EI",
    "income_monthly": "15000.00",
    "employment": "salaried",
    "existing_debt_monthly": "1000",
    "existing_debt_balance": "",
    "requested_amount": "30000",
    "requested_tenor": "12",
    "purpose": "education",
}


def identity(k: int = 7) -> dict[str, str]:
    """A valid identity as the form takes it: the test helpers' person k."""
    reg = person(k)
    fields = ("name", "national_id", "province", "city")
    return {**{f: reg[f] for f in fields}, "date_of_birth": reg["date_of_birth"].isoformat()}


def form_token(client: TestClient, path: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def send_code(client: TestClient, mobile: str = MOBILE) -> Any:
    token = form_token(client, "/app/signup")
    return client.post("/app/signup", data={"mobile": mobile, "form_token": token}, follow_redirects=False)


def give_code(client: TestClient, code: str, password: str = PASSWORD) -> Any:
    token = form_token(client, "/app/signup/code")
    data = {"code": code, "password": password, "form_token": token}
    return client.post("/app/signup/code", data=data, follow_redirects=False)


def outbox(site: Site) -> list[Any]:
    with site.engine.connect() as conn:
        return list(conn.execute(select(api_tables.sms_outbox).order_by(api_tables.sms_outbox.c.id)))


def last_code(site: Site) -> str:
    found = re.search(r"\b(\d{6})\b", outbox(site)[-1].text)
    assert found, "the message carries no code"
    return found.group(1)


def age_codes(site: Site, by: timedelta) -> None:
    """Move every code back in time, as if sent `by` earlier and living as long."""
    codes = api_tables.sign_up_codes
    with site.engine.begin() as conn:
        for row in conn.execute(select(codes)).all():
            moved = {
                name: (datetime.fromisoformat(getattr(row, name)) - by).isoformat(timespec="milliseconds")
                for name in ("created_at", "expires_at")
            }
            conn.execute(update(codes).where(codes.c.id == row.id).values(**moved))


def user(site: Site, username: str = MOBILE) -> Any:
    users = api_tables.users
    with site.engine.connect() as conn:
        return conn.execute(select(users).where(users.c.username == username)).first()


def borrowers(site: Site) -> int:
    with site.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(decisioning_tables.borrowers)).scalar_one()


def signed_up(site: Site) -> TestClient:
    """A client whose number has been proved: signed in as a borrower without a registered identity."""
    client = site.client()
    assert send_code(client).headers["location"] == "/app/signup/code"
    answer = give_code(client, last_code(site))
    assert answer.status_code == 303 and answer.headers["location"] == "/app/identity", answer.text
    return client


def register(client: TestClient, **changes: str) -> Any:
    data = {**identity(), "consent": CONSENT_VERSION, **changes}
    data["csrf"] = csrf_of(client.get("/app/identity").text)
    return client.post("/app/identity", data=data, follow_redirects=False)


def apply(client: TestClient, **changes: str) -> Any:
    page = client.get("/app/apply").text
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key
    data = {**APPLICATION, **changes, "csrf": csrf_of(page), "key": key.group(1)}
    return client.post("/app/apply", data=data, follow_redirects=False), data


def test_sign_up_identity_application_and_the_decision_with_the_line(site: Site) -> None:
    client = signed_up(site)
    made = user(site)
    assert made.role == "borrower" and made.tenant is None and made.display_name == "139****5678"
    registered = register(client)
    assert registered.status_code == 303 and registered.headers["location"] == "/app/apply", registered.text
    borrower_id = user(site).tenant
    assert borrower_id and borrower_id.startswith("B")
    assert audits(site, "borrower.registered") == 3 and audits(site, "user.borrower_bound") == 1

    answered, posted = apply(client)
    assert answered.status_code == 303, answered.text
    decision_id = answered.headers["location"].rsplit("/", 1)[1]
    again = client.post("/app/apply", data=posted, follow_redirects=False)  # the same form posted twice
    assert again.headers["location"] == answered.headers["location"]
    assert audits(site, "decision.made") == 3

    api = site.world.call("operator", "GET", f"/v1/decisions/{decision_id}").json()
    assert api["outcome"] == "approved" and api["borrower_id"] == borrower_id
    line = site.world.call("operator", "GET", f"/v1/credit-lines/{api['line_id']}").json()
    page = client.get(answered.headers["location"])
    assert page.status_code == 200
    en = Words("en")
    assert f'id="line-amount">{en.money(to_minor(line["amount"]["amount"], "CNY"), "CNY")}<' in page.text
    assert f'id="grade">{line["grade"]}<' in page.text
    assert f'id="rate">{en.percent(line["rate_ppm"] / 1_000_000)}<' in page.text
    assert f'id="apr">{en.percent(line["apr_ppm"] / 1_000_000)}<' in page.text
    assert f'href="/app/lines/{line["id"]}/draw"' in page.text
    assert f'id="line-{line["id"]}"' in client.get("/app/").text  # the home page has the new line
    assert client.get("/app/identity", follow_redirects=False).headers["location"] == "/app/"


def test_the_code_is_in_the_outbox_and_the_number_is_not(site: Site) -> None:
    client = site.client()
    assert send_code(client, "139 1234 5678").status_code == 303
    [message] = outbox(site)
    assert message.mobile == "139****5678" and MOBILE not in message.text
    assert re.search(r"\b\d{6}\b", message.text)
    with site.engine.connect() as conn:
        stored = conn.execute(select(api_tables.sign_up_codes)).one()
    assert last_code(site) not in (stored.code_hash, stored.salt) and MOBILE not in stored.mobile_hash


def test_a_bad_number_is_answered_in_place_and_nothing_is_sent(site: Site) -> None:
    """(A number that has signed up already is answered as any other: tests/web/test_account.py.)"""
    bad = send_code(site.client(), "12345")
    assert bad.status_code == 422 and 'id="mobile-error"' in bad.text
    assert "11 digits starting with 1" in bad.text
    assert outbox(site) == []


def test_a_wrong_code_is_refused_and_five_wrong_codes_spend_it(site: Site) -> None:
    client = site.client()
    send_code(client)
    right = last_code(site)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    first = give_code(client, wrong)
    assert first.status_code == 422 and 'id="code-error"' in first.text and user(site) is None
    for _ in range(MAX_ATTEMPTS - 1):
        assert give_code(client, wrong).status_code == 422
    spent = give_code(client, right)
    assert spent.status_code == 422 and "Too many wrong codes" in spent.text
    assert user(site) is None


def test_an_expired_code_is_refused(site: Site) -> None:
    client = site.client()
    send_code(client)
    age_codes(site, timedelta(minutes=5, seconds=1))
    late = give_code(client, last_code(site))
    assert late.status_code == 422 and "expired" in late.text and user(site) is None


def test_a_short_password_keeps_the_code_for_another_try(site: Site) -> None:
    client = site.client()
    send_code(client)
    short = give_code(client, last_code(site), "short")
    assert short.status_code == 422 and 'id="password-error"' in short.text and user(site) is None
    assert give_code(client, last_code(site)).status_code == 303 and user(site) is not None


def test_codes_are_sent_at_most_once_a_minute_and_five_times_an_hour(site: Site) -> None:
    client = site.client()
    assert send_code(client).status_code == 303
    soon = send_code(client)
    assert soon.status_code == 429 and "seconds" in soon.text and len(outbox(site)) == 1
    for sent in range(2, 6):
        age_codes(site, timedelta(seconds=61))
        assert send_code(client).status_code == 303
        assert len(outbox(site)) == sent
    age_codes(site, timedelta(seconds=61))
    assert send_code(client).status_code == 429 and len(outbox(site)) == 5
    age_codes(site, timedelta(hours=1))
    assert send_code(client).status_code == 303
    assert give_code(client, last_code(site)).status_code == 303  # the newest code is the one that counts


def test_a_borrower_who_only_signed_up_is_sent_to_register_and_sees_nothing(site: Site) -> None:
    client = signed_up(site)
    ids = site.world.ids[1]
    for path in (
        "/app/",
        "/app/messages",
        f"/app/loans/{ids['loan']}",
        f"/app/lines/{ids['line']}/draw",
        f"/app/drawdowns/{ids['drawdown']}",
        "/app/apply",
        f"/app/decisions/{ids['decision']}",
    ):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/app/identity", path
    form = client.get("/app/identity")
    assert form.status_code == 200 and 'id="consent"' in form.text and ids["borrower"] not in form.text
    posted = client.post(
        "/app/apply", data={**APPLICATION, "csrf": csrf_of(form.text), "key": "k-1"}, follow_redirects=False
    )
    assert posted.headers["location"] == "/app/identity" and audits(site, "decision.made") == 2


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"national_id": "110101199001011234"}, "national_id", "18-character resident ID"),
        ({"date_of_birth": "1970-01-01"}, "date_of_birth", "as on your ID card"),
        ({"name": " "}, "name", "name as on your ID card"),
        ({"consent": ""}, "consent", "Tick the box"),
    ],
)
def test_bad_identity_is_answered_beside_its_field_and_nothing_is_stored(
    site: Site, changes: dict[str, str], field: str, says: str
) -> None:
    client = signed_up(site)
    before = borrowers(site)
    answer = register(client, **changes)
    assert answer.status_code == 422 and f'id="{field}-error"' in answer.text and says in answer.text
    assert borrowers(site) == before and user(site).tenant is None
    assert audits(site, "user.borrower_bound") == 0
    typed = changes.get("national_id", identity()["national_id"])
    assert f'value="{typed}"' in answer.text  # what was typed stays in the form


def test_another_persons_identity_cannot_be_claimed(site: Site) -> None:
    """Borrower 1 registered with another number: knowing their name and ID number is not enough."""
    client = signed_up(site)
    answer = register(client, **identity(1))
    assert answer.status_code == 422 and 'id="national_id-error"' in answer.text
    assert user(site).tenant is None and audits(site, "user.borrower_bound") == 0


def test_a_decline_gives_its_reasons_in_plain_words(site: Site) -> None:
    client = signed_up(site)
    register(client)
    answered, _ = apply(client, income_monthly="3000", existing_debt_monthly="2500")
    page = client.get(answered.headers["location"])
    assert 'data-outcome="declined"' in page.text
    reasons = re.findall(r"<li>([^<]+)</li>", page.text.split('id="reasons"')[1])
    assert reasons and all(r in catalog("en").values() for r in reasons)
    assert "affordability" not in page.text.lower().split('id="reasons"')[1]


def test_every_reason_code_has_words_and_an_unknown_one_reads_as_the_generic_sentence() -> None:
    for locale in ("en", "zh-CN"):
        assert {*REASONS.values(), "signup.reason.other"} <= set(catalog(locale))
    en = Words("en")
    read = reasons_in_words(en, ["cut-off: PD 0.3 above 0.2", "no price for grade G", "novel_rule: odd", "x"])
    assert read == [en("signup.reason.cut_off"), en("signup.reason.other")]


@pytest.mark.parametrize(
    ("field", "typed", "locale"),
    [
        ("requested_amount", "-5", "en"),
        ("requested_amount", "0", "zh-CN"),
        ("requested_amount", "30000.001", "en"),
        ("income_monthly", "15,000", "zh-CN"),
        ("existing_debt_balance", "10000000000.01", "en"),  # a fen above the largest amount an application takes
    ],
)
def test_bad_application_input_is_answered_in_place(site: Site, field: str, typed: str, locale: str) -> None:
    """An amount the API's own conversion refuses is said beside its field in the reader's language, with the
    range an amount may take; nothing is decided."""
    client = signed_up(site)
    client.cookies.set("openice_lang", locale)
    register(client)
    answer, _ = apply(client, **{field: typed})
    assert answer.status_code == 422 and f'id="{field}-error"' in answer.text
    words = Words(locale)
    key = "units.error.requested" if field == "requested_amount" else "units.error.amount"
    assert html.escape(words(key, most=words.money(MAX_MINOR, "CNY")), quote=False) in answer.text
    assert audits(site, "decision.made") == 2


def test_the_sign_up_speaks_chinese_and_the_sms_setting_is_checked(site: Site) -> None:
    client = site.client()
    client.cookies.set("openice_lang", "zh-CN")
    assert "获取验证码" in client.get("/app/signup").text
    send_code(client)
    assert "验证码" in outbox(site)[-1].text
    with pytest.raises(ValidationError, match="sms"):
        Settings(sms="pigeon")


def test_a_borrower_signs_up_and_applies_on_a_phone(site: Site, served: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{served}/app/login")
        page.click("a[href='/app/signup']")
        fits(page, 390)
        accessible(page)
        page.fill("#mobile", MOBILE)
        page.click("#signup-form button[type=submit]")
        page.wait_for_selector("#code-form")
        fits(page, 390)
        accessible(page)
        page.fill("#code", last_code(site))
        page.fill("#password", PASSWORD)
        page.click("#code-form button[type=submit]")
        page.wait_for_selector("#identity-form")
        fits(page, 390)
        accessible(page)
        for name, value in identity().items():
            page.fill(f"#{name}", value)
        page.check("#consent")
        page.click("#identity-form button[type=submit]")
        page.wait_for_selector("#apply-form")
        fits(page, 390)
        accessible(page)
        for name in ("requested_amount", "income_monthly", "existing_debt_monthly"):
            page.fill(f"#{name}", APPLICATION[name])
        page.click("#apply-form button[type=submit]")
        page.wait_for_selector("#line-amount")
        fits(page, 390)
        accessible(page)
    finally:
        context.close()
    assert user(site).tenant is not None
