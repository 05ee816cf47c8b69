"""The borrower app: a borrower sees only its own loans and lines, repays and prepays through the API's calls (one
booking per form, whatever the posts), bad amounts are answered beside the field with nothing booked, and a
drawdown is previewed in full before it is confirmed and funded."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from openice.access.users import Users
from openice.storage import api_tables
from openice.storage.uow import EngineUnits
from tests.api.test_idempotency import state
from tests.web.conftest import PASSWORD, Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible


@pytest.fixture
def app_site(site: Site) -> Site:
    """The test world with borrower 1 signed up as user `borrower-one`, borrower 2 as `borrower-two`."""
    users = Users(EngineUnits(site.engine))
    for name, k in (("borrower-one", 1), ("borrower-two", 2)):
        site.users[name] = users.create(name, PASSWORD, "borrower", site.world.ids[k]["borrower"])
    return site


def form_of(html: str, form_id: str) -> dict[str, str]:
    """The hidden fields of one form on the page (its token and idempotency key)."""
    found = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S)
    assert found, f"no form {form_id}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0)))


def shown(html: str, element_id: str) -> str:
    """The major-unit figure an element shows, without its currency symbol or separators."""
    found = re.search(rf'id="{element_id}">CN¥([\d,.]+)<', html)
    assert found, f"no amount in #{element_id}"
    return found.group(1).replace(",", "")


def audits(site: Site, action: str) -> int:
    log = api_tables.audit_log
    with site.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(log).where(log.c.action == action)).scalar_one()


def test_a_borrower_sees_only_its_own_loans_and_lines(app_site: Site) -> None:
    ids = app_site.world.ids
    client = app_site.signed_in("borrower-one", "app")
    home = client.get("/app/")
    assert home.status_code == 200
    assert f'href="/app/loans/{ids[1]["loan"]}"' in home.text and f"/app/loans/{ids[2]['loan']}" not in home.text
    assert f'href="/app/lines/{ids[1]["line"]}/draw"' in home.text
    assert f'id="line-{ids[1]["line"]}"' in home.text and ids[2]["line"] not in home.text
    assert client.get(f"/app/loans/{ids[2]['loan']}").status_code == 404
    assert client.get(f"/app/lines/{ids[2]['line']}/draw").status_code == 404
    assert client.get(f"/app/drawdowns/{ids[2]['drawdown']}").status_code == 404
    own = client.get(f"/app/drawdowns/{ids[1]['drawdown']}")
    assert own.status_code == 200 and 'id="funder"' in own.text


def test_other_roles_are_kept_out_of_the_app(app_site: Site) -> None:
    assert app_site.signed_in("ops", "console").get("/app/", follow_redirects=False).status_code == 403


def test_the_loan_page_shows_what_is_due_and_the_payoff_as_the_api_does(app_site: Site) -> None:
    app_site.world.first_due()
    loan_id = app_site.world.ids[1]["loan"]
    page = app_site.signed_in("borrower-one", "app").get(f"/app/loans/{loan_id}").text
    detail = app_site.world.call("borrower1", "GET", f"/v1/loans/{loan_id}").json()
    first = detail["schedule"][0]
    assert Decimal(first["unpaid"]["amount"]) > 0
    assert shown(page, "due") == first["unpaid"]["amount"]
    assert 'id="payoff"' in page and page.count("<tr><td>") >= len(detail["schedule"])


def test_a_repayment_books_once_and_the_api_shows_it(app_site: Site) -> None:
    app_site.world.first_due()
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    hidden = form_of(client.get(f"/app/loans/{loan_id}").text, "repay-form")
    first = client.post(f"/app/loans/{loan_id}/repay", data={**hidden, "amount": "100.00"}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"/app/loans/{loan_id}?done=repay"
    after_first = state(app_site.world)
    again = client.post(f"/app/loans/{loan_id}/repay", data={**hidden, "amount": "100.00"}, follow_redirects=False)
    assert again.status_code == 303
    assert state(app_site.world) == after_first  # the same form posted twice books once
    assert after_first["trial balance"] == 0
    moves = app_site.world.call("borrower1", "GET", f"/v1/loans/{loan_id}/transactions").json()["items"]
    repayments = [m for m in moves if m["kind"] == "repayment"]
    assert [m["amount"]["amount"] for m in repayments] == ["100.00"]
    assert audits(app_site, "loan.repayment") == 1
    page = client.get(f"/app/loans/{loan_id}?done=repay").text
    assert "Payment received." in page and f'id="txn-{repayments[0]["id"]}"' in page


def test_a_prepayment_of_the_payoff_closes_the_loan(app_site: Site) -> None:
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    page = client.get(f"/app/loans/{loan_id}").text
    payoff = shown(page, "payoff")
    done = client.post(
        f"/app/loans/{loan_id}/prepay", data={**form_of(page, "prepay-form"), "amount": payoff}, follow_redirects=False
    )
    assert done.status_code == 303
    assert app_site.world.call("operator", "GET", f"/v1/loans/{loan_id}").json()["status"] == "closed"
    assert audits(app_site, "loan.prepayment") == 1 and state(app_site.world)["trial balance"] == 0


@pytest.mark.parametrize(
    ("kind", "amount", "says"),
    [
        ("repay", "lots", "Write the amount as a number"),
        ("repay", "-5", "Must be more than zero"),
        ("repay", "1.001", "at most two decimals"),
        ("repay", "999999.00", "Is more than what is due: CN¥"),
        ("prepay", "999999.00", "Is more than the payoff today: CN¥"),
    ],
)
def test_bad_amounts_are_answered_beside_the_field_and_book_nothing(
    app_site: Site, kind: str, amount: str, says: str
) -> None:
    app_site.world.first_due()
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    hidden = form_of(client.get(f"/app/loans/{loan_id}").text, f"{kind}-form")
    before = state(app_site.world)
    answer = client.post(f"/app/loans/{loan_id}/{kind}", data={**hidden, "amount": amount})
    assert answer.status_code == 422
    error = re.search(r'<p class="error" role="alert" id="amount-error">([^<]*)</p>', answer.text)
    assert error and says in error.group(1), answer.text
    assert f'value="{amount}"' in answer.text  # what was typed stays in the field
    assert state(app_site.world) == before


def test_a_post_without_the_form_token_books_nothing(app_site: Site) -> None:
    app_site.world.first_due()
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    before = state(app_site.world)
    assert client.post(f"/app/loans/{loan_id}/repay", data={"amount": "10.00"}).status_code == 403
    assert state(app_site.world) == before


def test_a_drawdown_is_previewed_then_funded_once_and_names_its_institution(app_site: Site) -> None:
    line_id = app_site.world.ids[1]["line"]
    client = app_site.signed_in("borrower-one", "app")
    form = client.get(f"/app/lines/{line_id}/draw").text
    hidden = form_of(form, "draw-form")
    before = state(app_site.world)
    preview = client.post(f"/app/lines/{line_id}/draw", data={**hidden, "amount": "5000.00", "tenor": "12"})
    assert preview.status_code == 200 and 'id="preview-schedule"' in preview.text
    assert preview.text.count("<tr><td>") == 12 and 'id="total-cost"' in preview.text
    assert state(app_site.world) == before  # a preview books nothing
    confirm = form_of(preview.text, "confirm-form")
    assert confirm["key"] == hidden["key"] and confirm["confirm"] == "yes"
    done = client.post(f"/app/lines/{line_id}/draw", data=confirm, follow_redirects=False)
    assert done.status_code == 303
    again = client.post(f"/app/lines/{line_id}/draw", data=confirm, follow_redirects=False)
    assert again.headers["location"] == done.headers["location"]  # the same key replays the drawdown
    shown = client.get(done.headers["location"]).text
    drawdowns = app_site.world.call("borrower1", "GET", "/v1/drawdowns", params={"line_id": line_id}).json()["items"]
    assert len(drawdowns) == 2
    made = max(drawdowns, key=lambda d: d["id"])
    assert done.headers["location"] == f"/app/drawdowns/{made['id']}" and made["status"] == "funded"
    name = app_site.world.call("operator", "GET", f"/v1/institutions/{made['institution_code']}").json()["name"]
    assert f'id="funder">{name}<' in shown and f'href="/app/loans/{made["loan_id"]}"' in shown
    assert audits(app_site, "drawdown") == 3  # the world's two, and this one
    assert state(app_site.world)["trial balance"] == 0


def test_a_drawdown_beyond_the_line_is_answered_in_place(app_site: Site) -> None:
    line_id = app_site.world.ids[1]["line"]
    client = app_site.signed_in("borrower-one", "app")
    hidden = form_of(client.get(f"/app/lines/{line_id}/draw").text, "draw-form")
    before = state(app_site.world)
    answer = client.post(
        f"/app/lines/{line_id}/draw", data={**hidden, "amount": "9999999.00", "tenor": "12", "confirm": "yes"}
    )
    assert answer.status_code == 422 and 'id="amount-error"' in answer.text
    assert state(app_site.world) == before


def test_the_app_speaks_chinese(app_site: Site) -> None:
    client = app_site.signed_in("borrower-one", "app")
    client.cookies.set("openice_lang", "zh-CN")
    assert "我的借款" in client.get("/app/").text
    assert csrf_of(client.get(f"/app/loans/{app_site.world.ids[1]['loan']}").text)


def fits(page: Page, width: int) -> None:
    """Nothing on the page is wider than the screen: the whole page reads without scrolling sideways; and axe-core
    finds nothing serious on it."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url
    accessible(page)


def test_a_borrower_repays_and_draws_down_on_a_phone(app_site: Site, served: str, browser: Browser) -> None:
    app_site.world.first_due()
    ids = app_site.world.ids[1]
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        browser_sign_in(page, served, "app", "borrower-one")
        fits(page, 390)
        page.click(f'a[href="/app/loans/{ids["loan"]}"]')
        fits(page, 390)
        due = shown(page.content(), "due")
        page.fill("#repay-amount", due)
        page.click("#repay-form button[type=submit]")
        page.wait_for_selector("p.ok")
        moves = app_site.world.call("borrower1", "GET", f"/v1/loans/{ids['loan']}/transactions").json()["items"]
        assert [m["amount"]["amount"] for m in moves if m["kind"] == "repayment"] == [due]
        page.goto(f"{served}/app/lines/{ids['line']}/draw")
        page.fill("#amount", "3000")
        page.select_option("#tenor", "6")
        page.click("#draw-form button[type=submit]")
        page.wait_for_selector("#preview-schedule")
        fits(page, 390)
        page.click("#confirm-form button[type=submit]")
        page.wait_for_selector("#funder")
        fits(page, 390)
    finally:
        context.close()
    assert state(app_site.world)["trial balance"] == 0


@pytest.mark.parametrize(("mode", "installments_left"), [("reamortise", 12), ("shorten", "fewer")])
def test_a_prepayment_lowers_the_installments_or_ends_the_loan_sooner_as_chosen(
    app_site: Site, mode: str, installments_left: int | str
) -> None:
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    page = client.get(f"/app/loans/{loan_id}").text
    assert 'name="mode" value="reamortise" checked' in page and 'name="mode" value="shorten"' in page
    before = app_site.world.call("borrower1", "GET", f"/v1/loans/{loan_id}").json()["schedule"]
    done = client.post(
        f"/app/loans/{loan_id}/prepay",
        data={**form_of(page, "prepay-form"), "amount": "3000.00", "mode": mode},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    after = app_site.world.call("borrower1", "GET", f"/v1/loans/{loan_id}").json()["schedule"]
    left = [i for i in after if Decimal(i["unpaid"]["amount"]) > 0]
    if installments_left == "fewer":

        def installment(i: dict[str, Any]) -> Decimal:
            return Decimal(i["principal"]["amount"]) + Decimal(i["interest"]["amount"])

        assert len(left) < len(before) and abs(installment(left[0]) - installment(before[0])) <= Decimal("0.01")
    else:
        assert len(left) == installments_left and Decimal(left[0]["principal"]["amount"]) < Decimal(
            before[0]["principal"]["amount"]
        )
    assert state(app_site.world)["trial balance"] == 0


def test_a_prepayment_mode_that_is_not_offered_is_refused_beside_it(app_site: Site) -> None:
    loan_id = app_site.world.ids[1]["loan"]
    client = app_site.signed_in("borrower-one", "app")
    page = client.get(f"/app/loans/{loan_id}").text
    before = state(app_site.world)
    answer = client.post(
        f"/app/loans/{loan_id}/prepay", data={**form_of(page, "prepay-form"), "amount": "100.00", "mode": "sideways"}
    )
    assert answer.status_code == 422 and 'id="mode-error"' in answer.text
    assert state(app_site.world) == before
