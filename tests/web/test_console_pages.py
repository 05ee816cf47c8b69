"""The console's back-office pages with the test client, on both engines: each is the operator's alone, its figures
are the API's, a reveal of personal data and every key made or revoked are audited, a key's secret is shown once
and the key works on the API until it is revoked, and the KPI tables, their CSV and the API's metrics agree; in
Debian's Chromium, every page passes axe-core and fits a phone's screen."""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from openice.web import monitoring
from openice.web.visit import LANG_COOKIE
from tests.api.test_page_cost import statements
from tests.decisioning.helpers import StubScorer, application_body, good_application
from tests.web.conftest import Site, browser_sign_in, csrf_of
from tests.web.test_browser import accessible, new_page

PAGES = (
    "/console/borrowers",
    "/console/decisions",
    "/console/credit-lines",
    "/console/products",
    "/console/institutions",
    "/console/institutions/INST-A",
    "/console/keys",
    "/console/audit",
    "/console/kpi",
    "/console/models",
)


def audit(site: Site, action: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = site.world.call("operator", "GET", "/v1/audit", params={"action": action}).json()[
        "items"
    ]
    return items


def cell_values(page: str, table: str) -> list[str]:
    """The `data-value` of every figure in one of the page's tables."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [html.unescape(v) for v in re.findall(r'data-value="([^"]*)"', body)]


def test_every_page_is_the_operators_alone(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    borrower = site.world.ids[1]["borrower"]
    decision = site.world.ids[1]["decision"]
    pages = (*PAGES, f"/console/borrowers/{borrower}", f"/console/decisions/{decision}")
    for path in pages:
        answer = ops.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert "<html" in answer.text
    for name, front in (("inst-a", "portal"), ("ann", "desk")):
        other = site.signed_in(name, front)
        for path in pages:
            assert other.get(path, follow_redirects=False).status_code == 403, (name, path)
    stranger = site.client()
    assert stranger.get("/console/keys", follow_redirects=False).status_code == 303


def test_a_borrower_is_masked_as_the_api_masks_it_and_a_reveal_needs_a_reason_and_is_audited(site: Site) -> None:
    borrower = site.world.ids[1]["borrower"]
    masked = site.world.call("operator", "GET", f"/v1/borrowers/{borrower}").json()
    clear = site.world.call("borrower1", "GET", f"/v1/borrowers/{borrower}").json()
    ops = site.signed_in("ops", "console")
    listed = ops.get("/console/borrowers").text
    assert html.escape(masked["name"]) in listed and masked["mobile"] in listed and clear["mobile"] not in listed
    page = ops.get(f"/console/borrowers/{borrower}").text
    assert clear["mobile"] not in page and masked["mobile"] in page
    assert f"/console/loans/{site.world.ids[1]['loan']}" in page and site.world.ids[1]["line"] in page

    refused = ops.post(f"/console/borrowers/{borrower}/reveal", data={"csrf": csrf_of(page), "reason": "  "})
    assert refused.status_code == 422 and 'id="reveal_reason-error"' in refused.text
    assert clear["mobile"] not in refused.text and audit(site, "pii.revealed") == []

    shown = ops.post(f"/console/borrowers/{borrower}/reveal", data={"csrf": csrf_of(page), "reason": "complaint 7"})
    assert shown.status_code == 200
    assert clear["mobile"] in shown.text and html.escape(clear["name"]) in shown.text
    [entry] = audit(site, "pii.revealed")
    assert entry["resource"] == f"borrower/{borrower}" and entry["detail"] == {"reason": "complaint 7"}
    assert entry["key_id"] == site.users["ops"]["id"]


def test_decisions_filter_by_outcome_and_a_decision_is_reproduced(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    api = site.world.call("operator", "GET", "/v1/decisions", params={"outcome": "approved"}).json()["items"]
    approved = ops.get("/console/decisions?outcome=approved").text
    assert sorted(re.findall(r'href="/console/decisions/([^"]+)"', approved)) == sorted(d["id"] for d in api)
    declined = ops.get("/console/decisions?outcome=declined").text
    assert re.findall(r'href="/console/decisions/([^"]+)"', declined) == []
    assert ops.get("/console/decisions?outcome=maybe").status_code == 422

    decision = site.world.ids[1]["decision"]
    stored = site.world.call("operator", "GET", f"/v1/decisions/{decision}").json()
    page = ops.get(f"/console/decisions/{decision}").text
    for rule in stored["rules_fired"]:
        assert rule in page
    assert stored["line_id"] in page and 'id="reproduced"' not in page
    again = ops.get(f"/console/decisions/{decision}?reproduce=true").text
    assert 'id="reproduced"' in again and "identical" in again


def test_lines_and_an_institutions_quota_are_the_apis(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    page = ops.get("/console/credit-lines").text
    for line in site.world.call("operator", "GET", "/v1/credit-lines").json()["items"]:
        row = page.split(f'id="line-{line["id"]}"', 1)[1].split("</tr>", 1)[0]
        assert f"CN¥{Decimal(line['available']['amount']):,.2f}" in row
    quota = site.world.call("operator", "GET", "/v1/institutions/INST-A/quota").json()
    shown = ops.get("/console/institutions/INST-A").text
    used = re.findall(r'data-minor="(\d+)"', shown.split('id="quotas"', 1)[1].split("</table>", 1)[0])
    # the page keeps each amount's fen beside it; the API reads it in yuan: 1,000,000 fen is "10000.00" CNY
    api = [int(Decimal(p["used"]["amount"]) * 100) for p in quota["periods"] if p["used"]["currency"] == "CNY"]
    assert [int(u) for u in used] == api and len(api) == 2 and api[0] > 0
    # its kind (not stated for INST-A) and the currency its terms are in, in the reader's language
    assert "<dt>Kind</dt><dd>Not stated</dd>" in shown and "<dt>Currency of its terms</dt><dd>CNY</dd>" in shown
    ops.cookies.set(LANG_COOKIE, "zh-CN")
    assert "<dt>机构类型</dt><dd>未注明</dd>" in ops.get("/console/institutions/INST-A").text
    ops.cookies.set(LANG_COOKIE, "en")
    products = site.world.call("operator", "GET", "/v1/products").json()
    catalogue = ops.get("/console/products").text
    assert all(f'id="product-{p["code"]}"' in catalogue for p in products)


def create_key(client: TestClient, form: dict[str, str]) -> Any:
    page = client.get("/console/keys").text
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key
    return client.post("/console/keys", data={"csrf": csrf_of(page), "key": key.group(1), **form}), key.group(1)


def test_a_key_shows_its_secret_once_works_on_the_api_and_stops_when_revoked(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    form = {"role": "institution", "tenant": "INST-B", "label": "reports"}
    made, form_key = create_key(ops, form)
    assert made.status_code == 200
    found = re.search(r'<code id="secret">([^<]+)</code>', made.text)
    assert found
    secret = found.group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert site.world.client.get("/v1/institutions/INST-B", headers=headers).status_code == 200
    assert site.world.client.get("/v1/institutions/INST-A", headers=headers).status_code == 404
    [created] = audit(site, "api_key.created")
    assert created["detail"] == {"role": "institution", "tenant": "INST-B"}

    again = ops.post("/console/keys", data={"csrf": csrf_of(made.text), "key": form_key, **form})
    assert 'id="secret-gone"' in again.text and secret not in again.text
    assert len(audit(site, "api_key.created")) == 1
    assert secret not in ops.get("/console/keys").text

    key_id = created["resource"]
    revoked = ops.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf_of(made.text)}, follow_redirects=False)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/console/keys?done=revoked"
    assert site.world.client.get("/v1/institutions/INST-B", headers=headers).status_code == 401
    [entry] = audit(site, "api_key.revoked")
    assert entry["resource"] == key_id and entry["key_id"] == site.users["ops"]["id"]
    twice = ops.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf_of(made.text)})
    assert twice.status_code == 422 and 'role="alert"' in twice.text
    assert len(audit(site, "api_key.revoked")) == 1


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"role": "institution", "tenant": " "}, "tenant"),
        ({"role": "institution", "tenant": "NO-SUCH-BANK"}, "tenant"),
        ({"role": "operator", "tenant": "INST-A"}, "tenant"),
        ({"role": "auditor", "tenant": "platform"}, "role"),
    ],
)
def test_a_bad_key_form_is_answered_beside_its_field_and_makes_no_key(
    site: Site, form: dict[str, str], field: str
) -> None:
    before = site.world.call("operator", "GET", "/v1/api-keys").json()["items"]
    ops = site.signed_in("ops", "console")
    answer, _ = create_key(ops, form)
    assert answer.status_code == 422 and f'id="{field}-error"' in answer.text, answer.text[-2000:]
    assert site.world.call("operator", "GET", "/v1/api-keys").json()["items"] == before
    assert audit(site, "api_key.created") == []


def test_the_audit_trail_filters_by_action_and_pages(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    api = audit(site, "drawdown")
    page = ops.get("/console/audit?action=drawdown").text
    body = page.split('id="audit"', 1)[1]
    assert body.count("<tr>") == 1 + len(api) and "decision.made" not in body.split("</thead>", 1)[1]
    everything = site.world.call("operator", "GET", "/v1/audit", params={"limit": 100}).json()["items"]
    assert len(everything) > 1
    first = ops.get("/console/audit").text
    assert 'rel="next"' not in first
    for entry in everything:
        assert f"<td>{entry['id']}</td>" in first


def test_the_kpis_are_the_apis_and_each_csv_is_its_table(site: Site) -> None:
    site.world.first_due()
    # INST-B funds through trust plans: its loan (20,000.00, nothing repaid yet) is the trust source's balance
    terms = site.world.call("operator", "GET", "/v1/institutions/INST-B").json()
    put = site.world.call("operator", "PUT", "/v1/institutions/INST-B", json={**terms, "kind": "trust"})
    assert put.status_code == 200, put.text
    metrics = site.world.call("operator", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"}).json()
    ops = site.signed_in("ops", "console")
    page = ops.get("/console/kpi?quarter=2026Q1").text
    m = metrics["metrics"]

    def total(name: str) -> Any:
        return m[name]["rows"][0]["value"]

    headline = cell_values(page, "table-headline")
    assert headline == [
        f"{Decimal(total('volume')) / 100:.2f}",
        str(total("loans_originated")),
        f"{Decimal(total('outstanding_balance')) / 100:.2f}",
        str(total("loans_outstanding")),
        str(total("day1_delinquency_rate")),
        str(total("collection_rate_30d")),
        str(total("delinquency_90_plus_rate")),
    ]
    assert cell_values(page, "table-funnel") == [
        str(total("cumulative_registered_users")),
        str(total("cumulative_approved_users")),
        str(total("cumulative_borrowers")),
        "0",
    ]
    revenue = {r["group"]["line"]: r["value"] for r in m["revenue"]["rows"]}
    assert cell_values(page, "table-revenue") == [f"{Decimal(v) / 100:.2f}" for v in revenue.values()]
    assert cell_values(page, "table-vintage_30_plus") == [str(r["value"]) for r in m["vintage_30_plus"]["rows"]]
    sources = {r["group"]["source"]: r["value"] for r in m["funding_source_balance"]["rows"]}
    assert cell_values(page, "table-funding_sources") == [f"{Decimal(v) / 100:.2f}" for v in sources.values()]
    assert sum(sources.values()) == total("outstanding_balance")
    assert sources["trust"] == 2_000_000 and '<th scope="row">Trusts</th>' in page
    shares = [str(r["value"]) for r in m["platform_model_share"]["rows"]]
    assert cell_values(page, "table-platform_models") == [*shares, str(total("capital_light_ice_technology_share"))]
    assert 'id="kpi-funding_cost"' in page and "Asset-backed securities deals" in page
    # ABS issued by currency: this book issued no deal, so its currency's row is zero.
    issued = [f"{Decimal(r['value']) / 100:.2f}" for r in m["abs_issued"]["rows"]]
    assert cell_values(page, "table-abs_issued") == issued == ["0.00"]
    sections = re.findall(r'id="table-([a-z0-9_]+)"', page)
    assert len(sections) == 13
    for section in sections:
        answer = ops.get(f"/console/kpi/{section}.csv?quarter=2026Q1")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["value"] for r in rows] == cell_values(page, f"table-{section}"), section
    assert ops.get("/console/kpi/nothing.csv").status_code == 404


CNY_100 = {"amount": "100.00", "currency": "CNY"}


def test_a_quarter_not_begun_is_refused_beside_its_field(site: Site) -> None:
    ops = site.signed_in("ops", "console")
    for quarter in ("2031Q1", "26Q1"):
        answer = ops.get(f"/console/kpi?quarter={quarter}")
        assert answer.status_code == 422 and 'id="quarter-error"' in answer.text, quarter


def test_the_quarterly_report_downloads_as_html_and_pdf_computed_once_per_book(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openice.analytics import report

    computed = []
    quarterly = report.quarterly
    monkeypatch.setattr(report, "quarterly", lambda *a, **k: computed.append(1) or quarterly(*a, **k))
    site.world.first_due()
    ops = site.signed_in("ops", "console")
    page = ops.get("/console/kpi/report.html?quarter=2026Q1")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "2026Q1" in page.text
    pdf = ops.get("/console/kpi/report.pdf?quarter=2026Q1")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert ops.get("/console/kpi/report.doc?quarter=2026Q1").status_code == 404
    assert ops.get("/console/kpi/report.pdf?quarter=2026Q1").content == pdf.content and len(computed) == 2
    loan = site.world.ids[1]["loan"]  # a booking changes the book: the next download is computed afresh
    paid = site.world.call("operator", "POST", f"/v1/loans/{loan}/repayments", key="kpi-pay", json=CNY_100)
    assert paid.status_code == 201, paid.text
    assert ops.get("/console/kpi/report.html?quarter=2026Q1").status_code == 200 and len(computed) == 3


def test_the_model_registry_shows_its_champion_and_challengers(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = site.signed_in("ops", "console")
    assert 'id="no-registry"' in ops.get("/console/models").text
    registry = {
        "champion": 2,
        "packages": [
            {"version": v, "path": f"v{v:04d}", "package_hash": f"{v}" * 64, "created_at": f"2026-01-0{v}T00:00:00"}
            | {"metrics": {"auc": 0.7 + v / 100, "ks": 0.3}}
            for v in (1, 2)
        ],
    }
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    services = site.world.client.app.state.services
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, model_registry=str(tmp_path)))
    page = ops.get("/console/models").text
    api = site.world.call("operator", "GET", "/v1/models").json()
    assert [p["champion"] for p in api] == [False, True]
    first, second = page.split('id="model-1"', 1)[1].split('id="model-2"', 1)
    assert "Challenger" in first and "Champion" in second and "0.72" in second


def champion_registry(folder: Path, score: float) -> Path:
    """A registry whose champion is the model behind the test world's decisions (the stub's hash), its package holding
    a training reference that puts half the scores below ``score`` and half above, and training figures."""
    calibration = [{"n": 50, "mean_pd": 0.02, "bad_rate": 0.02, "pd_min": 0.0, "pd_max": 0.05}] + [
        {"n": 50, "mean_pd": 0.3, "bad_rate": 0.3, "pd_min": 0.05, "pd_max": 0.9}
    ]
    metadata = {
        "reference": {"score": {"edges": [score], "shares": [0.5, 0.5, 0.0]}, "features": {}},
        "metrics": {"oof": {"n": 100, "bad_rate": 0.16, "auc": 0.78, "ks": 0.4}, "oof_calibration": calibration},
    }
    (folder / "v0001").mkdir()
    (folder / "v0001" / "metadata.json").write_text(json.dumps(metadata))
    entry = {"version": 1, "path": "v0001", "package_hash": StubScorer.package_hash, "created_at": "2026-01-01"}
    (folder / "registry.json").write_text(json.dumps({"champion": 1, "packages": [entry | {"metrics": {}}]}))
    return folder


def test_the_champion_is_monitored_from_the_decisions_it_made(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both decisions of the world scored above the reference's median: all scores in one of two equal bins, so
    PSI = 0.5 ln 2 + (1e-6 - 0.5) ln(1e-6 / 0.5) (shares are floored at 1e-6), far above 0.25: act. Both drew a
    loan; once one is written off, half are bad, and AUC is 0.5 (the same PD for both)."""
    score = StubScorer().score(good_application()).score
    services = site.world.client.app.state.services
    registry = champion_registry(tmp_path, score - 1)
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, model_registry=str(registry)))
    ops = site.signed_in("ops", "console")
    page = ops.get("/console/models").text
    assert 'id="chart-psi"' in page and 'id="no-outcomes"' not in page and "/assets/echarts.common.min.js" in page
    month, decisions, psi, state, known, bad_rate, auc = cell_texts(page, "table-monitoring")[0]
    expected = 0.5 * math.log(2) + (1e-6 - 0.5) * math.log(1e-6 / 0.5)
    assert (decisions, known, bad_rate, auc) == ("2", "2", "0.0000", "")  # AUC needs a bad
    assert float(psi) == pytest.approx(expected, abs=1e-4) and state == "Act"
    assert (
        month
        == site.world.call("operator", "GET", f"/v1/decisions/{site.world.ids[1]['decision']}").json()["decided_on"][:7]
    )

    loan = site.world.ids[1]["loan"]
    gone = site.world.call("operator", "POST", f"/v1/loans/{loan}/write-off", key="wo-1", json={"reason": "fraud"})
    assert gone.status_code == 201, gone.text
    page = ops.get("/console/models").text
    assert 'id="chart-bad-rate"' in page and 'id="chart-auc"' in page
    assert cell_texts(page, "table-monitoring")[0][4:] == ["2", "0.5000", "0.5000"]
    assert cell_texts(page, "table-monitoring")[1][5:] == ["0.1600", "0.7800"]  # the training figures
    listed = list(csv.reader(io.StringIO(ops.get("/console/models/monitoring.csv").text)))
    assert listed[1] == [month, "2", f"{expected:.4f}", "act", "2", "0.5000", "0.5000"]

    ops.cookies.set(LANG_COOKIE, "zh-CN")
    chinese = ops.get("/console/models").text
    assert "冠军模型监控" in chinese and "处置" in chinese


def test_the_monitoring_is_computed_once_per_version_of_what_it_reads(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened again, by the same or another operator, the page reuses the figures; a new decision, a booking or the
    close of a day is a new version, and the figures are computed again (and count the new decision)."""
    services = site.world.client.app.state.services
    registry = champion_registry(tmp_path, StubScorer().score(good_application()).score - 1)
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, model_registry=str(registry)))
    computed: list[str] = []
    real = monitoring.champion

    def counted(*args: Any) -> Any:
        computed.append(args[2])
        return real(*args)

    monkeypatch.setattr(monitoring, "champion", counted)
    ops, other = site.signed_in("ops", "console"), site.signed_in("ops", "console")
    first = cell_texts(ops.get("/console/models").text, "table-monitoring")
    assert cell_texts(other.get("/console/models").text, "table-monitoring") == first
    assert other.get("/console/models/monitoring.csv").status_code == 200 and len(computed) == 1
    assert first[0][1] == "2"  # the world's two decisions

    bid = site.world.ids[1]["borrower"]
    made = site.world.call(
        "borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="again", json=application_body()
    )
    assert made.status_code == 201
    assert cell_texts(ops.get("/console/models").text, "table-monitoring")[0][1] == "3" and len(computed) == 2
    site.world.first_due()  # closes business days: the first installments fall due
    ops.get("/console/models")
    assert len(computed) == 3
    loan = site.world.ids[1]["loan"]
    paid = site.world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="pay-1", json={"amount": "100.00", "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    ops.get("/console/models")
    ops.get("/console/models")
    assert len(computed) == 4


def cell_texts(page: str, table: str) -> list[list[str]]:
    """Each body row of a table: its month (or label), then the `data-value` of its figures and its status."""
    body = page.split(f'id="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        label = re.search(r'<th scope="row">([^<]*)</th>', row)
        values = re.findall(r'<td class="num" data-value="([^"]*)"|<td>([^<]*)</td>', row)
        rows.append([label.group(1) if label else "", *(a or b for a, b in values)])
    return rows


@pytest.mark.parametrize("width", [390, 1280])
def test_the_back_office_pages_in_chromium(site: Site, served: str, browser: Browser, width: int) -> None:
    """Every new page passes axe-core and fits the screen; the KPI charts are drawn; a reveal and a key work."""
    site.world.first_due()
    outside: list[str] = []
    page = new_page(browser, served, outside, viewport={"width": width, "height": 900})
    browser_sign_in(page, served, "console", "ops")
    borrower = site.world.ids[1]["borrower"]
    decision = site.world.ids[1]["decision"]
    for path in (*PAGES, f"/console/borrowers/{borrower}", f"/console/decisions/{decision}?reproduce=true"):
        page.goto(f"{served}{path}")
        expect(page.locator("h1")).to_be_visible()
        accessible(page)
        scrolled = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "w => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w)"
            ".slice(0, 3).map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 40))",
            width,
        )
        assert scrolled <= width, f"{path} is {scrolled}px wide on a {width}px screen: {wide}"

    page.goto(f"{served}/console/kpi?quarter=2026Q1")
    expect(page.locator("#kpi-buckets .chart svg")).to_have_count(1)
    expect(page.locator("#kpi-funnel .chart svg")).to_have_count(1)
    for section in ("funding_sources", "funding_cost", "platform_models"):
        expect(page.locator(f"#kpi-{section} .chart svg")).to_have_count(1)

    clear = site.world.call("borrower1", "GET", f"/v1/borrowers/{borrower}").json()["mobile"]
    page.goto(f"{served}/console/borrowers/{borrower}")
    expect(page.locator("#borrower-mobile")).not_to_have_text(clear)
    page.fill("#reveal-reason", "the borrower asked us to confirm their number")
    page.click("#reveal-form button")
    expect(page.locator("#borrower-mobile")).to_have_text(clear)
    accessible(page)

    page.goto(f"{served}/console/keys")
    page.select_option("#new-role", "institution")
    page.fill("#new-tenant", "INST-A")
    page.click("#create-key button")
    secret = page.locator("#secret").inner_text()
    assert site.world.client.get("/v1/institutions/INST-A", headers={"Authorization": f"Bearer {secret}"}).is_success
    accessible(page)
    page.click("text=中文")
    expect(page.locator("h1")).to_have_text("API 密钥")
    accessible(page)
    assert outside == []


def test_the_champion_monitoring_charts_in_chromium(
    site: Site, served: str, browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitoring charts are drawn beside their table, the page passes axe-core and fits a phone's screen, in
    both languages."""
    services = site.world.client.app.state.services
    registry = champion_registry(tmp_path, StubScorer().score(good_application()).score - 1)
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, model_registry=str(registry)))
    gone = site.world.call(
        "operator", "POST", f"/v1/loans/{site.world.ids[1]['loan']}/write-off", key="wo-1", json={"reason": "fraud"}
    )
    assert gone.status_code == 201, gone.text
    outside: list[str] = []
    page = new_page(browser, served, outside, viewport={"width": 390, "height": 900})
    browser_sign_in(page, served, "console", "ops")
    page.goto(f"{served}/console/models")
    for chart in ("#chart-psi", "#chart-bad-rate", "#chart-auc"):
        expect(page.locator(f"{chart} svg")).to_have_count(1)
    expect(page.locator("#table-monitoring tbody tr")).to_have_count(2)
    accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("text=中文")
    expect(page.locator("#monitoring h2")).to_have_text("冠军模型监控")
    expect(page.locator("#chart-psi svg")).to_have_count(1)
    accessible(page)
    assert outside == []


def test_the_monitoring_runs_the_same_statements_however_many_months(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = site.world.client.app.state.services
    registry = champion_registry(tmp_path, StubScorer().score(good_application()).score - 1)
    monkeypatch.setattr(services, "settings", dataclasses.replace(services.settings, model_registry=str(registry)))
    ops = site.signed_in("ops", "console")
    ops.get("/console/models")
    services.__dict__.pop("monitoring_cache")  # computed afresh, as after a new decision
    with statements(site.world) as one_month:
        assert len(cell_texts(ops.get("/console/models").text, "table-monitoring")) == 2  # a month, then training
    site.world.first_due()
    borrower = site.world.ids[1]["borrower"]
    again = site.world.call(
        "borrower1", "POST", f"/v1/borrowers/{borrower}/applications", key="app-again", json=application_body()
    )
    assert again.status_code == 201, again.text
    with statements(site.world) as two_months:
        rows = cell_texts(ops.get("/console/models").text, "table-monitoring")
    assert [r[:2] for r in rows[:2]] == [["2026-01", "2"], ["2026-02", "1"]]
    assert len(two_months) == len(one_month), (one_month, two_months)
