"""The settlement pages: an institution reads its statements (the API's figures, its own only) in English and
Chinese, downloads them as CSV and sees a bad date beside its field; the operator sees every institution's
outstanding; the portal page in a real browser, without an accessibility violation."""

from __future__ import annotations

import csv
import io
from datetime import date

from playwright.sync_api import Browser, expect

from openice.close_of_day import run_until
from openice.web.visit import LANG_COOKIE
from tests.web.conftest import Site, browser_sign_in
from tests.web.test_browser import accessible

JANUARY = {"period": "month", "from": "2026-01-01", "to": "2026-01-31"}


def test_an_institution_reads_its_own_statements(site: Site) -> None:
    """INST-A funded borrower 1's 10,000.00 on 15 January: a 30 bp referral fee, 30.00 it owes the platform."""
    api = site.world.call("INST-A", "GET", "/v1/institutions/INST-A/settlements", params=JANUARY).json()
    (statement,) = api["statements"]
    client = site.signed_in("inst-a", "portal")
    page = client.get("/portal/settlements", params=JANUARY)
    assert page.status_code == 200, page.text
    assert 'id="CNY-2026-01"' in page.text and "Open" in page.text
    assert f'data-minor="{-3000}"' in page.text and "-CN¥30.00" in page.text  # the net, as the API gives it
    assert statement["net"] == "-30.00" and "INST-B" not in page.text
    download = client.get("/portal/settlements.csv", params=JANUARY)
    (row,) = csv.DictReader(io.StringIO(download.text))
    assert (row["id"], row["referral_fees"], row["net"]) == ("CNY-2026-01", "30.00", "-30.00")
    other = site.signed_in("inst-b", "portal").get("/portal/settlements", params=JANUARY).text
    assert 'id="CNY-2026-01"' in other and "-CN¥30.00" not in other  # INST-B's own statement: borrower 2's loan
    client.cookies.set(LANG_COOKIE, "zh-CN")
    chinese = client.get("/portal/settlements", params=JANUARY).text
    assert "与平台的结算" in chinese and "导流费" in chinese and "未结" in chinese


def test_a_bad_date_is_shown_beside_its_field(site: Site) -> None:
    client = site.signed_in("inst-a", "portal")
    page = client.get("/portal/settlements", params={"from": "2026-02-30"})
    assert page.status_code == 422
    assert 'id="from" name="from" value="2026-02-30" placeholder="2026-01-01" aria-invalid="true"' in page.text
    assert "is not a date" in page.text


def test_the_operator_sees_every_institutions_outstanding(site: Site) -> None:
    run_until(site.engine, date(2026, 2, 1))
    paid = site.world.call("operator", "POST", "/v1/institutions/INST-B/settlements/CNY-2026-01/paid", key="b1")
    assert paid.status_code == 201, paid.text
    page = site.signed_in("ops", "console").get("/console/settlements")
    assert page.status_code == 200
    assert 'id="INST-A-CNY"' in page.text and 'id="INST-B-CNY"' in page.text
    assert "-CN¥30.00" in page.text  # INST-A has not paid January's referral fee yet
    assert site.signed_in("inst-a", "portal").get("/console/settlements").status_code in (303, 403)


def test_the_portal_page_in_a_browser(site: Site, served: str, browser: Browser) -> None:
    page = browser.new_page()
    try:
        browser_sign_in(page, served, "portal", "inst-a")
        page.click("text=Settlement")
        page.select_option("#period", "day")
        page.fill("#from", "2026-01-01")
        page.fill("#to", "2026-01-31")
        page.click("form.inline-form button[type=submit]")
        expect(page.locator("#statements tr#CNY-2026-01-15")).to_contain_text("-CN¥30.00")
        accessible(page)
    finally:
        page.close()
