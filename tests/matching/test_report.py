"""The investigation report as served: the stored report's minor units as decimal strings of major units."""

from typing import Any

from openice.matching.report import VERSION, render_html, served


def stored(**affordability: Any) -> dict[str, Any]:
    """A report as `build_report` stores it, money in minor units of CNY."""
    application = {
        "income_monthly": 300_000,
        "existing_debt_monthly": 12_345,
        "existing_debt_balance": 0,
        "requested_amount": 500_000,
        "requested_tenor": 6,
    }
    return {
        "institution": {"code": "BANK-A", "name": "Bank A", "business_model": "capital-light"},
        "applicant": {
            "name": "W*",
            "national_id": "110***",
            "mobile": "138***",
            "age": 30,
            "province": "BJ",
            "city": "BJ",
        },
        "identity_and_fraud": {"verdict": "pass", "anomaly_score": 0.1, "rules": []},
        "credit": {"pd": 0.05, "score": 650, "grade": "C", "reasons": ["INCOME_MONTHLY_LOW"]},
        "affordability": affordability,
        "application": application,
        "bureau": {},
        "recommended": {"line_amount": 1_234_500, "rate": 0.15, "apr": 0.16, "expiry": "2027-01-15"},
        "drawdown": {"id": 1, "amount": 500_000, "tenor": 6, "product_code": "CASH", "line_id": "L1"},
        "model": {
            "package_hash": "p",
            "anomaly_model_hash": "a",
            "policy_hash": "h",
            "input_hash": "i",
            "decision_id": 7,
            "decided_on": "2026-01-15",
        },
    }


def test_the_served_report_gives_money_in_major_units_with_its_currency() -> None:
    report = served(stored(max_affordable_payment=75_001, dti_existing=0.0412, line_tenor=12), "CNY")
    assert (report["version"], report["currency"]) == (VERSION, "CNY") == (2, "CNY")
    assert report["drawdown"]["amount"] == "5000.00"  # 500,000 fen
    assert report["recommended"]["line_amount"] == "12345.00"  # 1,234,500 fen
    assert report["application"]["existing_debt_monthly"] == "123.45"  # 12,345 fen
    assert report["affordability"] == {"max_affordable_payment": "750.01", "dti_existing": 0.0412, "line_tenor": 12}
    assert report["application"]["requested_tenor"] == 6  # not money: left as it is
    # the reason quotes the income as a person reads it: 300,000 fen is 3,000.00 CNY
    assert report["credit"]["reasons"] == [
        {"code": "INCOME_MONTHLY_LOW", "text": "Monthly income: low (3,000.00 CNY) lowered the score"}
    ]
    html = render_html(report)
    assert "5,000.00 CNY" in html and "12,345.00 CNY" in html and "750.01 CNY" in html and "123.45 CNY" in html
    assert "minor units" not in html and ">0.0412<" in html


def test_a_currency_without_decimals_is_served_in_whole_units() -> None:
    report = served(stored(), "JPY")  # the yen has no minor unit: 500,000 is 500,000 yen
    assert (report["drawdown"]["amount"], report["affordability"]) == ("500000", {})
    assert "500,000 JPY" in render_html(report)
