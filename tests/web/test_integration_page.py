"""The portal's integration page: an institution sees its own deliveries only, changes its endpoint and events
through the API's own call (checked the same way, nothing changed on a mistake) and rotates its signing secret,
which is shown once."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, expect
from sqlalchemy import func, select

from openice.matching.deliveries import DeliveryRepository
from openice.storage import api_tables
from tests.web.conftest import Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible, new_page


def audits(site: Site, action: str) -> int:
    log = api_tables.audit_log
    with site.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(log).where(log.c.action == action)).scalar_one()


def test_an_institution_sees_its_own_deliveries_only(site: Site) -> None:
    with site.engine.begin() as conn:
        deliveries = DeliveryRepository(conn)
        mine = deliveries.enqueue("INST-A", "loan.funded", "loan/1", "k-a", {"loan_id": 1}, time.time())
        theirs = deliveries.enqueue("INST-B", "loan.funded", "loan/2", "k-b", {"loan_id": 2}, time.time())
    page = site.signed_in("inst-a", "portal").get("/portal/integration")
    assert page.status_code == 200
    assert f'id="delivery-{mine}"' in page.text and f'id="delivery-{theirs}"' not in page.text
    assert "Loan funded" in page.text and "Waiting" in page.text
    assert 'id="circuit">Reachable' in page.text


def test_the_endpoint_and_events_are_saved_through_the_apis_call(site: Site) -> None:
    portal = site.signed_in("inst-a", "portal")
    csrf = csrf_of(portal.get("/portal/integration").text)
    before = site.world.call("operator", "GET", "/v1/institutions/INST-A").json()
    for typed, field in (
        ({"webhook_url": "ftp://inst-a.example", "events": ["offer"]}, "webhook_url"),
        ({"webhook_url": "https://inst-a.example/hooks", "events": ["loan.sold"]}, "events"),
    ):
        refused = portal.post("/portal/integration", data={"csrf": csrf, **typed})
        assert refused.status_code == 422 and f'id="{field}-error"' in refused.text, typed
    assert site.world.call("operator", "GET", "/v1/institutions/INST-A").json() == before
    saved = portal.post(
        "/portal/integration",
        data={"csrf": csrf, "webhook_url": "https://inst-a.example/hooks", "events": ["offer", "loan.funded"]},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/portal/integration?done=saved"
    after = site.world.call("operator", "GET", "/v1/institutions/INST-A").json()
    assert (after["webhook_url"], after["events"]) == ("https://inst-a.example/hooks", ["offer", "loan.funded"])
    assert {k: v for k, v in after.items() if k not in ("webhook_url", "events")} == {
        k: v for k, v in before.items() if k not in ("webhook_url", "events")
    }
    assert audits(site, "institution.upserted") >= 1


def test_the_signing_secret_is_shown_once_and_the_rotation_audited(site: Site) -> None:
    portal = site.signed_in("inst-a", "portal")
    page = portal.get("/portal/integration").text
    assert 'id="secret"' not in page and "None yet" in page
    rotated = portal.post("/portal/integration/secret", data={"csrf": csrf_of(page)})
    assert rotated.status_code == 200
    secret = re.search(r'<code id="secret">([0-9a-f]{64})</code>', rotated.text)
    assert secret is not None
    again = portal.get("/portal/integration").text
    assert secret.group(1) not in again and "Rotated on" in again
    assert audits(site, "gateway.secret_rotated") == 1
    other = site.signed_in("inst-b", "portal").get("/portal/integration").text
    assert "None yet" in other  # B's secret is its own


def test_the_integration_page_in_the_browser_is_accessible(site: Site, served: str, browser: Browser) -> None:
    outside: list[str] = []
    page = new_page(browser, served, outside)
    browser_sign_in(page, served, "portal", "inst-a")
    page.click("nav >> text=Integration")
    page.fill("#webhook_url", "not an address")
    page.click("#endpoint-form button")
    expect(page.locator("#webhook_url")).to_have_value("not an address")  # the browser refuses it before posting
    page.fill("#webhook_url", "https://inst-a.example/hooks")
    page.check("input[value='loan.overdue']")
    page.click("#endpoint-form button")
    expect(page.locator("[role=status]")).to_contain_text("Saved")
    expect(page.locator("input[value='loan.overdue']")).to_be_checked()
    accessible(page)
    assert outside == []
