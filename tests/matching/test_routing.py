"""Drawdowns routed against SQLite and PostgreSQL: origination, re-routing, quotas under a race, reports."""

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select

from openice.errors import Conflict
from openice.matching.institutions import CreditBox
from openice.matching.service import Matching
from openice.servicing.service import Servicing
from openice.storage import decisioning_tables, servicing_tables
from openice.storage.uow import EngineUnits
from tests.decisioning.helpers import VAULT, good_application, make_decisioning, person
from tests.matching.test_boxes import institution


class Declines:
    """An institution gateway where some institutions say no."""

    def __init__(self, *codes: str) -> None:
        self.codes = set(codes)
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def decide(self, code: str, report: dict[str, Any]) -> tuple[bool, str]:
        with self.lock:
            self.seen.append(code)
        return (False, "outside appetite this week") if code in self.codes else (True, "approved")


def open_line(engine: Engine, k: int = 1, **changes: Any) -> str:
    decisioning = make_decisioning(engine)
    borrower = decisioning.register(person(k))["borrower_id"]
    result = decisioning.apply(borrower, good_application(**changes))
    assert result["outcome"] == "approved"
    return result["line_id"]


def lenders(quota: int = 10**9) -> list:
    box = CreditBox(max_pd=0.2)
    return [
        institution("LIGHT", credit_box=box, daily_quota=quota, monthly_quota=quota),
        institution(
            "HEAVY",
            business_model="capital-heavy",
            guarantee_payout_dpd=90,
            credit_box=box,
            rate="0.06",
            daily_quota=quota,
            monthly_quota=quota,
            priority=1,
        ),
    ]


def test_a_drawdown_is_funded_by_the_best_margin_and_originated(engine: Engine, servicing: Servicing) -> None:
    line = open_line(engine)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(lenders())
    result = matching.drawdown(line, 1_000_000, 12, "dd-1")
    assert result["status"] == "funded"
    with engine.connect() as conn:
        loan = conn.execute(
            select(servicing_tables.loans).where(servicing_tables.loans.c.id == result["loan_id"])
        ).one()
        drawn = conn.execute(
            select(decisioning_tables.credit_lines.c.drawn).where(decisioning_tables.credit_lines.c.id == line)
        ).scalar_one()
    assert (loan.funder, loan.business_model, loan.principal, loan.channel) == (
        result["institution"],
        "capital-heavy" if result["institution"] == "HEAVY" else "capital-light",
        1_000_000,
        "matching",
    )
    assert drawn == 1_000_000
    assert matching.drawdown(line, 1_000_000, 12, "dd-1") == result  # the same key replays
    with pytest.raises(Conflict):
        matching.drawdown(line, 2_000_000, 12, "dd-1")


def test_capital_heavy_records_its_guarantee_and_priority_ranking(engine: Engine, servicing: Servicing) -> None:
    line = open_line(engine)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(lenders())
    result = matching.drawdown(line, 1_000_000, 12, "dd-p", ranking="priority")
    assert result["institution"] == "HEAVY"  # priority 1 goes first
    with engine.connect() as conn:
        loan = conn.execute(
            select(servicing_tables.loans).where(servicing_tables.loans.c.id == result["loan_id"])
        ).one()
    assert loan.guarantee_payout_dpd == 90 and loan.bal_guarantee_liability != 0


def test_a_declined_offer_is_rerouted_and_no_funder_is_an_outcome(engine: Engine, servicing: Servicing) -> None:
    line = open_line(engine)
    gateway = Declines("HEAVY")
    matching = Matching(EngineUnits(engine), VAULT, gateway)
    matching.register_institutions(lenders())
    result = matching.drawdown(line, 1_000_000, 12, "dd-2")
    # HEAVY takes 6% of the borrower's 11%: the wider spread beats the expected loss the platform guarantees
    assert gateway.seen == ["HEAVY", "LIGHT"]
    assert result["status"] == "funded" and result["institution"] == "LIGHT"
    assert result["reasons"]["HEAVY"] == ["declined: outside appetite this week"]
    nobody = Matching(EngineUnits(engine), VAULT, Declines("LIGHT", "HEAVY"))
    none = nobody.drawdown(line, 1_000_000, 12, "dd-3")
    assert none["status"] == "no_funder" and none["loan_id"] is None
    with engine.connect() as conn:
        drawn = conn.execute(
            select(decisioning_tables.credit_lines.c.drawn).where(decisioning_tables.credit_lines.c.id == line)
        ).scalar_one()
        quota = conn.execute(
            select(decisioning_tables.quota_usage.c.used).where(
                decisioning_tables.quota_usage.c.institution_code == "HEAVY",
                decisioning_tables.quota_usage.c.period == "D",
            )
        ).scalar()
    assert drawn == 1_000_000 and not quota  # an automatic institution's quota is taken only when it funds


def test_quota_race_funds_exactly_what_fits(engine: Engine, servicing: Servicing) -> None:
    amount = 3_000
    line = open_line(engine)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(
        [institution("ONLY", credit_box=CreditBox(), daily_quota=100 * amount, monthly_quota=100 * amount)]
    )
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda k: matching.drawdown(line, amount, 3, f"race-{k}"), range(1000)))
    statuses = [r["status"] for r in results]
    assert statuses.count("funded") == 100 and statuses.count("no_funder") == 900
    with engine.connect() as conn:
        used = conn.execute(
            select(decisioning_tables.quota_usage.c.used).where(decisioning_tables.quota_usage.c.period == "D")
        ).scalar_one()
        loans = conn.execute(select(servicing_tables.loans.c.id).where(servicing_tables.loans.c.funder == "ONLY")).all()
        drawn = conn.execute(
            select(decisioning_tables.credit_lines.c.drawn).where(decisioning_tables.credit_lines.c.id == line)
        ).scalar_one()
    assert used == 100 * amount and len(loans) == 100 and drawn == 100 * amount
    assert all(r["reasons"]["ONLY"] == ["quota full"] for r in results if r["status"] == "no_funder")


class FillsQuota:
    """An institution gateway that accepts, while another drawdown takes all but a little of the institution's
    daily quota: the quota fills between the check before the offer and the reservation after the booking."""

    def __init__(self, engine: Engine, code: str, used: int) -> None:
        self.engine, self.code, self.used = engine, code, used

    def decide(self, code: str, report: dict[str, Any]) -> tuple[bool, str]:
        if code == self.code:
            with self.engine.begin() as conn:
                day = conn.execute(select(servicing_tables.business_calendar.c.business_day)).scalar_one()
                conn.execute(
                    decisioning_tables.quota_usage.insert().values(
                        institution_code=code, period="D", period_day=day, used=self.used, quota=2_000_000
                    )
                )
        return True, "approved"


def test_a_quota_filled_meanwhile_undoes_the_booking_and_moves_on(engine: Engine, servicing: Servicing) -> None:
    line = open_line(engine)
    matching = Matching(EngineUnits(engine), VAULT, FillsQuota(engine, "HEAVY", 1_500_000))
    matching.register_institutions(lenders(quota=2_000_000))
    result = matching.drawdown(line, 1_000_000, 12, "dd-full")
    assert result["status"] == "funded" and result["institution"] == "LIGHT"
    assert result["reasons"]["HEAVY"] == ["quota full"] and len(result["offers"]) == 2
    with engine.connect() as conn:
        o = decisioning_tables.offers.c
        offers = dict(conn.execute(select(o.institution_code, o.status + ":" + o.reason)).all())
        loans = conn.execute(select(servicing_tables.loans.c.id, servicing_tables.loans.c.funder)).all()
        heavy = conn.execute(
            select(decisioning_tables.quota_usage.c.used).where(
                decisioning_tables.quota_usage.c.institution_code == "HEAVY",
                decisioning_tables.quota_usage.c.period == "D",
            )
        ).scalar_one()
        lines = conn.execute(select(servicing_tables.journal_lines.c.amount)).scalars().all()
    assert offers == {"HEAVY": "failed:quota full", "LIGHT": "accepted:approved"}
    assert [loan.funder for loan in loans] == ["LIGHT"] and loans[0].id == result["loan_id"]
    assert heavy == 1_500_000  # the other drawdown's, nothing of this one
    assert lines and sum(lines) == 0  # the undone booking left no journal lines behind


def test_investigation_report_in_three_formats(engine: Engine, servicing: Servicing) -> None:
    line = open_line(engine, bureau={"delinquencies_24m": 1, "revolving_utilisation": 0.3, "inquiries_6m": 2})
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(lenders())
    result = matching.drawdown(line, 500_000, 6, "dd-r")
    offer = result["offers"][0]
    report = matching.report(offer, "json")
    reg = person(1)
    assert report["applicant"]["national_id"] == reg["national_id"][:3] + "*" * 11 + reg["national_id"][-4:]
    assert report["credit"]["grade"] and report["model"]["package_hash"].startswith("stub-")
    assert report["bureau"]["inquiries_6m"] == 2
    # the model's reason as its code and, in words, the feature and the applicant's value (1 delinquency)
    said = "Delinquencies in the last 2 years: high (1) lowered the score"
    assert report["credit"]["reasons"] == [{"code": "DELINQUENCIES_24M_HIGH", "text": said}]
    html = matching.report(offer, "html")
    assert reg["national_id"] not in html and reg["mobile"] not in html and "Pre-loan investigation report" in html
    # served in major units with the currency: the drawdown of 500,000 minor units is 5,000.00 CNY
    assert (report["version"], report["currency"], report["drawdown"]["amount"]) == (2, "CNY", "5000.00")
    with engine.connect() as conn:  # stored as built, in minor units
        o = decisioning_tables.offers.c
        stored = json.loads(conn.execute(select(o.report).where(o.id == offer)).scalar_one())
    for section, name in (("recommended", "line_amount"), ("application", "income_monthly")):
        assert report[section][name] == f"{Decimal(stored[section][name]) / 100:.2f}", name
    assert report["affordability"]["max_affordable_payment"] == (
        f"{Decimal(stored['affordability']['max_affordable_payment']) / 100:.2f}"
    )
    assert "5,000.00 CNY" in html and f"{Decimal(report['recommended']['line_amount']):,} CNY" in html
    assert "minor units" not in html
    rates = report["recommended"]
    assert rates["apr_convention"] == "IRR method: per-period IRR x 12"
    assert rates["effective_annual_rate"] > rates["apr"]
    assert "APR, fees included (IRR method: per-period IRR x 12)" in html and "Effective annual rate" in html
    pdf = matching.report(offer, "pdf")
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace(" ", "").replace("\n", "")
    for expected in (
        "Pre-loaninvestigationreport",
        report["applicant"]["national_id"],
        "velocity_mobile",
        "DELINQUENCIES_24M_HIGH",
        "Delinquenciesinthelast2years:high(1)loweredthescore",
        "inquiries_6m",
        report["model"]["package_hash"][:20],
        "5,000.00CNY",
    ):
        assert expected in text, expected
    assert reg["national_id"] not in text
