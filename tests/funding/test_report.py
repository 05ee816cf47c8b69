"""Investor reports over the book of tests/funding/test_book.py, on SQLite and PostgreSQL, every figure by hand: the
pool is loans 1 (3,000.00) and 6 (4,000.00), 7,000.00; A notes 5,000.00 at 12% a year, the residual tranche R
2,000.00; a 10.00 reserve account, its target 10.00."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine
from typer.testing import CliRunner

from openice.cli import app
from openice.close_of_day import run_until
from openice.errors import NotFound, ValidationError
from openice.funding.deal import Deal
from openice.funding.render import render_html, render_pdf
from openice.funding.report import report_document
from openice.funding.service import Funding
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits
from openice.web.i18n import catalog
from tests.cli import one_line_error, openice
from tests.funding.test_book import START, book, deal_file, sqlite_book  # noqa: F401  (fixtures)

TRIGGERED = {"triggers": [{"metric": "cumulative_default_rate", "above": "0.05", "then": "sequential"}]}


def issued(engine: Engine, extra: dict[str, Any] | None = None) -> Funding:
    funding = Funding(EngineUnits(engine))
    data = deal_file(True) | (extra or {})
    funding.issue(Deal.from_dict(data), data, START)
    return funding


def test_a_prepayment_then_a_shortfall(engine: Engine, servicing: Servicing, book: list[int]) -> None:  # noqa: F811
    funding = issued(engine)
    one, six = book[0], book[5]
    prepaid = servicing.prepay(one, 100_000, idempotency_key="prepay")
    run_until(engine, date(2026, 2, 2))
    servicing.reverse(prepaid["transaction_id"], idempotency_key="reverse")
    run_until(engine, date(2026, 2, 15))
    servicing.repay(six, 104_000, idempotency_key="repay")
    run_until(engine, date(2026, 3, 1))

    january = report_document(funding.investor_report("BOOK 2026-1", "2026-01"))
    # January: 1,000.00 of principal prepaid on a pool of 7,000.00: SMM = 1/7, CPR = 1 - (6/7)^12
    # = 1 - 2,176,782,336 / 13,841,287,201 = 0.842733 (half-up to six places); no default, CDR 0.
    assert (january["period"], january["first_day"], january["last_day"]) == (1, "2026-01-15", "2026-01-31")
    assert january["pool"] | {"buckets": None} == {
        "opening_balance": "7000.00",
        "closing_balance": "6000.00",
        "interest": "0.00",
        "principal": "1000.00",
        "scheduled_principal": "0.00",
        "prepaid_principal": "1000.00",
        "defaults": "0.00",
        "recoveries": "0.00",
        "cumulative_defaults": "0.00",
        "cdr": "0.000000",
        "cpr": "0.842733",
        "buckets": None,
    }
    # At 31 January loan 1 (2,000.00 after the prepayment) and loan 6 (4,000.00) are current.
    buckets = {b["bucket"]: (b["loans"], b["balance"]) for b in january["pool"]["buckets"]}
    assert buckets["C"] == (2, "6000.00") and sum(n for n, _ in buckets.values()) == 2
    # Available 1,000.00 + the 10.00 reserve: A's interest 1% of 5,000.00 = 50.00, then 960.00 of A's principal
    # (4,040.00 left, factor 4,040 / 5,000 = 0.808); 40.00 of principal stays owed; the reserve is spent.
    a, r = january["tranches"]
    assert a == {
        "name": "A",
        "coupon": "0.12",
        "original_balance": "5000.00",
        "opening_balance": "5000.00",
        "interest_due": "50.00",
        "interest_paid": "50.00",
        "interest_shortfall": "0.00",
        "principal_paid": "960.00",
        "balance": "4040.00",
        "loss": "0.00",
        "factor": "0.808000",
    }
    assert (r["name"], r["coupon"], r["balance"], r["factor"]) == ("R", None, "2000.00", "1.000000")
    assert january["waterfall"] == {
        "available": "1010.00",
        "fees": "0.00",
        "residual_income": "0.00",
        "principal_shortfall": "40.00",
        "sequential": False,
        "revolving": False,
        "reinvested": "0.00",
        "clean_up_call": False,
    }
    assert january["reserve_account"] == {"opening_balance": "10.00", "closing_balance": "0.00", "target": "10.00"}
    assert january["triggers"] == []

    february = report_document(funding.investor_report("BOOK 2026-1", "2026-02"))
    # February: the prepayment's reversal (-1,000.00) and loan 6's installment (+1,000.00) net to no principal; 40.00
    # of interest. A is due 1% of 4,040.00 = 40.40, gets 40.00, 0.40 short; the pool stays at 6,000.00, CPR 0.
    assert (february["pool"]["opening_balance"], february["pool"]["closing_balance"]) == ("6000.00", "6000.00")
    assert (february["pool"]["interest"], february["pool"]["cpr"]) == ("40.00", "0.000000")
    # The prepayment reversed, no principal was prepaid in February: its 0.00 of principal is all scheduled.
    assert (february["pool"]["scheduled_principal"], february["pool"]["prepaid_principal"]) == ("0.00", "0.00")
    a = february["tranches"][0]
    assert (a["opening_balance"], a["interest_due"], a["interest_paid"], a["interest_shortfall"]) == (
        "4040.00",
        "40.40",
        "40.00",
        "0.40",
    )
    # At 28 February loan 1 (3,000.00 again) missed its 15 February installment: M1; loan 6 (3,000.00) is current.
    buckets = {b["bucket"]: (b["loans"], b["balance"]) for b in february["pool"]["buckets"]}
    assert (buckets["C"], buckets["M1"]) == ((1, "3000.00"), (1, "3000.00"))
    assert february["reserve_account"]["opening_balance"] == "0.00"

    with pytest.raises(NotFound) as unclosed:
        funding.investor_report("BOOK 2026-1", "2026-03")
    assert unclosed.value.field == "month"
    with pytest.raises(ValidationError) as garbled:
        funding.investor_report("BOOK 2026-1", "2026-13")
    assert garbled.value.field == "month"


def test_cpr_counts_only_the_principal_prepaid(engine: Engine, servicing: Servicing, book: list[int]) -> None:  # noqa: F811
    funding = issued(engine)
    one, six = book[0], book[5]
    run_until(engine, date(2026, 2, 15))
    servicing.repay(six, 104_000, idempotency_key="repay")  # 1,000.00 due + 1% of 4,000.00
    servicing.prepay(one, 153_000, idempotency_key="prepay")  # 1,000.00 due + 1% of 3,000.00, then 500.00 ahead
    run_until(engine, date(2026, 3, 1))
    pool = report_document(funding.investor_report("BOOK 2026-1", "2026-02"))["pool"]
    # February, over the 7,000.00 January left: 2,500.00 of principal, 2,000.00 of it the two installments due and
    # 500.00 paid ahead of loan 1's schedule. SMM = 500 / 7,000 = 1/14, CPR = 1 - (13/14)^12
    # = 1 - 23,298,085,122,481 / 56,693,912,375,296 = 0.589055 (half-up to six places),
    # where all 2,500.00 would give 1 - (9/14)^12 = 0.995018.
    assert (pool["opening_balance"], pool["principal"]) == ("7000.00", "2500.00")
    assert (pool["scheduled_principal"], pool["prepaid_principal"], pool["cpr"]) == ("2000.00", "500.00", "0.589055")
    page = render_html(funding.investor_report("BOOK 2026-1", "2026-02"), "zh")
    assert "计划内本金" in page and "提前偿还本金" in page and "58.9055%" in page
    reader = PdfReader(io.BytesIO(render_pdf(funding.investor_report("BOOK 2026-1", "2026-02"))))
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "Scheduled principal" in text and "Prepaid principal" in text and "500.00" in text


def test_a_default_breaches_the_trigger(engine: Engine, servicing: Servicing, book: list[int]) -> None:  # noqa: F811
    funding = issued(engine, TRIGGERED)
    six = book[5]
    run_until(engine, date(2026, 2, 2))
    servicing.write_off(six, idempotency_key="write-off", reason="fraud")
    run_until(engine, date(2026, 2, 10))
    servicing.recover(six, 5_000, idempotency_key="recover")
    run_until(engine, date(2026, 3, 1))
    january = funding.investor_report("BOOK 2026-1", "2026-01")
    assert [(t.value, t.breached) for t in january.triggers] == [(Decimal(0), False)]
    february = funding.investor_report("BOOK 2026-1", "2026-02")
    # Loan 6's 4,000.00 written off, 50.00 recovered, on a pool of 7,000.00: MDR = 4/7, CDR = 1 - (3/7)^12
    # = 1 - 531,441 / 13,841,287,201 = 0.999962; the trigger's value 4,000 / 7,000 = 0.571429 is above its 5%.
    assert (february.pool_opening, february.pool_closing) == (700_000, 300_000)
    assert (february.defaults, february.recoveries, february.cumulative_defaults) == (400_000, 5_000, 400_000)
    assert february.cdr == Decimal("0.999962") and february.cpr == 0
    (trigger,) = february.triggers
    assert (trigger.metric, trigger.level, trigger.value, trigger.breached) == (
        "cumulative_default_rate",
        Decimal("0.05"),
        Decimal("0.571429"),
        True,
    )
    assert february.sequential
    # The written-off loan is in WO at its balance of 0.00 (its principal is off the books); loan 1 missed its
    # 15 February installment of 1,000.00 + 30.00 and is in M1 at 3,000.00.
    buckets = {b.bucket: (b.loans, b.balance) for b in february.buckets}
    assert buckets["M1"] == (1, 300_000) and buckets["WO"][0] == 1
    html = render_html(february)
    assert "BOOK 2026-1" in html and "57.1429%" in html and "99.9962%" in html and "3,000.00" in html


def january_closed(book_at: tuple[str, Path]) -> str:
    """The book's deal issued on 2026-01-15 and January's month-end closed; the book's database URL."""
    url, path = book_at
    assert CliRunner().invoke(app, ["abs", "issue", str(path), "--db", url, "--as-of", "2026-01-15"]).exit_code == 0
    engine = make_engine(url)
    run_until(engine, date(2026, 2, 1))
    engine.dispose()
    return url


def test_the_report_command(sqlite_book: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    url = january_closed(sqlite_book)
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    out = CliRunner().invoke(
        app,
        ["abs", "report", "BOOK 2026-1", "--month", "2026-01", "--db", url, "--json", "--html", str(html)]
        + ["--pdf", str(pdf)],
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    # January collected nothing: the 10.00 reserve pays 10.00 of A's 50.00, 40.00 short; the pool stays 7,000.00.
    assert (report["pool"]["closing_balance"], report["tranches"][0]["interest_shortfall"]) == ("7000.00", "40.00")
    assert "A" in html.read_text(encoding="utf-8") and "40.00" in html.read_text(encoding="utf-8")
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF") and len(printed) > 5_000
    table = CliRunner().invoke(app, ["abs", "report", "BOOK 2026-1", "--month", "2026-01", "--db", url])
    assert "Factor" in table.output and "7,000.00" in table.output
    unclosed = one_line_error(openice("abs", "report", "BOOK 2026-1", "--month", "2026-02", "--db", url))
    assert unclosed == "error: --month: deal 'BOOK 2026-1' has no month-end closed in 2026-02"


def test_a_deal_name_holds_no_comma() -> None:
    # An investor key's tenant lists its deals separated by commas, so a comma in a name could never be bound.
    with pytest.raises(ValidationError) as refused:
        Deal.from_dict(deal_file(True) | {"name": "BOOK, 2026-1"})
    assert refused.value.field == "name"


def _fonts(reader: PdfReader) -> set[str]:
    """The base names of the fonts a PDF's pages use."""
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def test_the_report_in_chinese(sqlite_book: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    url = january_closed(sqlite_book)
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    args = ["abs", "report", "BOOK 2026-1", "--month", "2026-01", "--db", url, "--lang", "zh"]
    assert CliRunner().invoke(app, [*args, "--html", str(html), "--pdf", str(pdf)]).exit_code == 0
    page = html.read_text(encoding="utf-8")
    english, chinese = catalog("en"), catalog("zh-CN")
    shown = [k for k in english if k.startswith("investor.") and not k.startswith("investor.table")]
    # every label the page shows is the Chinese one, none the English one (a few words: the page's own sentences)
    for key in ("investor.pool", "investor.tranches", "investor.reserve", "investor.factor", "investor.no_trigger"):
        assert chinese[key] in page and f">{english[key]}<" not in page, key
    assert '<html lang="zh-CN">' in page and "第 1 期，2026-01-15 至 2026-01-31。金额单位：CNY。" in page
    assert not [english[k] for k in shown if "{" not in english[k] and f">{english[k]}<" in page]
    # January collected nothing: the 10.00 reserve pays 10.00 of A's 50.00 interest, 40.00 short.
    reader = PdfReader(pdf)
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "资产池" in text and "储备账户" in text and "40.00" in text
    assert all(
        f"第 {n} 页，共 {len(reader.pages)} 页" in " ".join(p.extract_text().split())
        for n, p in enumerate(reader.pages, start=1)
    )
    assert any("WenQuanYi" in name for name in _fonts(reader))  # the Chinese glyphs are drawn, not boxes
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and "本金因子" in table.output and "7,000.00" in table.output
    refused = one_line_error(openice(*args[:-1], "fr"))
    assert refused == "error: --lang: 'fr' is not a language of the report; use en or zh"
