"""The borrower's messages page: the same figures the loan shows, only the borrower's own loans."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from openice.access.users import Users
from openice.close_of_day import run_until
from openice.storage.uow import EngineUnits
from tests.web.conftest import PASSWORD, Site


def test_a_borrower_is_reminded_then_told_what_is_overdue(site: Site) -> None:
    Users(EngineUnits(site.engine)).create("borrower-one", PASSWORD, "borrower", site.world.ids[1]["borrower"])
    loan, other = site.world.ids[1]["loan"], site.world.ids[2]["loan"]
    app = site.signed_in("borrower-one", "app")
    run_until(site.engine, date(2026, 2, 13))  # two days before the first due date (2026-02-15)
    page = app.get("/app/messages").text
    due = Decimal(site.world.call("borrower1", "GET", f"/v1/loans/{loan}").json()["schedule"][0]["unpaid"]["amount"])
    assert f"Loan {loan}: CN¥{due:,.2f} falls due on Feb 15, 2026." in page
    assert f"Loan {other}" not in page  # another borrower's loan is not mentioned
    run_until(site.engine, date(2026, 2, 18))
    page = app.get("/app/messages").text
    assert f"Loan {loan} is 3 days overdue" in page
    assert (
        "页" not in page and app.get("/app/messages", cookies={"openice_lang": "zh-CN"}).text.count("已逾期 3 天") == 1
    )
