"""The institution portal's credit box, quotas and pricing, changed through the API's own model and call after a
preview against the last 30 days of drawdowns; and its book's figures, as the API gives them to its key."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import Browser
from sqlalchemy import select

from openice.storage import api_tables
from openice.web.visit import LANG_COOKIE
from tests.web.conftest import Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible, new_page

TYPED = re.compile(r'<input id="f-(\w+)" name="\w+" value="([^"]*)"')


def form_of(html: str) -> dict[str, Any]:
    """The settings form as drawn: every field's value, the ticked products, the form and preview tokens."""
    data: dict[str, Any] = dict(TYPED.findall(html))
    data["products"] = re.findall(r'name="products" value="([^"]+)" checked', html)
    data["csrf"] = csrf_of(html)
    previewed = re.search(r'name="previewed" value="([^"]*)"', html)
    data["previewed"] = previewed.group(1) if previewed else ""
    return data


def post(client: TestClient, path: str, data: dict[str, Any]) -> Response:
    return client.post(path, data=data, follow_redirects=False)


def api_box(site: Site, code: str = "INST-A") -> dict[str, Any]:
    found = site.world.call(code, "GET", f"/v1/institutions/{code}")
    assert found.status_code == 200, found.text
    return dict(found.json())


def upserts(site: Site, code: str = "INST-A") -> list[Any]:
    with site.engine.connect() as conn:
        audit = api_tables.audit_log
        return list(
            conn.execute(select(audit).where(audit.c.action == "institution.upserted", audit.c.resource == code))
        )


def cell(html: str, row: str) -> tuple[str, str]:
    found = re.search(rf'<tr id="{row}">.*?<td class="num">([^<]*)</td><td class="num" data-minor="(\d+)"', html, re.S)
    assert found, row
    return found.group(1), found.group(2)


def test_an_edit_previewed_then_saved_changes_what_the_api_returns(site: Site) -> None:
    """INST-A funds up to 15,000.00: raising that to 25,000.00 would have let borrower 2's 20,000.00 through too."""
    client = site.signed_in("inst-a", "portal")
    page = client.get("/portal/settings")
    assert page.status_code == 200
    form = form_of(page.text)
    assert form["max_amount"] == "15000.00" and form["max_pd"] == "20" and form["rate"] == "10"
    before = len(upserts(site))

    form["max_amount"] = "25,000.00"
    preview = post(client, "/portal/settings/preview", form)
    assert preview.status_code == 200, preview.text
    assert cell(preview.text, "row-drawdowns") == ("2", "3000000")
    assert cell(preview.text, "row-accepted_before") == ("1", "1000000")
    assert cell(preview.text, "row-accepted_after") == ("2", "3000000")
    assert cell(preview.text, "row-newly_accepted") == ("1", "2000000")
    assert cell(preview.text, "row-newly_refused") == ("0", "0")
    assert "CN¥20,000.00" in preview.text
    criterion = re.search(r'<tr id="criterion-amount">.*?</tr>', preview.text, re.S)
    assert criterion and re.findall(r'class="num">(\d+)<', criterion.group(0)) == ["0", "1"]
    assert '<th scope="row">Largest drawdown</th><td>CN¥15,000.00</td><td>CN¥25,000.00</td>' in preview.text
    assert api_box(site)["credit_box"]["max_amount"] == "15000.00" and len(upserts(site)) == before  # not saved yet

    saved = post(client, "/portal/settings", form_of(preview.text))
    assert saved.status_code == 303 and saved.headers["location"] == "/portal/settings?done=saved"
    assert api_box(site)["credit_box"]["max_amount"] == "25000.00"
    rows = upserts(site)
    assert len(rows) == before + 1
    assert (rows[-1].role, rows[-1].tenant, rows[-1].key_id) == ("institution", "INST-A", site.users["inst-a"]["id"])
    assert "Saved" in client.get("/portal/settings?done=saved").text


def test_terms_changed_after_the_preview_are_previewed_again_not_saved(site: Site) -> None:
    client = site.signed_in("inst-a", "portal")
    form = form_of(post(client, "/portal/settings/preview", form_of(client.get("/portal/settings").text)).text)
    form["max_amount"] = "5000.00"  # typed after the preview
    again = post(client, "/portal/settings", form)
    assert again.status_code == 200 and "changed after the preview" in again.text
    assert cell(again.text, "row-newly_refused") == ("1", "1000000")
    assert api_box(site)["credit_box"]["max_amount"] == "15000.00"


def test_bad_values_are_answered_beside_their_fields_and_nothing_is_saved(site: Site) -> None:
    client = site.signed_in("inst-a", "portal")
    form = form_of(client.get("/portal/settings").text)
    before = (api_box(site), len(upserts(site)))
    form.update(min_pd="30", max_pd="20", daily_quota="lots", monthly_quota="", min_tenor="1.5", rate="120")
    for path in ("/portal/settings/preview", "/portal/settings"):
        answered = post(client, path, form)
        assert answered.status_code == 422, path
        html = answered.text
        errors = dict(re.findall(r'id="(\w+)-error">([^<]+)<', html))
        assert errors == {
            "max_pd": "Must not be below “Lowest probability of default”",
            "daily_quota": "Write an amount in CNY, with at most 2 decimals",
            "monthly_quota": "Fill this in",
            "min_tenor": "Write a whole number",
            "rate": "Must be less than 100%",  # as the field is typed, in per cent
        }
        assert 'id="f-max_pd" name="max_pd" value="20" inputmode="decimal" aria-invalid="true"' in html
        assert 'value="lots"' in html  # what was typed stays
        assert 'id="preview"' not in html
    client.cookies.set(LANG_COOKIE, "zh-CN")
    chinese = post(client, "/portal/settings/preview", form)
    assert chinese.status_code == 422 and "不能低于“最低违约概率”" in chinese.text and "必须小于 100%" in chinese.text
    assert (api_box(site), len(upserts(site))) == before


def test_an_institution_changes_only_its_own_terms(site: Site) -> None:
    """The page edits the signed-in institution's own definition; by API, another's is missing and the platform's
    terms are refused."""
    client = site.signed_in("inst-b", "portal")
    page = client.get("/portal/settings").text
    assert "INST-B Ltd" in page and form_of(page)["min_amount"] == "15000.01"
    form = form_of(page)
    form["max_pd"] = "15"
    form = form_of(post(client, "/portal/settings/preview", form).text)
    assert post(client, "/portal/settings", form).status_code == 303
    assert api_box(site, "INST-B")["credit_box"]["max_pd"] == 0.15
    assert api_box(site, "INST-A")["credit_box"]["max_pd"] == 0.2

    world = site.world
    mine = api_box(site, "INST-A")
    assert world.call("INST-B", "PUT", "/v1/institutions/INST-A", json=mine).status_code == 404
    pushy = world.call("INST-A", "PUT", "/v1/institutions/INST-A", json={**mine, "priority": 1})
    assert pushy.status_code == 422 and pushy.json()["field"] == "priority"
    own = world.call("INST-A", "PUT", "/v1/institutions/INST-A", json={**mine, "daily_quota": "50000.00"})
    assert own.status_code == 200 and api_box(site)["daily_quota"] == "50000.00"
    assert site.signed_in("ops", "console").get("/portal/settings", follow_redirects=False).status_code in (303, 403)


def test_the_figures_pages_show_what_the_api_gives_the_institution(site: Site) -> None:
    world = site.world
    world.first_due()
    client = site.signed_in("inst-a", "portal")
    html = client.get("/portal/figures?quarter=2026Q1").text
    api = world.call("INST-A", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"}).json()["metrics"]
    for name in ("day1_delinquency_rate", "collection_rate_30d"):
        (row,) = api[name]["rows"]
        shown = re.search(rf'<tr id="{name}">.*?data-value="([^"]+)".*?data-minor="(\d+)".*?data-minor="(\d+)"', html)
        assert shown, name
        assert (float(shown.group(1)), int(shown.group(2)), int(shown.group(3))) == (
            row["value"],
            row["numerator"],
            row["denominator"],
        )
    vintages = re.search(r'<table class="data" id="vintages"[^>]*>.*?</table>', html, re.S)
    assert vintages
    assert [float(v) for v in re.findall(r'data-value="([^"]+)"', vintages.group(0))] == [
        r["value"] for r in api["vintage_30_plus"]["rows"]
    ]
    bad = client.get("/portal/figures?quarter=2031Q9")
    assert bad.status_code == 422 and 'id="quarter-error"' in bad.text

    desk = client.get("/portal/collections?from=2026-01-01&to=2026-02-16").text
    perf = world.call("INST-A", "GET", "/v1/collections/performance", params={"from": "2026-01-01", "to": "2026-02-16"})
    for stage in perf.json()["stages"]:
        row = re.search(rf'<tr id="stage-{re.escape(stage["stage"])}">.*?</tr>', desk, re.S)
        assert row and re.findall(r'class="num">(\d+)<', row.group(0)) == [
            str(stage["opened"]),
            str(stage["escalated_in"]),
        ]
    backwards = client.get("/portal/collections?from=2026-02-01&to=2026-01-01")
    assert backwards.status_code == 422 and 'id="to-error"' in backwards.text


def test_the_settings_page_in_a_browser(site: Site, served: str, browser: Browser) -> None:
    outside: list[str] = []
    page = new_page(browser, served, outside, viewport={"width": 390, "height": 844})
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    browser_sign_in(page, served, "portal", "inst-a")
    page.goto(f"{served}/portal/settings")
    accessible(page)
    page.fill("#f-max_amount", "25000")
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert page.inner_text("#row-newly_accepted td.num >> nth=0") == "1"
    accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("#save-button")
    page.wait_for_url(f"{served}/portal/settings?done=saved")
    assert page.input_value("#f-max_amount") == "25000.00"
    accessible(page)
    site.world.first_due()  # loans with dues and vintages, for the figures' charts
    for path in ("figures", "collections"):
        page.goto(f"{served}/portal/{path}")
        page.wait_for_selector(".chart svg")  # drawn from the numbers in the table beside it
        accessible(page)
    assert api_box(site)["credit_box"]["max_amount"] == "25000.00"
    assert outside == [] and script_errors == []
