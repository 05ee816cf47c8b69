"""The investor role over the API, on SQLite and PostgreSQL: a key bound to its deals lists them and reads their
monthly reports; another deal is missing to it (404), every other operation is refused (403) or shows nothing of
another tenant's; operators see every deal. The book is tests/funding/test_book.py's, beside the API world's."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from openice.access.keys import ApiKeys
from openice.errors import ValidationError
from openice.funding.deal import Deal
from openice.funding.service import Funding
from openice.storage.uow import EngineUnits
from tests.api.conftest import World
from tests.api.test_isolation import OTHER_DEAL, foreign, probe  # noqa: F401  (a fixture)
from tests.funding.test_book import START, book, deal_file  # noqa: F401  (a fixture)

OWN = "BOOK 2026-1"


@pytest.fixture
def deals(world: World, engine: Engine, book: list[int]) -> None:  # noqa: F811
    """BOOK 2026-1 over loans 1 and 6 (7,000.00), then OTHER 2026-1 over what the platform still holds."""
    funding = Funding(EngineUnits(engine))
    own = deal_file(True)
    other = own | {"name": OTHER_DEAL, "eligibility": {}, "pool_balance": "20000.00"}
    other["tranches"] = [{"name": "A", "balance": "10000.00", "coupon": 0.1}, {"name": "R", "balance": "10000.00"}]
    for data in (own, other):
        funding.issue(Deal.from_dict(data), data, START)
    keys = ApiKeys(EngineUnits(engine))
    world.keys["investor"] = keys.create("investor", OWN)["secret"]
    world.keys["both"] = keys.create("investor", f"{OWN},{OTHER_DEAL}")["secret"]


def names(world: World, who: str) -> list[str]:
    listed = world.call(who, "GET", "/v1/deals")
    assert listed.status_code == 200, listed.text
    return [d["name"] for d in listed.json()["items"]]


def test_an_investor_reads_only_its_deals(world: World, deals: None, foreign: dict[str, Any]) -> None:  # noqa: F811
    assert names(world, "investor") == [OWN]
    assert names(world, "both") == [OWN, OTHER_DEAL]
    assert names(world, "operator") == [OWN, OTHER_DEAL]
    assert world.call("INST-A", "GET", "/v1/deals").status_code == 403

    # `foreign` ran end of day to 16 February: January's month-end paid both deals.
    own = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01")
    assert own.status_code == 200, own.text
    report = own.json()
    # January collected nothing from loans 1 and 6: the 10.00 reserve pays 10.00 of A's 50.00 (1% of 5,000.00).
    assert (report["deal"], report["pool"]["opening_balance"]) == (OWN, "7000.00")
    assert (report["tranches"][0]["interest_paid"], report["tranches"][0]["interest_shortfall"]) == ("10.00", "40.00")
    pdf = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    html = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html") and OWN in html.text
    # In Chinese, as `openice abs report --lang zh` writes it; English unless asked, another language refused.
    zh = {"format": "html", "lang": "zh"}
    html = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01", params=zh)
    assert '<html lang="zh-CN">' in html.text and "资产池" in html.text and "Pool" not in html.text
    pdf = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01", params={"format": "pdf", "lang": "zh"})
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "资产池" in text and "储备账户" in text and "40.00" in text
    refused = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-01", params={"format": "html", "lang": "fr"})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"

    other = world.call("investor", "GET", f"/v1/deals/{OTHER_DEAL}/reports/2026-01")
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    assert OTHER_DEAL not in names(world, "investor")
    assert world.call("both", "GET", f"/v1/deals/{OTHER_DEAL}/reports/2026-01").status_code == 200
    assert world.call("operator", "GET", f"/v1/deals/{OTHER_DEAL}/reports/2026-01").status_code == 200
    unclosed = world.call("investor", "GET", f"/v1/deals/{OWN}/reports/2026-02")
    assert unclosed.status_code == 404 and unclosed.json()["field"] == "month"

    # Every operation of the app with the investor's key against the other tenant and the other deal.
    seen = probe(world, "investor", foreign)
    assert seen["GET /v1/deals/{deal}/reports/{month}"] == 404
    assert {seen[k] for k in seen if "/deals" not in k and k.startswith("GET /v1/loans")} == {403}


def test_an_investor_key_names_issued_deals(world: World, deals: None) -> None:
    keys = ApiKeys(EngineUnits(world.engine))
    for tenant in ("NO SUCH DEAL", f"{OWN},NO SUCH DEAL", " , "):
        with pytest.raises(ValidationError) as refused:
            keys.create("investor", tenant)
        assert refused.value.field == "tenant"
    made = world.call("operator", "POST", "/v1/api-keys", key="inv", json={"role": "investor", "tenant": "NOPE"})
    assert made.status_code == 422 and made.json()["field"] == "tenant"
