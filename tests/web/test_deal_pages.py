"""The console's asset-backed deals, over tests/funding/test_book.py's book beside the web world: the list with where
each deal stands, a deal's page with its month's investor report (in the page, PDF and JSON, the API's own figures)
and its stress grid from closing, in English and Chinese; bad input said beside its field; only operators."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from pypdf import PdfReader

from openice.close_of_day import run_until
from openice.funding.deal import Deal
from openice.funding.projection import Scenario
from openice.funding.render import grid_rows
from openice.funding.service import Funding
from openice.storage.uow import EngineUnits
from openice.web.visit import LANG_COOKIE
from tests.funding.test_book import START, book, deal_file  # noqa: F401  (a fixture)
from tests.web.conftest import Site, browser_sign_in
from tests.web.test_browser import accessible, new_page

OWN = "BOOK 2026-1"
PAGE = "/console/deals/BOOK%202026-1"


@pytest.fixture
def dealt(site: Site, book: list[int]) -> Site:  # noqa: F811
    """BOOK 2026-1 issued over loans 1 and 6 (7,000.00: A notes 5,000.00 at 12%, R 2,000.00), January closed."""
    data = deal_file(True)
    Funding(EngineUnits(site.engine)).issue(Deal.from_dict(data), data, START)
    run_until(site.engine, date(2026, 2, 2))
    return site


def cells(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]


def test_the_deals_and_a_deals_month(dealt: Site) -> None:
    ops = dealt.signed_in("ops", "console")
    listed = ops.get("/console/deals")
    assert listed.status_code == 200
    # January collected nothing from the pool: it stays 7,000.00; the reserve's 10.00 paid 10.00 of A's interest and
    # no principal, so the notes (A alone; R is the residual tranche) stand at 5,000.00.
    assert cells(listed.text, "deals") == ["Jan 15, 2026", "CN¥7,000.00", "CN¥5,000.00", "Paying"]
    assert f'href="{PAGE}"' in listed.text

    page = ops.get(PAGE)
    assert page.status_code == 200
    assert '<option value="2026-01" selected>' in page.text
    api = dealt.world.call("operator", "GET", f"/v1/deals/{OWN}/reports/2026-01").json()
    a = api["tranches"][0]
    assert (a["interest_paid"], a["interest_shortfall"]) == ("10.00", "40.00")
    # the page's report carries the API's figures: A's row, as the report writes money
    assert ">10.00</td>" in page.text and ">40.00</td>" in page.text and ">5,000.00</td>" in page.text
    assert "Investor report" in page.text and "Principal owed to the notes" in page.text

    as_json = ops.get(f"{PAGE}/reports/2026-01.json")
    assert as_json.status_code == 200 and as_json.json() == api
    pdf = ops.get(f"{PAGE}/reports/2026-01.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    # The grid of the pool from closing, 1x to 5x 2% CDR, each under 0 to 30% CPR: the table is the projection's.
    deal, grid = Funding(EngineUnits(dealt.engine)).stress_grid(OWN, Scenario(0.02, 0.0, 0.0, 0))
    assert cells(page.text, "grid") == [c for row in grid_rows(grid) for c in row]
    assert len(grid) == 20 and [t.name for t in deal.tranches] == ["A", "R"]
    assert 'alt="Each tranche&#39;s loss by default rate' in page.text

    tripled = ops.get(PAGE, params={"cdr": "6%", "month": "2026-01"})
    _, six = Funding(EngineUnits(dealt.engine)).stress_grid(OWN, Scenario(0.06, 0.0, 0.0, 0))
    assert cells(tripled.text, "grid") == [c for row in grid_rows(six) for c in row]


def test_in_chinese_the_report_and_grid_are_chinese(dealt: Site) -> None:
    ops = dealt.signed_in("ops", "console")
    ops.cookies.set(LANG_COOKIE, "zh-CN")
    page = ops.get(PAGE).text
    assert "投资者报告" in page and "资产池" in page and "储备账户" in page and "尚欠证券的本金" in page
    assert "自封包日起的压力测试" in page and "A 损失" in page and "Principal owed" not in page
    assert cells(ops.get("/console/deals").text, "deals") == ["2026年1月15日", "¥7,000.00", "¥5,000.00", "偿付中"]
    pdf = ops.get(f"{PAGE}/reports/2026-01.pdf")
    reader = PdfReader(io.BytesIO(pdf.content))
    text = " ".join(reader.pages[0].extract_text().split())
    assert "资产池" in text and f"第 1 页，共 {len(reader.pages)} 页" in text


@pytest.mark.parametrize(
    ("params", "field", "said"),
    [
        ({"month": "2026-05"}, "month", "2026-05 has no closed month-end of this deal"),
        ({"cdr": "abc"}, "cdr", "abc is not an annual rate between 0 and 100%"),
        ({"cdr": "150%"}, "cdr", "150% is not an annual rate between 0 and 100%"),
    ],
)
def test_bad_input_is_said_beside_its_field(dealt: Site, params: dict[str, str], field: str, said: str) -> None:
    answer = dealt.signed_in("ops", "console").get(PAGE, params=params)
    assert answer.status_code == 422
    error = re.search(rf'id="{field}-error">([^<]*)<', answer.text)
    assert error and said in error.group(1), answer.text[-1500:]
    assert 'id="grid"' in answer.text  # the rest of the page is still shown


def test_only_operators_and_only_deals_issued(dealt: Site) -> None:
    ops = dealt.signed_in("ops", "console")
    assert ops.get("/console/deals/NO%20SUCH%20DEAL").status_code == 404
    assert ops.get(f"{PAGE}/reports/2026-01.csv").status_code == 404
    assert ops.get(f"{PAGE}/reports/2026-03.pdf").status_code == 404
    desk = dealt.signed_in("ann", "desk")
    assert desk.get("/console/deals", follow_redirects=False).status_code in (303, 403)


def test_the_deal_pages_in_the_browser(dealt: Site, served: str, browser: Browser) -> None:
    for width, locale, heading in ((390, "zh-CN", "资产支持证券交易"), (1280, "en-US", "Asset-backed deals")):
        outside: list[Any] = []
        page = new_page(browser, served, outside, viewport={"width": width, "height": 900}, locale=locale)
        browser_sign_in(page, served, "console", "ops")
        if locale == "zh-CN":
            page.click("text=中文")
        page.goto(f"{served}/console/deals")
        expect(page.locator("h1")).to_have_text(heading)
        accessible(page)
        page.click(f"#deals a[href='{PAGE}']")
        expect(page.locator("#month")).to_have_value("2026-01")
        expect(page.locator("#grid tbody tr")).to_have_count(20)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        accessible(page)
        page.fill("#cdr", "4%")
        page.click("#stress-grid button")
        expect(page.locator("#grid tbody tr").first).to_contain_text("4.0%")
        assert outside == []
        page.context.close()
