"""The institution portal: an institution that decides by hand answers its offers from the pages, through the same
call and audit trail as the API, sees none of another institution's, and reads its own book as the API gives it."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import Browser
from sqlalchemy import select

from openice.matching.institutions import CreditBox
from openice.storage import api_tables
from openice.web.i18n import catalog
from openice.web.visit import LANG_COOKIE
from tests.api.test_offers import draw
from tests.decisioning.helpers import application_body
from tests.matching.test_boxes import body, institution
from tests.web.conftest import Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible


def offers_for_inst_a(site: Site, count: int) -> list[int]:
    """INST-A now answers its offers by hand (same box as before); borrower 1 opens a fresh line and draws `count`
    times, each drawdown offered to INST-A alone."""
    world = site.world
    manual = institution(
        "INST-A", acceptance="manual", credit_box=CreditBox(min_amount=0, max_amount=1_500_000, max_pd=0.2)
    )
    put = world.call("operator", "PUT", "/v1/institutions/INST-A", json=body(manual))
    assert put.status_code == 200, put.text
    bid = world.ids[1]["borrower"]
    decision = world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="app-portal", json=application_body()
    )
    line = decision.json()["line_id"]
    found = []
    for k in range(count):
        drawn = draw(world, line, f"dd-portal-{k}")
        assert drawn["status"] == "offered" and drawn["institution_code"] == "INST-A", drawn
        offers = world.call("INST-A", "GET", "/v1/offers", params={"drawdown_id": drawn["id"]}).json()["items"]
        found.append(offers[0]["id"])
    return found


def offer_status(site: Site, offer_id: int) -> str:
    return str(site.world.call("operator", "GET", f"/v1/offers/{offer_id}").json()["status"])


def audit_actions(site: Site, offer_id: int) -> list[str]:
    with site.engine.connect() as conn:
        rows = conn.execute(select(api_tables.audit_log).where(api_tables.audit_log.c.resource == f"offer/{offer_id}"))
        return [r.action for r in rows]


def answer(client: TestClient, offer_id: int, verb: str, **data: str) -> Response:
    token = csrf_of(client.get(f"/portal/offers/{offer_id}").text)
    return client.post(f"/portal/offers/{offer_id}/{verb}", data={"csrf": token, **data}, follow_redirects=False)


def test_an_institution_accepts_one_offer_and_declines_another_with_a_reason(site: Site) -> None:
    kept, passed = offers_for_inst_a(site, 2)
    client = site.signed_in("inst-a", "portal")
    home = client.get("/portal/").text
    for offer_id in (kept, passed):
        row = re.search(rf'<tr id="offer-{offer_id}">.*?</tr>', home, re.S)
        assert row and f'href="/portal/offers/{offer_id}"' in row.group(0)
        assert re.search(r'class="expires">[^<]*\d{4}[^<]*UTC<', row.group(0))  # its deadline, shown
    page = client.get(f"/portal/offers/{kept}").text
    assert "Pre-loan investigation report" in page and "CN¥5,000.00" in page
    name = re.search(r'id="applicant-name">([^<]+)<', page)
    assert name and "*" in name.group(1)  # personal data masked

    accepted = answer(client, kept, "acceptance")
    assert accepted.status_code == 303 and accepted.headers["location"] == "/portal/?done=accepted"
    after = client.get("/portal/?done=accepted").text
    assert "Offer accepted" in after and f'id="offer-{kept}"' not in after
    assert offer_status(site, kept) == "accepted" and audit_actions(site, kept) == ["offer.accepted"]

    declined = answer(client, passed, "decline", reason="sector limit")
    assert declined.headers["location"] == "/portal/?done=declined"
    assert offer_status(site, passed) == "declined" and audit_actions(site, passed) == ["offer.declined"]
    row = site.world.call("operator", "GET", f"/v1/offers/{passed}").json()
    assert row["reason"] == "sector limit"
    assert "No offer is waiting" in client.get("/portal/").text


def test_a_decline_without_a_reason_is_answered_beside_the_field_and_changes_nothing(site: Site) -> None:
    (offer_id,) = offers_for_inst_a(site, 1)
    client = site.signed_in("inst-a", "portal")
    refused = answer(client, offer_id, "decline", reason="  ")
    assert refused.status_code == 422
    html = refused.text
    assert re.search(r'id="decline-reason"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="decline-form".*?<p class="error" role="alert" id="reason-error">Say why</p>', html, re.S)
    assert offer_status(site, offer_id) == "sent" and audit_actions(site, offer_id) == []


def test_another_institution_can_neither_see_nor_answer_the_offer(site: Site) -> None:
    (offer_id,) = offers_for_inst_a(site, 1)
    other = site.signed_in("inst-b", "portal")
    assert f"/portal/offers/{offer_id}" not in other.get("/portal/").text
    assert other.get(f"/portal/offers/{offer_id}").status_code == 404
    assert other.get(f"/portal/offers/{offer_id}/report").status_code == 404
    token = csrf_of(other.get("/portal/").text)
    for verb in ("acceptance", "decline"):
        tried = other.post(f"/portal/offers/{offer_id}/{verb}", data={"csrf": token, "reason": "mine now"})
        assert tried.status_code == 404
    assert offer_status(site, offer_id) == "sent" and audit_actions(site, offer_id) == []


def test_an_answer_without_the_form_token_is_refused(site: Site) -> None:
    (offer_id,) = offers_for_inst_a(site, 1)
    client = site.signed_in("inst-a", "portal")
    assert client.post(f"/portal/offers/{offer_id}/acceptance", data={}).status_code == 403
    assert client.post(f"/portal/offers/{offer_id}/acceptance", data={"csrf": "guessed"}).status_code == 403
    assert offer_status(site, offer_id) == "sent" and audit_actions(site, offer_id) == []


def test_the_book_page_shows_the_api_numbers_for_its_own_loans_only(site: Site) -> None:
    site.world.first_due()
    loans = site.world.call("INST-A", "GET", "/v1/loans", params={"status": "active"}).json()["items"]
    assert loans and {loan["funder"] for loan in loans} == {"INST-A"}
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for loan in loans:
        expected[loan["bucket"]][0] += 1
        expected[loan["bucket"]][1] += Decimal(loan["outstanding_principal"]["amount"])
    client = site.signed_in("inst-a", "portal")
    page = client.get("/portal/book").text
    table = re.search(r'<table[^>]* id="book-CNY"[^>]*>.*?</table>', page, re.S)
    assert table and 'data-chart="bar"' in page
    shown = {
        bucket: [Decimal(count.replace(",", "")), Decimal(minor) / 100]
        for bucket, count, minor in re.findall(
            r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td><td class="num" data-minor="(\d+)"',
            table.group(0),
        )
    }
    assert {b: v for b, v in shown.items() if v[0]} == dict(expected)
    csv = client.get("/portal/book.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    rows = [line.split(",") for line in csv.text.strip().splitlines()[1:]]
    assert {b: [Decimal(n), Decimal(p)] for _, b, n, p in rows if n != "0"} == dict(expected)
    other = site.signed_in("inst-b", "portal").get("/portal/book").text
    b_loans = site.world.call("INST-B", "GET", "/v1/loans", params={"status": "active"}).json()["items"]
    assert len(re.findall(r'data-minor="[1-9]', other)) == len({loan["bucket"] for loan in b_loans})


def test_the_pages_speak_chinese_with_every_word_in_both_catalogs(site: Site) -> None:
    assert catalog("en").keys() == catalog("zh-CN").keys()
    (offer_id,) = offers_for_inst_a(site, 1)
    client = site.signed_in("inst-a", "portal")
    client.cookies.set(LANG_COOKIE, "zh-CN")
    pages = {path: client.get(path).text for path in ("/portal/", f"/portal/offers/{offer_id}", "/portal/book")}
    assert "待答复的报价" in pages["/portal/"] and "贷前调查报告" in pages[f"/portal/offers/{offer_id}"]
    assert "¥5,000.00" in pages[f"/portal/offers/{offer_id}"]
    verdict = re.search(r'id="fraud-verdict">([^<]+)<', pages[f"/portal/offers/{offer_id}"])
    assert verdict and verdict.group(1) == catalog("zh-CN")["report.verdict.pass"]  # the checks' verdict, in words
    for html in pages.values():
        assert not re.search(r">\s*(portal|offer|report|done)\.[a-z_.]+\s*<", html)  # no key left untranslated


def test_an_institution_answers_its_offers_in_a_browser(site: Site, served: str, browser: Browser) -> None:
    kept, passed = offers_for_inst_a(site, 2)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        browser_sign_in(page, served, "portal", "inst-a")
        accessible(page)
        page.click(f'#offer-{passed} a[href="/portal/offers/{passed}"]')
        accessible(page)
        page.fill("#decline-reason", "sector limit")
        page.click("#decline-form button[type=submit]")
        page.wait_for_url(f"{served}/portal/?done=declined")
        assert page.locator("p.ok[role=status]").is_visible()
        page.click(f'#offer-{kept} a[href="/portal/offers/{kept}"]')
        page.click("#accept-form button[type=submit]")
        page.wait_for_url(f"{served}/portal/?done=accepted")
        page.goto(f"{served}/portal/book")
        page.wait_for_selector(".chart svg")  # the chart is drawn from the table's numbers, from local assets
        accessible(page)
    finally:
        page.close()
    assert (offer_status(site, kept), offer_status(site, passed)) == ("accepted", "declined")
    loans = site.world.call("INST-A", "GET", "/v1/loans", params={"status": "active"}).json()["items"]
    assert len(loans) == 2  # the one it held, and the one it just funded
