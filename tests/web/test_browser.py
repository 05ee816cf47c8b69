"""The operator console and the collections desk in Debian's Chromium (headless) against the live site on loopback:
each journey checks the pages' numbers against the API's and the ledger's trial balance, every page is checked by
axe-core (loaded from the installed package) for serious and critical violations, and no page fetches anything
from outside the site."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from openice.close_of_day import STEPS
from openice.storage import servicing_tables
from tests.web.conftest import Site, browser_sign_in

AXE = Axe()


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    found = AXE.run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: {bad}"


def trial_balance(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.sum(servicing_tables.journal_lines.c.amount), 0))).scalar_one()
        )


def new_page(browser: Browser, served: str, outside: list[str], **options: Any) -> Page:
    page = browser.new_context(**options).new_page()
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served) else None)
    return page


def test_an_operator_reverses_a_payment_and_closes_the_day(site: Site, served: str, browser: Browser) -> None:
    loan = site.world.ids[1]["loan"]
    paid = site.world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/prepayments", key="pay-1", json={"amount": "500.00", "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    payment = paid.json()["transaction_id"]
    outside: list[str] = []
    page = new_page(browser, served, outside)
    browser_sign_in(page, served, "console", "ops")
    expect(page.locator("#trial-balance-CNY")).to_have_attribute("data-total", "0")
    accessible(page)

    page.click("text=Loans")
    page.click(f"#loans a[href='/console/loans/{loan}']")
    api = site.world.call("operator", "GET", f"/v1/loans/{loan}").json()
    outstanding = Decimal(api["balances"]["loan_principal"]["amount"])
    expect(page.locator("#outstanding")).to_have_text(f"CN¥{outstanding:,.2f}")
    accessible(page)

    row = page.locator(f"#txn-{payment}")
    row.locator("button").click()  # no reason given: the browser's own check keeps the form here
    expect(page.locator(f"#txn-{payment}")).not_to_contain_text("Reversed")
    row.locator("input[name=reason]").fill("paid into the wrong account")
    row.locator("button").click()
    expect(page.locator("[role=status]")).to_contain_text("reversed")
    expect(page.locator(f"#txn-{payment}")).to_contain_text("Reversed")
    after = site.world.call("operator", "GET", f"/v1/loans/{loan}").json()
    expect(page.locator("#outstanding")).to_have_text(
        f"CN¥{Decimal(after['balances']['loan_principal']['amount']):,.2f}"
    )
    assert trial_balance(site) == 0

    page.click("text=End of day")
    before = site.world.call("operator", "GET", "/v1/business-date").json()["business_date"]
    page.click("#close-day button")
    expect(page.locator(".eod-run")).to_have_count(1)
    expect(page.locator(".eod-run tbody tr")).to_have_count(len(STEPS))  # every step, with its time
    now = site.world.call("operator", "GET", "/v1/business-date").json()["business_date"]
    assert now > before
    accessible(page)
    page.click("text=Ledger")
    accessible(page)
    for total in page.locator("tfoot td").all():
        assert total.get_attribute("data-total") == "0"
    audit = site.world.call("operator", "GET", "/v1/audit", params={"action": "transaction.reversed"}).json()["items"]
    assert (
        audit[-1]["key_id"] == site.users["ops"]["id"]
        and audit[-1]["detail"]["reason"] == "paid into the wrong account"
    )
    assert outside == []


def test_an_agent_records_a_promise_and_takes_a_payment(site: Site, served: str, browser: Browser) -> None:
    site.world.first_due()
    loan = site.world.ids[1]["loan"]
    [case] = site.world.call("operator", "GET", "/v1/collections/cases", params={"loan_id": loan}).json()["items"]
    overdue = Decimal(case["overdue"]["amount"])
    outside: list[str] = []
    page = new_page(browser, served, outside)
    browser_sign_in(page, served, "desk", "ann")
    expect(page.locator("#queue tbody tr")).to_have_count(2)
    accessible(page)
    page.click(f"#queue a[href='/desk/cases/{case['id']}']")
    expect(page.locator("#borrower-mobile")).to_contain_text("****")  # masked until revealed with a reason
    accessible(page)

    page.select_option("#outcome", "promise")
    page.fill("#promise_amount", str(overdue + 1))
    page.fill("#promise_date", "2026-02-20")
    page.click("#contact-form button")
    expect(page.locator("#promise_amount-error")).to_contain_text("at most what is overdue")
    expect(page.locator("#promise_amount")).to_have_value(str(overdue + 1))  # what was typed stays
    assert site.world.call("operator", "GET", f"/v1/collections/cases/{case['id']}").json()["promise"] is None

    page.fill("#promise_amount", str(overdue))
    page.click("#contact-form button")
    expect(page.locator("[role=status]")).to_contain_text("Contact recorded")
    expect(page.locator("#promise")).to_contain_text(f"CN¥{overdue:,.2f}")
    recorded = site.world.call("operator", "GET", f"/v1/collections/cases/{case['id']}").json()
    assert Decimal(recorded["promise"]["amount"]["amount"]) == overdue
    assert recorded["actions"][-1]["agent"] == "ann"  # the signed-in person, not a key id

    page.fill("#amount", str(overdue))
    page.click("#payment-form button")
    expect(page.locator("[role=status]")).to_contain_text("Payment taken")
    moves = site.world.call("operator", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    assert Decimal(moves[-1]["amount"]["amount"]) == overdue and moves[-1]["kind"] == "repayment"
    assert trial_balance(site) == 0

    page.fill("#reveal-reason", "borrower called back and asked to confirm their number")
    page.click("text=Reveal")
    expect(page.locator("#borrower-mobile")).not_to_contain_text("****")
    audit = site.world.call("operator", "GET", "/v1/audit", params={"action": "pii.revealed"}).json()["items"]
    assert len(audit) == 1 and audit[0]["key_id"] == site.users["ann"]["id"]

    page.click("nav >> text=Performance")  # the agent's own results: the promise just made, the chart drawn
    expect(page.locator("#mine")).to_contain_text("ann")
    expect(page.locator("#agents tr.you th")).to_have_text("ann")
    expect(page.locator(".chart svg").first).to_be_visible()
    accessible(page)
    assert outside == []


def test_the_pages_speak_chinese_when_asked_and_fit_a_phone(site: Site, served: str, browser: Browser) -> None:
    outside: list[str] = []
    page = new_page(browser, served, outside, viewport={"width": 390, "height": 844})
    browser_sign_in(page, served, "console", "ops")
    page.click("text=中文")
    expect(page.locator("h1")).to_have_text("概览")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    principal = site.world.call("operator", "GET", f"/v1/loans/{site.world.ids[1]['loan']}").json()["principal"]
    page.goto(f"{served}/console/loans")
    expect(page.locator("#loans")).to_contain_text(f"¥{Decimal(principal['amount']):,.2f}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    page.goto(f"{served}/console/")  # the choice is remembered
    expect(page.locator("h1")).to_have_text("概览")
    accessible(page)
    assert outside == []
