"""The model's own reasons in plain words, in English and Chinese: on the borrower's decline page, in the portal's
investigation report, on the console's decision page and in the API (the code kept, the text added)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from openice.access.users import Users
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits
from openice.web.visit import LANG_COOKIE
from tests.decisioning.helpers import StubResult, StubScorer, application_body
from tests.web.conftest import PASSWORD, Site, site_of

# The stub scorer's PD: z = -4 + 1.2 x delinquencies + 2 x utilisation; 3 delinquencies at 90% give z = 1.4, PD 0.80,
# above the policy's maximum: a cut-off decline, with the stub's one reason, DELINQUENCIES_24M_HIGH.
RISKY = {"delinquencies_24m": 3, "revolving_utilisation": 0.9, "inquiries_6m": 1, "credit_history_months": 60}
WORDS = {
    "en": "Delinquencies in the last 2 years: high (3) lowered the score",
    "zh-CN": "近2年逾期次数：偏高（3），拉低了评分",
}


def declined(site: Site) -> str:
    """A decline of borrower 1 on the score, through the API."""
    bid = site.world.ids[1]["borrower"]
    made = site.world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="risky", json=application_body(bureau=RISKY)
    )
    assert made.status_code == 201 and made.json()["outcome"] == "declined", made.text
    assert any(r.startswith("cut-off") for r in made.json()["reasons"])
    return str(made.json()["id"])


def in_language(client: TestClient, locale: str) -> TestClient:
    client.cookies.set(LANG_COOKIE, locale)
    return client


def test_the_api_keeps_the_code_and_adds_the_text(site: Site) -> None:
    decision_id = declined(site)
    got = site.world.call("operator", "GET", f"/v1/decisions/{decision_id}").json()
    assert got["score_reasons"] == [{"code": "DELINQUENCIES_24M_HIGH", "text": WORDS["en"]}]
    assert got["result"]["score_reasons"] == ["DELINQUENCIES_24M_HIGH: Delinquencies 24m is high"]  # as stored


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_borrower_reads_what_lowered_the_score_in_their_language(site: Site, locale: str) -> None:
    decision_id = declined(site)
    Users(EngineUnits(site.engine)).create("bob", PASSWORD, "borrower", site.world.ids[1]["borrower"])
    app = in_language(site.signed_in("bob", "app"), locale)
    page = app.get(f"/app/decisions/{decision_id}")
    assert page.status_code == 200 and 'data-outcome="declined"' in page.text
    shown = page.text.split('id="score-reasons"')[1].split("</ul>")[0]
    assert WORDS[locale] in shown and "DELINQUENCIES" not in page.text


def test_a_decline_not_on_the_score_does_not_blame_it(site: Site) -> None:
    """Income too small for any line: an affordability decline, whatever the model's reasons."""
    bid = site.world.ids[1]["borrower"]
    body = application_body(bureau=RISKY | {"delinquencies_24m": 1, "revolving_utilisation": 0.3})
    body.update(income_monthly="3000.00", existing_debt_monthly="2500.00")
    made = site.world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="poor", json=body).json()
    assert made["outcome"] == "declined" and not any(r.startswith("cut-off") for r in made["reasons"])
    assert made["score_reasons"]  # the model had a reason ...
    Users(EngineUnits(site.engine)).create("bob", PASSWORD, "borrower", bid)
    page = site.signed_in("bob", "app").get(f"/app/decisions/{made['id']}")
    assert 'id="score-reasons"' not in page.text  # ... but the score is not why


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_console_shows_each_code_beside_its_words(site: Site, locale: str) -> None:
    decision_id = declined(site)
    page = in_language(site.signed_in("ops", "console"), locale).get(f"/console/decisions/{decision_id}")
    table = page.text.split('id="score-reasons"')[1].split("</table>")[0]
    assert "<code>DELINQUENCIES_24M_HIGH</code>" in table and WORDS[locale] in table


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_portals_report_gives_the_models_reasons_in_words(site: Site, locale: str) -> None:
    """Borrower 1 draws again after a decision with one past delinquency (PD 0.08, within INST-A's box)."""
    bid = site.world.ids[1]["borrower"]
    bureau = RISKY | {"delinquencies_24m": 1, "revolving_utilisation": 0.3}
    made = site.world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="one", json=application_body(bureau=bureau)
    ).json()
    assert made["outcome"] == "approved", made
    drawn: Any = site.world.call(
        "borrower1",
        "POST",
        f"/v1/credit-lines/{made['line_id']}/drawdowns",
        key="dd-one",
        json={"amount": "5000.00", "currency": "CNY", "tenor": 12},
    ).json()
    offers = site.world.call("operator", "GET", "/v1/offers", params={"drawdown_id": drawn["id"]}).json()["items"]
    offer_id = next(o["id"] for o in offers if o["institution_code"] == "INST-A")
    page = in_language(site.signed_in("inst-a", "portal"), locale).get(f"/portal/offers/{offer_id}")
    listed = page.text.split('id="model-reasons"')[1].split("</ul>")[0]
    one = WORDS[locale].replace("3", "1")
    assert one in listed and "<code>DELINQUENCIES_24M_HIGH</code>" in listed
    report = site.world.call("INST-A", "GET", f"/v1/offers/{offer_id}/report").json()
    assert report["credit"]["reasons"] == [{"code": "DELINQUENCIES_24M_HIGH", "text": WORDS["en"].replace("3", "1")}]


class IncomeScorer(StubScorer):
    """The stub's PD and reasons, and a reason on the monthly income, an amount, when it is under 5,000.00 CNY."""

    def score(self, application: dict[str, Any]) -> StubResult:
        made = super().score(application)
        if application["income_monthly"] >= 500_000:  # minor units, as the model reads them
            return made
        return replace(made, reasons=[*made.reasons, "INCOME_MONTHLY_LOW: Income monthly is low"])


# 4,000.50 CNY a month is stored as 400,050 fen and read back in major units with the product's currency.
INCOME = {
    "en": "Monthly income: low (4,000.50 CNY) lowered the score",
    "zh-CN": "月收入：偏低（4,000.50 CNY），拉低了评分",
}


@pytest.fixture
def income_site(engine: Engine, servicing: Servicing) -> Site:
    return site_of(engine, IncomeScorer())


def declined_on_income(site: Site) -> str:
    """Borrower 1 declined on the score, its reasons the delinquencies and an income of 4,000.50 CNY."""
    bid = site.world.ids[1]["borrower"]
    body = application_body(bureau=RISKY, income_monthly="4000.50")
    made = site.world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="low", json=body)
    assert made.status_code == 201 and any(r.startswith("cut-off") for r in made.json()["reasons"]), made.text
    assert made.json()["score_reasons"][1] == {"code": "INCOME_MONTHLY_LOW", "text": INCOME["en"]}  # as decided
    return str(made.json()["id"])


def test_the_api_quotes_an_amount_in_major_units_and_keeps_the_stored_minor_ones(income_site: Site) -> None:
    decision_id = declined_on_income(income_site)
    got = income_site.world.call("operator", "GET", f"/v1/decisions/{decision_id}").json()
    assert got["score_reasons"][1] == {"code": "INCOME_MONTHLY_LOW", "text": INCOME["en"]}
    assert "400050" not in got["score_reasons"][1]["text"].replace(",", "")
    # The stored result keeps the hashed minor units, and says so with the product's currency.
    assert (got["currency"], got["money_unit"]) == ("CNY", "minor")
    listed = income_site.world.call("operator", "GET", "/v1/decisions").json()["items"]
    assert next(d for d in listed if d["id"] == decision_id)["score_reasons"] == got["score_reasons"]


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_console_and_the_app_quote_an_amount_in_major_units(income_site: Site, locale: str) -> None:
    decision_id = declined_on_income(income_site)
    console = in_language(income_site.signed_in("ops", "console"), locale).get(f"/console/decisions/{decision_id}")
    assert INCOME[locale] in console.text.split('id="score-reasons"')[1].split("</table>")[0]
    Users(EngineUnits(income_site.engine)).create("bob", PASSWORD, "borrower", income_site.world.ids[1]["borrower"])
    app = in_language(income_site.signed_in("bob", "app"), locale).get(f"/app/decisions/{decision_id}")
    assert INCOME[locale] in app.text.split('id="score-reasons"')[1].split("</ul>")[0]
