"""The lifecycle over HTTP: money as decimal strings, problem+json errors, idempotency, docs served locally."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient

from tests.api.conftest import World, make_app

PROBLEM = "application/problem+json"


def test_a_credit_line_shows_its_apr_convention_and_effective_annual_rate(world: World) -> None:
    line = world.call("borrower1", "GET", f"/v1/credit-lines/{world.ids[1]['line']}").json()
    assert line["apr_convention"] == "IRR method: per-period IRR x 12"  # CASH-EI: monthly installments
    apr = line["apr_ppm"] / 1e6
    assert abs(line["effective_annual_rate_ppm"] / 1e6 - ((1 + apr / 12) ** 12 - 1)) < 2e-6
    listed = world.call("borrower1", "GET", "/v1/credit-lines").json()["items"]
    assert [x["effective_annual_rate_ppm"] for x in listed] == [line["effective_annual_rate_ppm"]]


def test_loan_detail_repay_prepay_and_reverse(world: World) -> None:
    loan = world.ids[1]["loan"]
    world.first_due()
    detail = world.call("borrower1", "GET", f"/v1/loans/{loan}").json()
    assert detail["principal"] == {"amount": "10000.00", "currency": "CNY"}
    assert len(detail["schedule"]) == 12 and detail["funder"] == "INST-A"
    paid = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="pay-1", json={"amount": "100.00", "currency": "CNY"}
    )
    assert paid.status_code == 201, paid.text
    again = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="pay-1", json={"amount": "100.00", "currency": "CNY"}
    )
    assert again.status_code == 201 and again.json() == paid.json()
    clash = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="pay-1", json={"amount": "200.00", "currency": "CNY"}
    )
    assert clash.status_code == 409 and clash.headers["content-type"] == PROBLEM
    assert clash.json()["field"] == "idempotency_key"
    pre = world.call(
        "borrower1",
        "POST",
        f"/v1/loans/{loan}/prepayments",
        key="pre-1",
        json={"amount": "1000.00", "currency": "CNY", "mode": "shorten"},
    )
    assert pre.status_code in (201, 422), pre.text
    txns = world.call("borrower1", "GET", f"/v1/loans/{loan}/transactions").json()["items"]
    assert [t["kind"] for t in txns][:1] == ["repayment"] and txns[0]["amount"]["amount"] == "100.00"
    undo = world.call("operator", "POST", f"/v1/transactions/{paid.json()['transaction_id']}/reversal", key="rev-1")
    assert undo.status_code == 201, undo.text
    assert (
        world.call(
            "borrower1", "POST", f"/v1/transactions/{paid.json()['transaction_id']}/reversal", key="rev-2"
        ).status_code
        == 403
    )
    actions = {a["action"] for a in world.call("operator", "GET", "/v1/audit").json()["items"]}
    assert {"decision.made", "drawdown", "loan.repayment", "transaction.reversed", "api_key.created"} - actions == {
        "api_key.created"
    }  # keys in this world were made through the library, not the API


def test_problems_name_the_field_and_the_reason(world: World) -> None:
    loan = world.ids[1]["loan"]
    bad = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="p", json={"amount": "1.001", "currency": "CNY"}
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["field"] == "amount" and "decimals" in bad.json()["detail"]
    wrong = world.call(
        "borrower1", "POST", f"/v1/loans/{loan}/repayments", key="q", json={"amount": "1.00", "currency": "USD"}
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "currency"
    missing = world.call("borrower1", "POST", f"/v1/loans/{loan}/repayments", json={"amount": "1", "currency": "CNY"})
    assert missing.status_code == 422 and missing.json()["field"] == "Idempotency-Key"
    assert world.call("operator", "GET", "/v1/loans/999999").json()["status"] == 404
    anonymous = world.client.get("/v1/loans")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
    no_key = world.client.post(f"/v1/loans/{loan}/repayments", json={"amount": "x"})  # refused before validation
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"
    wrong_role = world.call(
        "INST-A", "POST", f"/v1/loans/{loan}/repayments", key="r", json={"amount": "1.00", "currency": "CNY"}
    )
    assert wrong_role.status_code == 403 and "operator" in wrong_role.json()["detail"]
    huge = world.client.post(
        "/v1/borrowers",
        content=b"x" * 2_000_000,
        headers={**world.as_("operator"), "Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_pagination_filters_and_masking(world: World) -> None:
    first = world.call("operator", "GET", "/v1/loans", params={"limit": 1}).json()
    second = world.call("operator", "GET", "/v1/loans", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert first["items"][0]["id"] != second["items"][0]["id"] and second["next_cursor"] is None
    only_b = world.call("operator", "GET", "/v1/loans", params={"funder": "INST-B"}).json()["items"]
    assert [loan["id"] for loan in only_b] == [world.ids[2]["loan"]]
    bid = world.ids[1]["borrower"]
    own = world.call("borrower1", "GET", f"/v1/borrowers/{bid}").json()
    seen = world.call("operator", "GET", f"/v1/borrowers/{bid}").json()
    assert not own["masked"] and seen["masked"] and "*" in seen["national_id"] and "*" not in own["national_id"]
    agent = world.call("collections", "GET", f"/v1/borrowers/{bid}").json()
    assert agent["mobile"] == own["mobile"] and agent["national_id"] == seen["national_id"]


def test_key_lifecycle_rotation_and_revocation(world: World) -> None:
    made = world.call(
        "operator",
        "POST",
        "/v1/api-keys",
        key="k1",
        json={"role": "institution", "tenant": "INST-A", "label": "ops desk"},
    )
    assert made.status_code == 201 and len(made.json()["secret"]) >= 43
    replay = world.call(
        "operator",
        "POST",
        "/v1/api-keys",
        key="k1",
        json={"role": "institution", "tenant": "INST-A", "label": "ops desk"},
    )
    assert replay.json()["id"] == made.json()["id"] and replay.json()["secret"] is None
    old = {"Authorization": f"Bearer {made.json()['secret']}"}
    assert world.client.get("/v1/offers", headers=old).status_code == 200
    key_id = made.json()["id"]
    rotated = world.call("operator", "POST", f"/v1/api-keys/{key_id}/rotation", key="r1").json()
    assert rotated["id"] == key_id and rotated["previous_until"] > rotated["rotated_at"]  # the same key, overlapping
    new = {"Authorization": f"Bearer {rotated['secret']}"}
    assert world.client.get("/v1/offers", headers=old).status_code == 200
    assert world.client.get("/v1/offers", headers=new).status_code == 200
    again = world.call("operator", "POST", f"/v1/api-keys/{key_id}/rotation?overlap_hours=0", key="r2").json()
    assert again["previous_until"] is None
    for secret, status in ((made.json()["secret"], 401), (rotated["secret"], 401), (again["secret"], 200)):
        assert world.client.get("/v1/offers", headers={"Authorization": f"Bearer {secret}"}).status_code == status
    assert world.call("operator", "POST", f"/v1/api-keys/{key_id}/revocation").status_code == 200
    assert world.client.get("/v1/offers", headers={"Authorization": f"Bearer {again['secret']}"}).status_code == 401
    unknown = world.call("operator", "POST", "/v1/api-keys", key="k2", json={"role": "borrower", "tenant": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "tenant"


def test_operations_docs_and_metrics(world: World) -> None:
    client = world.client
    assert client.get("/health").json() == {"status": "ok"} and client.get("/ready").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    docs = client.get("/docs").text
    assert "/static/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/static/swagger-ui-bundle.js").status_code == 200
    assert "openice_http_requests_total" in client.get("/metrics").text
    report = world.call("INST-A", "GET", f"/v1/offers/{world.ids[1]['offer']}/report", params={"format": "html"})
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert " CNY" in report.text and "minor units" not in report.text
    served = world.call("INST-A", "GET", f"/v1/offers/{world.ids[1]['offer']}/report").json()
    assert (served["version"], served["currency"]) == (2, "CNY")  # money as decimal strings of major units
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", served["drawdown"]["amount"])
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", served["recommended"]["line_amount"])
    metrics = world.call("INST-A", "GET", "/v1/portfolio/metrics", params={"quarter": "2026Q1"})
    assert metrics.status_code == 200, metrics.text
    groups = {r["group"].get("institution") for m in metrics.json()["metrics"].values() for r in m["rows"]}
    assert groups <= {"INST-A"}
    future = world.call("INST-A", "GET", "/v1/portfolio/metrics", params={"quarter": "9728Q4"})
    assert future.status_code == 422 and future.json()["field"] == "quarter"
    partly = metrics.json()  # the book is closed through the day before the business date, inside the quarter
    closed = partly["last_closed_day"]
    assert f"after the book's last closed business day {closed}" in future.text
    assert (partly["partly_closed"], partly["as_of"]) == (True, closed)
    assert partly["closed_range"] == {"start": "2026-01-01", "end": closed}
    after = (date.fromisoformat(closed) + timedelta(days=1)).isoformat()
    for params, field in (
        ({"quarter": "2026Q1", "as_of": after}, "as_of"),
        ({"quarter": "2026Q1", "collection_window": "fortnight"}, "collection_window"),
    ):
        refused = world.call("INST-A", "GET", "/v1/portfolio/metrics", params=params)
        assert refused.status_code == 422 and refused.json()["field"] == field, refused.text


def test_each_key_has_a_rate_limit(world: World) -> None:
    client = TestClient(make_app(world.engine, rate_limit_per_second=0.5, rate_limit_burst=2))
    statuses = [client.get("/v1/products", headers=world.as_("operator")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/v1/products", headers=world.as_("operator"))
    assert limited.headers["content-type"] == PROBLEM and int(limited.headers["retry-after"]) >= 1
    assert client.get("/v1/products", headers=world.as_("INST-A")).status_code == 200  # another key, its own bucket
