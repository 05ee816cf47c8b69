"""A deal over the live book on SQLite and PostgreSQL: the pool cut and its strata, the issue (once), the transfer in
the ledger, and two month-ends paid down the waterfall from the ledger, the second after a reversal, every figure by
hand.

The book, all disbursed on 15 January 2026 at 12% a year, equal principal, 30/360 (a month's interest is 1%):

    loan 1  3,000.00 over 3 months  borrower b1       loan 5  1,000.00 over 2 months  b3
    loan 2  6,000.00 over 4 months  b2                loan 6  4,000.00 over 4 months  b4
    loan 3  2,000.00 over 3 months  b1                loan 7  4,000.00 over 3 months  b5
    loan 4  5,000.00 over 3 months  an institution's (capital-light), never the platform's to sell

The deal asks for 10,000.00, at least 3 months still to run and no borrower above 45% (4,500.00): loan 2 (6,000.00)
and loan 3 (b1 would hold 5,000.00) break the borrower limit, loan 5 the tenor, loan 7 would take the pool to
11,000.00. The pool is loans 1 and 6: 7,000.00; A notes 5,000.00 at 12%, so the residual tranche R is 2,000.00."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from openice.analytics.backends import DuckDBBackend, snapshot
from openice.analytics.definitions import INCOME_ACCOUNTS
from openice.analytics.metrics import Period, compute
from openice.cli import app
from openice.close_of_day import run_until
from openice.errors import Conflict, ValidationError
from openice.funding.deal import Deal
from openice.funding.render import render_html
from openice.funding.report import report_document
from openice.funding.repository import Book, Deals
from openice.funding.service import Funding
from openice.servicing import ledger
from openice.servicing.products import LoanProduct, RepaymentMethod
from openice.servicing.service import Servicing
from openice.storage import decisioning_tables, funding_tables, servicing_tables
from openice.storage.days import to_day
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.cli import one_line_error, openice

START = date(2026, 1, 15)  # the fixtures' business date
PRODUCT = LoanProduct(
    code="ABS-EP",
    currency="CNY",
    tenors=(2, 3, 4),
    method=RepaymentMethod.EQUAL_PRINCIPAL,
    nominal_rate=Decimal("0.12"),
)
BOOK = [  # principal (fen), tenor, borrower, funder, business model
    (300_000, 3, "b1", "platform", "on-balance-sheet"),
    (600_000, 4, "b2", "platform", "on-balance-sheet"),
    (200_000, 3, "b1", "platform", "on-balance-sheet"),
    (500_000, 3, "b9", "bank-a", "capital-light"),
    (100_000, 2, "b3", "platform", "on-balance-sheet"),
    (400_000, 4, "b4", "platform", "on-balance-sheet"),
    (400_000, 3, "b5", "platform", "on-balance-sheet"),
]


def deal_file(derecognise: bool) -> dict[str, Any]:
    return {
        "name": "BOOK 2026-1",
        "currency": "CNY",
        "pool_balance": "10000.00",
        "tranches": [{"name": "A", "balance": "5000.00", "coupon": 0.12}, {"name": "R", "balance": "5000.00"}],
        "reserve_account": {"target": "10.00", "initial": "10.00"},
        "eligibility": {"min_remaining_tenor": 3, "max_borrower_share": 0.45},
        "derecognise": derecognise,
    }


@pytest.fixture
def book(servicing: Servicing) -> list[int]:
    servicing.create_product(PRODUCT)
    return [
        servicing.originate(
            product_code="ABS-EP",
            principal=principal,
            tenor=tenor,
            funder=funder,
            business_model=model,
            borrower_id=borrower,
            idempotency_key=f"loan-{n}",
        )["loan_id"]
        for n, (principal, tenor, borrower, funder, model) in enumerate(BOOK)
    ]


def lines(engine: Engine, account: str, loan_id: int | None = None) -> int:
    j = servicing_tables.journal_lines.c
    query = select(func.coalesce(func.sum(j.amount), 0)).where(j.account == account)
    with engine.connect() as conn:
        return int(conn.execute(query if loan_id is None else query.where(j.loan_id == loan_id)).scalar_one())


def paid_as_the_waterfall_says(engine: Engine, period: Any, notes: str) -> None:
    """The month's entry on the ledger against the stored waterfall, account by account, to the fen: the pool's cash
    leaves clearing, and the collection account pays all of it out."""
    j, e = servicing_tables.journal_lines.c, servicing_tables.journal_entries.c
    with engine.connect() as conn:
        posted = dict(
            conn.execute(
                select(j.account, func.sum(j.amount))
                .join(servicing_tables.journal_entries, e.id == j.entry_id)
                .where(e.kind == ledger.ABS_PERIOD, e.business_day == period.last_day)
                .group_by(j.account)
            ).all()
        )
    paid = json.loads(period.waterfall)
    tranches = paid["tranches"].values()

    def fen(*amounts: str) -> int:
        return sum(int(Decimal(a) * 100) for a in amounts)

    assert posted.get(ledger.ABS_FEES_PAID, 0) == fen(paid["fees"])
    assert posted.get(ledger.ABS_NOTE_INTEREST_PAID, 0) == fen(*(t["interest_paid"] for t in tranches))
    assert posted.get(notes, 0) == fen(*(t["principal_paid"] for t in tranches), *(t["loss"] for t in tranches))
    assert -posted.get(ledger.ABS_NOTE_LOSS, 0) == fen(*(t["loss"] for t in tranches))
    assert posted.get(ledger.ABS_RESIDUAL_PAID, 0) == fen(paid["residual_income"])
    assert posted.get(ledger.ABS_COLLECTION_ACCOUNT, 0) == 0
    assert -posted.get(ledger.COLLECTIONS_CLEARING, 0) == period.interest + period.principal + period.recoveries


def month_end_lines(engine: Engine, account: str) -> int:
    """The account's lines in the deal's month-end entries."""
    j, e = servicing_tables.journal_lines.c, servicing_tables.journal_entries.c
    query = (
        select(func.coalesce(func.sum(j.amount), 0))
        .join(servicing_tables.journal_entries, e.id == j.entry_id)
        .where(j.account == account, e.kind == ledger.ABS_PERIOD)
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def income(engine: Engine, loans: tuple[int, ...], first: date, last: date) -> int:
    """The loans' income in the ledger on the days from `first` to `last`."""
    j, e = servicing_tables.journal_lines.c, servicing_tables.journal_entries.c
    query = (
        select(func.coalesce(-func.sum(j.amount), 0))
        .join(servicing_tables.journal_entries, e.id == j.entry_id)
        .where(
            j.loan_id.in_(loans),
            j.account.in_(INCOME_ACCOUNTS),
            e.business_day >= to_day(first),
            e.business_day <= to_day(last),
        )
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def in_deals(engine: Engine, as_of: date) -> int:
    """The funding mix's balance under the `abs-deal` source on `as_of` (DuckDB over a snapshot of the book)."""
    result = compute(DuckDBBackend.from_arrow(snapshot(engine)), Period.quarter("2026Q1"), as_of)
    return sum(r["value"] for r in result["funding_source_balance"].rows if r["group"]["source"] == "abs-deal")


def trial_balance(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.sum(servicing_tables.journal_lines.c.amount), 0))).scalar_one()
        )


def test_the_pool_cut_and_its_strata(engine: Engine, book: list[int]) -> None:
    pool = Funding(EngineUnits(engine)).pool(Deal.from_dict(deal_file(True)))
    assert pool.cut_off == START
    assert [x.loan_id for x in pool.cut.loans] == [book[0], book[5]]
    assert pool.cut.balance == 700_000
    # The capital-light loan is not read at all: only the platform's own active loans are.
    assert pool.cut.left == {"above the pool balance": 1, "borrower share": 2, "remaining tenor": 1}
    strata = {(s.dimension, s.bucket): (s.count, s.balance) for s in pool.strata}
    # 3,000.00 and 4,000.00 are both under 5,000; 12% is in 12%-18%; 3 and 4 months to run; no month on book; loans
    # booked without an application have no grade or province on record.
    assert strata == {
        ("balance", "< 5,000"): (2, 700_000),
        ("rate", "12%-18%"): (2, 700_000),
        ("grade", "unknown"): (2, 700_000),
        ("remaining_tenor", "1-6"): (2, 700_000),
        ("province", "unknown"): (2, 700_000),
        ("seasoning", "0-3"): (2, 700_000),
    }


def test_the_cut_is_on_the_business_date(engine: Engine, book: list[int]) -> None:
    with pytest.raises(ValidationError) as refused:
        Funding(EngineUnits(engine)).pool(Deal.from_dict(deal_file(True)), date(2026, 1, 31))
    assert refused.value.field == "as_of"


@pytest.mark.parametrize("derecognise", [True, False])
def test_issue_then_two_month_ends(engine: Engine, servicing: Servicing, book: list[int], derecognise: bool) -> None:
    funding = Funding(EngineUnits(engine))
    data = deal_file(derecognise)
    issued = funding.issue(Deal.from_dict(data), data, START)
    assert issued["loans"] == 2 and issued["pool_balance"] == 700_000
    assert issued["tranches"] == {"A": 500_000, "R": 200_000} and issued["funder"] == "ABS:BOOK 2026-1"
    with pytest.raises(Conflict) as again:
        funding.issue(Deal.from_dict(data), data, START)
    assert again.value.field == "name"

    one, six = book[0], book[5]
    assert servicing.loan(one).funder == "ABS:BOOK 2026-1" == servicing.loan(six).funder
    assert servicing.loan(book[1]).funder == "platform"
    notes = ledger.ABS_TRUST_FUNDING if derecognise else ledger.ABS_SECURED_BORROWING
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    # The transfer: 3,000.00 on loan 1's books and 4,000.00 on loan 6's; the reserve's 10.00 from the platform.
    assert lines(engine, notes, one) == -300_000 and lines(engine, notes, six) == -400_000
    assert lines(engine, ledger.ABS_RESERVE_ACCOUNT) == 1_000
    assert lines(engine, cash) == (700_000 if derecognise else 700_000 - 1_000) + (
        -sum(p for p, *_ in BOOK) if derecognise else 0
    )

    # January: loan 1 prepays 1,000.00 of principal the day the deal is issued.
    prepaid = servicing.prepay(one, 100_000, idempotency_key="prepay")
    run_until(engine, date(2026, 2, 1))
    # Period 1: available 1,000.00 + the 10.00 reserve = 1,010.00; A's interest 1% of 5,000.00 = 50.00, 960.00 left
    # for the 1,000.00 of principal: A gets 960.00 (4,040.00 left), 40.00 is owed; nothing refills the reserve.
    with engine.connect() as conn:
        first = conn.execute(select(funding_tables.abs_periods)).one()
    assert (first.period, first.interest, first.principal, first.defaults, first.recoveries) == (1, 0, 100_000, 0, 0)
    assert lines(engine, ledger.ABS_NOTE_INTEREST_PAID) == 5_000
    assert lines(engine, notes) == -700_000 + 96_000
    assert lines(engine, ledger.ABS_RESERVE_ACCOUNT) == 0
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0
    assert lines(engine, ledger.COLLECTIONS_CLEARING, one) == 0  # the deal took the month's cash

    # February: the prepayment is reversed on the 2nd; on the 15th loan 6 pays its first installment, 1,000.00 of
    # principal and 40.00 of interest (1% of 4,000.00); loan 1 pays nothing.
    run_until(engine, date(2026, 2, 2))
    servicing.reverse(prepaid["transaction_id"], idempotency_key="reverse")
    assert servicing.loan(one).funder == "ABS:BOOK 2026-1"  # the replay keeps the loan in the deal
    run_until(engine, date(2026, 2, 15))
    servicing.repay(six, 104_000, idempotency_key="repay")
    run_until(engine, date(2026, 3, 1))
    # Period 2 from the ledger: loan 1 -1,000.00 of principal (the reversal), loan 6 +1,000.00 and 40.00 of interest.
    # Available 40.00; A is due 1% of 4,040.00 = 40.40 and gets 40.00 (0.40 short); the 40.00 of principal owed and
    # this month's none stay owed.
    with engine.connect() as conn:
        second = conn.execute(select(funding_tables.abs_periods).where(funding_tables.abs_periods.c.period == 2)).one()
    assert (second.interest, second.principal, second.defaults, second.recoveries) == (4_000, 0, 0, 0)
    assert lines(engine, ledger.ABS_NOTE_INTEREST_PAID) == 5_000 + 4_000
    assert lines(engine, notes) == -604_000  # the tranches' balances: A 4,040.00 + R 2,000.00
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0
    assert lines(engine, ledger.COLLECTIONS_CLEARING, one) == 0 == lines(engine, ledger.COLLECTIONS_CLEARING, six)
    row, periods = funding.deal_periods("BOOK 2026-1")
    assert periods[1].waterfall.count('"interest_shortfall": "0.40"') == 1
    for period in periods:
        paid_as_the_waterfall_says(engine, period, notes)
    assert trial_balance(engine) == 0


@pytest.fixture
def sqlite_book(tmp_path: Path) -> tuple[str, Path]:
    """The book above in a SQLite file, and the deal file (kept on balance sheet) beside it."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    engine = make_engine(url)
    migrate(engine, START)
    servicing = Servicing(EngineUnits(engine))
    servicing.create_product(PRODUCT)
    for n, (principal, tenor, borrower, funder, model) in enumerate(BOOK):
        servicing.originate(
            product_code="ABS-EP",
            principal=principal,
            tenor=tenor,
            funder=funder,
            business_model=model,
            borrower_id=borrower,
            idempotency_key=f"loan-{n}",
        )
    engine.dispose()
    path = tmp_path / "deal.yaml"
    path.write_text(yaml.safe_dump(deal_file(False)), encoding="utf-8")
    return url, path


def test_the_pool_and_issue_commands(sqlite_book: tuple[str, Path]) -> None:
    url, path = sqlite_book
    out = CliRunner().invoke(app, ["abs", "pool", str(path), "--db", url, "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["selected_balance"], report["loans"], report["cut_off"]) == ("7000.00", 2, "2026-01-15")
    assert report["strata"]["rate"] == [{"bucket": "12%-18%", "count": 2, "balance": "7000.00", "share": "1.0000"}]
    assert report["left_out"] == {"above the pool balance": 1, "borrower share": 2, "remaining tenor": 1}
    csv_out = CliRunner().invoke(app, ["abs", "pool", str(path), "--db", url, "--csv"])
    assert csv_out.output.splitlines()[:2] == [
        "dimension,bucket,count,balance,share",
        'balance,"< 5,000",2,7000.00,1.0000',
    ]
    table = CliRunner().invoke(app, ["abs", "pool", str(path), "--db", url])
    assert "2 loans, 7,000.00 CNY of the pool_balance 10,000.00" in table.output

    issued = CliRunner().invoke(app, ["abs", "issue", str(path), "--db", url, "--as-of", "2026-01-15", "--json"])
    assert issued.exit_code == 0, issued.output
    assert json.loads(issued.output)["tranches"] == {"A": "5000.00", "R": "2000.00"}
    again = one_line_error(openice("abs", "issue", str(path), "--db", url, "--as-of", "2026-01-15"))
    assert again == "error: name: deal 'BOOK 2026-1' was issued with a cut-off of 2026-01-15; a deal is issued once"
    elsewhen = one_line_error(openice("abs", "pool", str(path), "--db", url, "--as-of", "2026-02-01"))
    assert elsewhen.startswith("error: --as-of: 2026-02-01 is not the business date 2026-01-15")
    engine = make_engine(url)
    run_until(engine, date(2026, 2, 1))
    engine.dispose()
    # January collected nothing: the 10.00 reserve is all there is, and pays 10.00 of A's 50.00.
    months = CliRunner().invoke(app, ["abs", "periods", "BOOK 2026-1", "--db", url, "--json"])
    assert months.exit_code == 0, months.output
    (first,) = json.loads(months.output)["periods"]
    assert (first["first_day"], first["last_day"], first["available"]) == ("2026-01-15", "2026-01-31", "10.00")
    assert first["collections"] == dict.fromkeys(("interest", "principal", "defaults", "recoveries"), "0.00")
    assert (first["tranches"]["A"]["interest_paid"], first["tranches"]["A"]["interest_shortfall"]) == ("10.00", "40.00")
    unknown = one_line_error(openice("abs", "periods", "NO SUCH DEAL", "--db", url))
    assert unknown == "error: name: no deal 'NO SUCH DEAL' has been issued"


@pytest.mark.parametrize("derecognise", [True, False])
def test_a_write_off_and_a_recovery_feed_the_waterfall(
    engine: Engine, servicing: Servicing, book: list[int], derecognise: bool
) -> None:
    funding = Funding(EngineUnits(engine))
    data = deal_file(derecognise)
    funding.issue(Deal.from_dict(data), data, START)
    six = book[5]
    run_until(engine, date(2026, 2, 2))
    servicing.write_off(six, idempotency_key="write-off", reason="fraud")
    run_until(engine, date(2026, 2, 10))
    servicing.recover(six, 5_000, idempotency_key="recover")
    run_until(engine, date(2026, 3, 1))
    # Period 1 collected nothing: the 10.00 reserve pays 10.00 of A's 50.00, 40.00 short. Period 2: loan 6's 4,000.00
    # of principal is written off (defaults) and 50.00 recovered; A is due 50.00 + 40.00, gets the 50.00; the pool
    # falls to 3,000.00 with all 4,000.00 of its principal reduction still owed to the notes.
    row, periods = funding.deal_periods("BOOK 2026-1")
    assert [(p.interest, p.principal, p.defaults, p.recoveries) for p in periods] == [
        (0, 0, 0, 0),
        (0, 0, 400_000, 5_000),
    ]
    second = json.loads(periods[1].waterfall)
    assert second["tranches"]["A"] == {
        "interest_due": "90.00",
        "interest_paid": "50.00",
        "interest_shortfall": "40.00",
        "principal_paid": "0.00",
        "balance": "5000.00",
        "loss": "0.00",
    }
    # Sold, the loss and the recovery are the trust's; kept on balance sheet, month-end makes them the platform's.
    trusts = (ledger.INSTITUTION_CREDIT_LOSS, ledger.INSTITUTION_RECOVERY_INCOME)
    platforms = (ledger.CREDIT_LOSS, ledger.RECOVERY_INCOME)
    (loss, recovery), (other_loss, other_recovery) = (trusts, platforms) if derecognise else (platforms, trusts)
    assert lines(engine, loss, six) > 400_000 and lines(engine, other_loss, six) == 0
    assert lines(engine, recovery, six) == -5_000 and lines(engine, other_recovery, six) == 0
    assert lines(engine, ledger.ABS_NOTE_INTEREST_PAID) == 1_000 + 5_000
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0 == trial_balance(engine)


def test_a_pool_read_before_the_book_changed_moves_only_what_is_unchanged(
    engine: Engine, servicing: Servicing, book: list[int]
) -> None:
    with engine.connect() as conn:
        stale = [x for x in Book(conn).loans() if x.loan_id in (book[0], book[5])]
    servicing.prepay(book[0], 100_000, idempotency_key="prepay")  # loan 1 is now at 2,000.00, not 3,000.00
    with engine.connect() as conn:  # rolled back when it closes
        assert Deals(conn).lock_pool(stale, "ABS:STALE") == 1  # issue refuses the whole deal on this


def test_grade_and_province_come_from_the_application(engine: Engine, book: list[int]) -> None:
    # Borrower b4 lives in Zhejiang and drew loan 6 on a grade C credit line; b1 (loan 1) has no application on record.
    with engine.begin() as conn:
        conn.execute(
            insert(decisioning_tables.borrowers).values(
                id="b4",
                registered_day=0,
                registered_at=0,
                birth_year=1990,
                province="Zhejiang",
                city="Hangzhou",
                **{c: "-" for c in ("name_enc", "national_id_enc", "mobile_enc", "date_of_birth_enc")},
                **{c: "-" for c in ("name_hash", "national_id_hash", "mobile_hash", "device_hash")},
            )
        )
        conn.execute(
            insert(decisioning_tables.credit_lines).values(
                id="line-6",
                borrower_id="b4",
                decision_id="d-6",
                product_code="ABS-EP",
                approved_day=0,
                expiry_day=0,
                status="active",
                amount=400_000,
                drawn=400_000,
                rate_ppm=120_000,
                apr_ppm=120_000,
                max_tenor=4,
                grade="C",
                pd=0.05,
                score=600.0,
            )
        )
        conn.execute(
            insert(decisioning_tables.drawdowns).values(
                line_id="line-6",
                borrower_id="b4",
                amount=400_000,
                tenor=4,
                requested_day=0,
                status="funded",
                institution_code="platform",
                loan_id=book[5],
            )
        )
    graded = deal_file(True) | {"eligibility": {"min_remaining_tenor": 3, "max_borrower_share": 0.45}}
    pool = Funding(EngineUnits(engine)).pool(Deal.from_dict(graded))
    strata = {(s.dimension, s.bucket): (s.count, s.balance) for s in pool.strata}
    assert strata[("grade", "C")] == (1, 400_000) and strata[("grade", "unknown")] == (1, 300_000)
    assert strata[("province", "Zhejiang")] == (1, 400_000) and strata[("province", "unknown")] == (1, 300_000)
    # Only grade C, and Zhejiang at most 30% of 10,000.00: loan 6 (4,000.00) is over it.
    limited = graded | {"eligibility": {"grades": ["C"], "province_limits": {"Zhejiang": 0.3}}}
    assert Funding(EngineUnits(engine)).pool(Deal.from_dict(limited)).cut.left["province limit"] == 1
    only_c = graded | {"eligibility": {"grades": ["C"]}}
    assert [x.loan_id for x in Funding(EngineUnits(engine)).pool(Deal.from_dict(only_c)).cut.loans] == [book[5]]


def revolving_file(derecognise: bool) -> dict[str, Any]:
    return deal_file(derecognise) | {"revolving": {"until_period": 2}}


@pytest.mark.parametrize("derecognise", [True, False])
def test_a_revolving_deal_buys_loans_from_the_book_with_its_principal(
    engine: Engine, servicing: Servicing, book: list[int], derecognise: bool
) -> None:
    """The deal above, revolving through period 2. Issued over loans 1 and 6 (7,000.00: A 5,000.00, R 2,000.00), then
    the platform books loan 8: 900.00 over 3 months to borrower b6, which the pool buys at January's end."""
    funding = Funding(EngineUnits(engine))
    data = revolving_file(derecognise)
    funding.issue(Deal.from_dict(data), data, START)
    one, six = book[0], book[5]
    eight = servicing.originate(
        product_code="ABS-EP",
        principal=90_000,
        tenor=3,
        funder="platform",
        business_model="on-balance-sheet",
        borrower_id="b6",
        idempotency_key="loan-8",
    )["loan_id"]
    servicing.prepay(one, 100_000, idempotency_key="prepay")
    run_until(engine, date(2026, 2, 1))
    # Period 1: available 1,000.00 + the 10.00 reserve = 1,010.00; A's interest 50.00; 960.00 of the 1,000.00 of
    # principal is set aside to buy loans (40.00 owed). The book's loans, oldest first, within 960.00: loan 2
    # (6,000.00), 3 (2,000.00) and 7 (4,000.00) are above it, loan 5 has 2 months to run; loan 8 (900.00) is bought.
    # The 60.00 not spent pays A (4,940.00); the pool is 7,000 - 1,000 + 900 = 6,900.00 = A + R - the 40.00 owed.
    row, (first,) = funding.deal_periods("BOOK 2026-1")
    paid = json.loads(first.waterfall)
    assert (paid["revolving"], paid["reinvested"], paid["pool_balance"]) == (True, "900.00", "6900.00")
    assert (paid["tranches"]["A"]["principal_paid"], paid["tranches"]["A"]["balance"]) == ("60.00", "4940.00")
    assert servicing.loan(eight).funder == "ABS:BOOK 2026-1"
    assert servicing.loan(book[1]).funder == "platform"
    with engine.connect() as conn:
        pool = funding_tables.abs_pool_loans.c
        held = dict(conn.execute(select(pool.loan_id, pool.balance).where(pool.deal_id == row.id)).all())
    assert held == {one: 300_000, six: 400_000, eight: 90_000}
    notes = ledger.ABS_TRUST_FUNDING if derecognise else ledger.ABS_SECURED_BORROWING
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    # The collection account paid the platform 900.00 for loan 8, on loan 8's books.
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT, eight) == -90_000
    assert month_end_lines(engine, cash) == 90_000
    assert lines(engine, notes) == -700_000 + 6_000
    # Month-end again (end of day resumed) buys nothing twice.
    assert funding.close_month(date(2026, 1, 31)) == 0
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT, eight) == -90_000

    # February: loan 6 pays 1,000.00 + 40.00 and loan 8 300.00 + 9.00 (1% of 900.00) on the 15th; loan 1 nothing.
    run_until(engine, date(2026, 2, 15))
    servicing.repay(six, 104_000, idempotency_key="repay-6")
    servicing.repay(eight, 30_900, idempotency_key="repay-8")
    run_until(engine, date(2026, 3, 1))
    # Period 2, still revolving: available 49.00 + 1,300.00 = 1,349.00; A's interest 1% of 4,940.00 = 49.40;
    # 1,299.60 of the 1,340.00 due is set aside, but no loan of the book is current with 3 months to run and within
    # it: all 1,299.60 pays A (3,640.40), 40.40 owed; the pool 6,900 - 1,300 = 5,600.00.
    row, periods = funding.deal_periods("BOOK 2026-1")
    second = json.loads(periods[1].waterfall)
    assert (second["revolving"], second["reinvested"], second["pool_balance"]) == (True, "0.00", "5600.00")
    assert (second["tranches"]["A"]["principal_paid"], second["tranches"]["A"]["balance"]) == ("1299.60", "3640.40")
    assert (periods[1].interest, periods[1].principal) == (4_900, 130_000)  # loan 8's collections are the deal's
    assert lines(engine, notes) == -(364_040 + 200_000)
    for period in periods:
        paid_as_the_waterfall_says(engine, period, notes)
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0 == trial_balance(engine)
    # The disclosures: loan 8 is the deal's from 02-01, the day after the month-end that bought it. On 01-31 the deal
    # holds loan 1 (2,000.00) and loan 6 (4,000.00); on 02-28 loans 1 (2,000.00), 6 (3,000.00) and 8 (600.00), the
    # waterfall's 5,600.00.
    assert (in_deals(engine, date(2026, 1, 31)), in_deals(engine, date(2026, 2, 28))) == (600_000, 560_000)
    report = funding.investor_report("BOOK 2026-1", "2026-01")
    january = report_document(report)
    assert (january["waterfall"]["revolving"], january["waterfall"]["reinvested"]) == (True, "900.00")
    assert "revolving: 900.00 of principal bought new loans" in render_html(report)
    assert january["pool"]["closing_balance"] == "6900.00"


@pytest.mark.parametrize("derecognise", [True, False])
def test_a_clean_up_call_returns_the_loans_to_the_platform_and_closes_the_deal(
    engine: Engine, servicing: Servicing, book: list[int], derecognise: bool
) -> None:
    """The deal above with A at 6% (25.00 a month) and a call below 90% of its 7,000.00 pool (6,300.00), so that the
    small book reaches it in its second month."""
    funding = Funding(EngineUnits(engine))
    data = deal_file(derecognise) | {"clean_up_call": {"below": 0.9}}
    data["tranches"][0]["coupon"] = 0.06
    funding.issue(Deal.from_dict(data), data, START)
    one, six = book[0], book[5]
    run_until(engine, date(2026, 2, 15))
    # Period 1 collected nothing: the 10.00 reserve pays 10.00 of A's 25.00, 15.00 short; the pool stays 7,000.00.
    servicing.repay(one, 103_000, idempotency_key="repay-1")  # 1,000.00 + 1% of 3,000.00
    servicing.repay(six, 104_000, idempotency_key="repay-6")  # 1,000.00 + 1% of 4,000.00
    run_until(engine, date(2026, 3, 1))
    # Period 2: the pool falls to 7,000 - 2,000 = 5,000.00, below 6,300.00: the platform pays 5,000.00 for loans 1
    # (2,000.00) and 6 (3,000.00). Available 70.00 + 2,000.00 + 5,000.00 = 7,070.00; A's interest 25 + 15 = 40.00;
    # principal 2,000 + 5,000 = 7,000.00 pays A 5,000.00 and R 2,000.00 off; no reserve is kept; 30.00 residual income.
    row, periods = funding.deal_periods("BOOK 2026-1")
    paid = json.loads(periods[1].waterfall)
    assert (paid["clean_up_call"], paid["available"], paid["pool_balance"]) == (True, "7070.00", "0.00")
    assert {n: t["balance"] for n, t in paid["tranches"].items()} == {"A": "0.00", "R": "0.00"}
    assert paid["residual_income"] == "30.00"
    assert servicing.loan(one).funder == "platform" == servicing.loan(six).funder
    notes = ledger.ABS_TRUST_FUNDING if derecognise else ledger.ABS_SECURED_BORROWING
    cash = ledger.FUNDING_CASH if derecognise else ledger.PLATFORM_CASH
    # The platform's cash paid 5,000.00 into the collection account for the two loans at the call.
    assert month_end_lines(engine, cash) == -500_000
    assert lines(engine, notes) == 0  # the notes are paid off
    for period in periods:
        paid_as_the_waterfall_says(engine, period, notes)
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0 == trial_balance(engine)
    # The deal has ended: March's month-end leaves it, though loan 6 pays on the 15th.
    run_until(engine, date(2026, 3, 15))
    servicing.repay(six, 103_000, idempotency_key="repay-6b")
    run_until(engine, date(2026, 4, 1))
    assert len(funding.deal_periods("BOOK 2026-1")[1]) == 2
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0 == trial_balance(engine)
    assert lines(engine, notes) == 0 and lines(engine, ledger.ABS_RESIDUAL_PAID) == 3_000  # nothing more paid
    # The disclosures: loans 1 (2,000.00 after its 02-15 payment) and 6 (3,000.00) were the deal's on 02-20, and are the
    # platform's again from 03-01; sold off the balance sheet, their income was the trust's only while the deal held
    # them.
    assert (in_deals(engine, date(2026, 2, 20)), in_deals(engine, date(2026, 3, 31))) == (500_000, 0)
    quarter = compute(DuckDBBackend.from_arrow(snapshot(engine)), Period.quarter("2026Q1"), date(2026, 3, 31))
    trust = sum(r["value"] for r in quarter["revenue"].rows if r["group"]["line"] == "abs_trust_income")
    held = income(engine, (one, six), date(2026, 1, 15), date(2026, 2, 28))
    assert held > 0 and trust == (held if derecognise else 0)
    assert income(engine, (one, six), date(2026, 3, 1), date(2026, 3, 31)) > 0  # March's income: the platform's
    report = funding.investor_report("BOOK 2026-1", "2026-02")
    february = report_document(report)
    assert february["waterfall"]["clean_up_call"] is True
    assert "<th>Clean-up call</th>" in render_html(report)
    assert february["pool"]["closing_balance"] == "0.00"


def test_a_clean_up_call_waits_while_a_reversal_keeps_the_loans_above_the_pool(
    engine: Engine, servicing: Servicing, book: list[int]
) -> None:
    """The call deal above (below 6,300.00). Loan 1 prepays 500.00 in January (the pool 6,500.00); in February the
    prepayment is reversed and loan 6 (4,000.00) written off."""
    funding = Funding(EngineUnits(engine))
    data = deal_file(True) | {"clean_up_call": {"below": 0.9}}
    funding.issue(Deal.from_dict(data), data, START)
    one, six = book[0], book[5]
    prepaid = servicing.prepay(one, 50_000, idempotency_key="prepay")
    run_until(engine, date(2026, 2, 2))
    servicing.reverse(prepaid["transaction_id"], idempotency_key="reverse")
    servicing.write_off(six, idempotency_key="write-off", reason="fraud")
    run_until(engine, date(2026, 3, 1))
    # February: the reversal's -500.00 of principal is carried to later months, 4,000.00 defaulted: the pool is
    # 6,500 - 4,000 = 2,500.00, below 6,300.00, but loan 1, the one loan left, stands at 3,000.00. No call yet.
    row, periods = funding.deal_periods("BOOK 2026-1")
    february = json.loads(periods[1].waterfall)
    assert (february["clean_up_call"], february["pool_balance"]) == (False, "2500.00")
    assert servicing.loan(one).funder == "ABS:BOOK 2026-1" and trial_balance(engine) == 0
    # March: loan 1 pays x of principal; x - 500.00 feeds the waterfall, so the pool ends at 2,500.00 - (x - 500.00)
    # = 3,000.00 - x, loan 1's balance: called at it.
    run_until(engine, date(2026, 3, 15))
    servicing.repay(one, 103_000, idempotency_key="repay-1")
    run_until(engine, date(2026, 4, 1))
    row, periods = funding.deal_periods("BOOK 2026-1")
    march = json.loads(periods[2].waterfall)
    balance = servicing.loan(one).balance(ledger.LOAN_PRINCIPAL)
    assert march["clean_up_call"] is True and 0 < balance < 300_000
    assert month_end_lines(engine, ledger.FUNDING_CASH) == -balance  # the price the platform paid
    assert servicing.loan(one).funder == "platform"
    # The -500.00 February's collection account took is made good by March's: the deal's cash is all paid out.
    assert lines(engine, ledger.ABS_COLLECTION_ACCOUNT) == 0 == trial_balance(engine)
    # The 4,000.00 defaulted is the notes' loss: what the call's cash could not pay of the tranches is written down
    # in March, off the notes' account to `abs_note_loss`, and no note stays outstanding.
    loss = sum(Decimal(t["loss"]) for t in march["tranches"].values())
    assert loss > 0 and all(t["balance"] == "0.00" for t in march["tranches"].values())
    assert lines(engine, ledger.ABS_TRUST_FUNDING) == 0 and -lines(engine, ledger.ABS_NOTE_LOSS) == int(loss * 100)
    made = funding.investor_report("BOOK 2026-1", "2026-03")
    assert sum(Decimal(t["loss"]) for t in report_document(made)["tranches"]) == loss
    assert '<th class="num">Loss</th>' in render_html(made) and '<th class="num">损失</th>' in render_html(made, "zh")
    # Loan 6, written off while the deal held it, is the platform's again: a recovery after the call is its income,
    # the closed deal collects nothing more.
    assert servicing.loan(six).funder == "platform"
    run_until(engine, date(2026, 4, 10))
    servicing.recover(six, 20_000, idempotency_key="recovery-6")
    run_until(engine, date(2026, 5, 1))
    assert lines(engine, ledger.RECOVERY_INCOME, six) == -20_000
    assert lines(engine, ledger.INSTITUTION_RECOVERY_INCOME, six) == 0
    assert len(funding.deal_periods("BOOK 2026-1")[1]) == 3 and trial_balance(engine) == 0
