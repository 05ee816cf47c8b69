"""The portal's API keys page: an institution's admin lists, creates, rotates and revokes its own institution's keys
through the API's own calls (audited, idempotent); the secret is shown once; another institution's key is a 404 and
is left as it was; in Debian's Chromium, in English and Chinese, with axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from openice.web.i18n import catalog
from openice.web.visit import LANG_COOKIE
from tests.api.conftest import bearer
from tests.web.conftest import Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible, new_page


def audited(site: Site, action: str) -> list[str]:
    items = site.world.call("operator", "GET", "/v1/audit", params={"action": action}).json()["items"]
    return [a["resource"] for a in items]


def works(site: Site, secret: str) -> int:
    return int(site.world.client.get("/v1/offers", headers=bearer(secret)).status_code)


def form_key_of(html: str) -> str:
    found = re.search(
        r'id="create-key">\s*<input type="hidden" name="csrf" value="[^"]+">\s*'
        r'<input type="hidden" name="key" value="([^"]+)"',
        html,
    )
    assert found
    return found.group(1)


def test_an_admin_creates_a_key_shown_once_and_a_second_post_makes_no_other(site: Site) -> None:
    portal = site.signed_in("inst-a", "portal")
    page = portal.get("/portal/keys").text
    form = {"csrf": csrf_of(page), "key": form_key_of(page), "label": "loan system", "role": "operator"}
    made = portal.post("/portal/keys", data=form)
    assert made.status_code == 200
    secret = re.search(r'<code id="secret">([^<]+)</code>', made.text)
    assert secret and works(site, secret.group(1)) == 200
    listed = site.world.call("INST-A", "GET", "/v1/institutions/INST-A/keys").json()["items"]
    new = [k for k in listed if k["label"] == "loan system"]
    assert len(new) == 1 and (new[0]["role"], new[0]["tenant"]) == ("institution", "INST-A")
    assert audited(site, "api_key.created") == [new[0]["id"]]
    again = portal.post("/portal/keys", data=form)  # the same form posted twice
    assert 'id="secret-gone"' in again.text and 'id="secret"' not in again.text
    assert len(site.world.call("INST-A", "GET", "/v1/institutions/INST-A/keys").json()["items"]) == len(listed)
    shown = portal.get("/portal/keys").text
    assert secret.group(1) not in shown and f'id="key-{new[0]["id"]}"' in shown


def test_another_institutions_key_is_missing_and_left_as_it_was(site: Site) -> None:
    theirs = site.world.call("INST-B", "POST", "/v1/institutions/INST-B/keys", key="b1", json={"label": "b"}).json()
    portal = site.signed_in("inst-a", "portal")
    page = portal.get("/portal/keys").text
    assert f'id="key-{theirs["id"]}"' not in page
    csrf = csrf_of(page)
    for verb in ("rotate", "revoke"):
        tried = portal.post(f"/portal/keys/{theirs['id']}/{verb}", data={"csrf": csrf, "overlap_hours": "0"})
        assert tried.status_code == 404, (verb, tried.text[:300])
    assert works(site, theirs["secret"]) == 200
    assert audited(site, "api_key.rotated") == [] and audited(site, "api_key.revoked") == []


def test_a_post_without_the_form_token_is_refused_and_changes_nothing(site: Site) -> None:
    portal = site.signed_in("inst-a", "portal")
    before = site.world.call("INST-A", "GET", "/v1/institutions/INST-A/keys").json()["items"]
    refused = portal.post("/portal/keys", data={"label": "sneaky"})
    assert refused.status_code == 403
    assert site.world.call("INST-A", "GET", "/v1/institutions/INST-A/keys").json()["items"] == before


@pytest.mark.parametrize(("locale", "says"), [("en", "Give the hours"), ("zh-CN", "小时")])
def test_a_bad_overlap_is_answered_in_place_and_the_key_keeps_its_secret(site: Site, locale: str, says: str) -> None:
    key = site.world.call("INST-A", "POST", "/v1/institutions/INST-A/keys", key="k", json={"label": "x"}).json()
    portal = site.signed_in("inst-a", "portal")
    portal.cookies.set(LANG_COOKIE, locale)
    page = portal.get("/portal/keys").text
    refused = portal.post(f"/portal/keys/{key['id']}/rotate", data={"csrf": csrf_of(page), "overlap_hours": "-1"})
    assert refused.status_code == 422 and 'id="revoke-error"' in refused.text and says in refused.text
    assert audited(site, "api_key.rotated") == [] and works(site, key["secret"]) == 200


def test_an_operator_or_a_desk_cannot_open_the_portals_keys(site: Site) -> None:
    for name, front in (("ops", "console"), ("desk-b", "desk")):
        assert site.signed_in(name, front).get("/portal/keys", follow_redirects=False).status_code == 403


@pytest.mark.parametrize(("locale", "width"), [("en", 1280), ("zh-CN", 390)])
def test_an_admin_makes_rotates_and_revokes_a_key_in_chromium(
    site: Site, served: str, browser: Browser, locale: str, width: int
) -> None:
    outside: list[str] = []
    page = new_page(browser, served, outside, viewport={"width": width, "height": 900}, locale=locale)
    page.context.add_cookies([{"name": LANG_COOKIE, "value": locale, "url": served}])
    browser_sign_in(page, served, "portal", "inst-a")
    page.goto(f"{served}/portal/keys")
    accessible(page)
    page.fill("#new-label", "reporting")
    page.click("#create-key button[type=submit]")
    expect(page.locator("#secret")).to_be_visible()
    secret = page.locator("#secret").inner_text()
    key_id = next(
        k["id"]
        for k in site.world.call("INST-A", "GET", "/v1/institutions/INST-A/keys").json()["items"]
        if k["label"] == "reporting"
    )
    accessible(page)
    assert works(site, secret) == 200

    page.fill(f"#overlap-{key_id}", "0")
    page.click(f"#key-{key_id} button[type=submit]:not(.danger)")
    expect(page.locator("#new-key")).to_be_visible()
    rotated = page.locator("#secret").inner_text()
    assert rotated != secret and works(site, secret) == 401 and works(site, rotated) == 200  # no overlap asked
    accessible(page)

    page.click(f"#key-{key_id} button.danger")
    page.wait_for_url(f"{served}/portal/keys?done=revoked")
    expect(page.locator(f"#key-{key_id}")).to_contain_text(catalog(locale)["key.revoked"].split("{")[0].strip())
    assert works(site, rotated) == 401
    assert audited(site, "api_key.rotated") == [key_id] and audited(site, "api_key.revoked") == [key_id]
    accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert outside == []
