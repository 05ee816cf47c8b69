"""The command line as scripts and people use it, run as a subprocess: one line on stderr for a mistake (exit 2) or a
failure (exit 1), no database created by a command that expects one, negative numbers read as numbers, rates in one
unit, results on stdout (`--json` for scripts) and money in major units with its currency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openice.close_of_day import run_until
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.engine import make_engine, migrate
from openice.storage.uow import EngineUnits
from tests.cli import one_line_error, openice
from tests.conftest import PG_URL, START


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A book with loan 1 five days past due on 2026-02-20 (468.78 CNY due and overdue) and
    its collection case."""
    db = f"sqlite:///{tmp_path_factory.mktemp('book') / 'book.db'}"
    engine = make_engine(db)
    migrate(engine, START)
    servicing = Servicing(EngineUnits(engine))
    for product in demo_products():
        servicing.create_product(product)
    servicing.originate(
        product_code="CASH-EI",
        principal=500_000,
        tenor=12,
        funder="bank-a",
        business_model="capital-light",
        idempotency_key="o1",
    )
    run_until(engine, START.replace(month=2, day=20))
    engine.dispose()
    return db


def test_a_failure_is_one_line_saying_what_to_do_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    line = one_line_error(openice("products", "--db", f"sqlite:///{empty}"), code=1)
    assert line.startswith("error: --db: ") and "no openice tables" in line and "openice db init --db" in line
    for debug in (
        openice("--debug", "products", "--db", f"sqlite:///{empty}"),
        openice("products", "--db", f"sqlite:///{empty}", OPENICE_DEBUG="1"),
    ):
        assert debug.returncode == 1 and "Traceback" in debug.stderr
    unreachable = PG_URL.rsplit("@", 1)[0] + "@127.0.0.1:1/test"
    line = one_line_error(openice("loan", "1", "--db", unreachable), code=1)
    assert line.startswith("error: --db: cannot open ") and "127.0.0.1:1/test" in line


def test_help_documents_the_exit_codes() -> None:
    out = openice("--help")
    assert out.returncode == 0 and "2 bad input" in out.stdout and "1 a failure" in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["loan", "1"],
        ["products"],
        ["eod"],
        ["repay", "1", "100", "--key", "k"],
        ["write-off", "1", "--key", "k"],
        ["collections", "summary"],
        ["collections", "case", "1"],
        ["metrics"],
        ["decision", "show", "d1"],
        ["api-key", "revoke", "k1"],
    ],
)
def test_a_command_on_a_database_that_does_not_exist_leaves_no_file(args: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    line = one_line_error(openice(*args, "--db", f"sqlite:///{missing}", OPENICE_PII_KEY="00" * 32))
    assert (
        line
        == f"error: --db: sqlite:///{missing} does not exist; create it with `openice db init --db sqlite:///{missing}`"
    )
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path / "openice.db").exists()
    one_line_error(openice(*args, cwd=tmp_path, OPENICE_PII_KEY="00" * 32))  # the default database, not there either
    assert list(tmp_path.iterdir()) == []


def test_csv_mistakes_name_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin1.csv").write_bytes("city,y\nSão Paulo,1\n".encode("latin-1"))
    (tmp_path / "header.csv").write_text("a,y\n")
    expected = {
        "empty.csv": "is empty",
        "latin1.csv": "is not UTF-8 text (it has byte 0xe3); save it as UTF-8 CSV",
        "header.csv": "has no data rows",
        "missing.csv": "no such file",
    }
    for name, why in expected.items():
        args = ("model", "train", "--data", name, "--target", "y", "--bad", "1", "--out", "m")
        line = one_line_error(openice(*args, cwd=tmp_path))
        assert line.startswith("error: --data: ") and name in line and why in line, line
    line = one_line_error(openice("model", "train", "--dataset", "credit_data", "--test-size", "1.5", "--out", "m"))
    assert line == "error: --test-size: 1.5 is not a share of the rows: give at least 0 and below 1"


def test_negative_numbers_are_numbers_and_refused_as_amounts(book: str) -> None:
    line = one_line_error(openice("repay", "1", "-100", "--key", "neg", "--db", book))
    assert line == "error: amount: -100 must be a positive amount in CNY"
    assert one_line_error(openice("recover", "--db", book, "1", "-0.5", "--key", "neg")).endswith(
        "-0.5 must be a positive amount in CNY"
    )
    line = one_line_error(openice("schedule", "--principal", "-10", "--rate", "12%", "--tenor", "3"))
    assert line == "error: --principal: -10 must be a positive amount in CNY"
    assert "No such option" in one_line_error(openice("repay", "1", "100", "--key", "k", "--bogus", "--db", book))


@pytest.mark.parametrize(
    ("option", "typed", "message"),
    [
        ("--rate", "12", "error: --rate: 12 as a fraction is 1200%: did you mean 12%?"),
        ("--facilitation-fee", "5", "error: --facilitation-fee: 5 as a fraction is 500%: did you mean 5%?"),
        ("--service-fee", "abc", "error: --service-fee: 'abc' is not a rate; write 12% or 0.12"),
        ("--tenor", "0", "error: --tenor: 0 is not a tenor: give a whole number of months from 1 to 360"),
        ("--tenor", "-3", "error: --tenor: -3 is not a tenor: give a whole number of months from 1 to 360"),
        ("--tenor", "361", "error: --tenor: 361 is not a tenor: give a whole number of months from 1 to 360"),
        ("--start", "2026-02-30", "error: --start: '2026-02-30' is not a date; write YYYY-MM-DD"),
        ("--tenor", "abc", "error: --tenor: 'abc' is not a whole number"),
        ("--tenor", "2.5", "error: --tenor: '2.5' is not a whole number"),
    ],
)
def test_rates_are_read_in_one_unit_and_errors_name_the_option_as_typed(option: str, typed: str, message: str) -> None:
    args = {"--principal": "1000", "--rate": "12%", "--tenor": "3", option: typed}
    said = one_line_error(openice("schedule", *(x for pair in args.items() for x in pair)))
    assert said.split(" (see ")[0] == message  # a usage mistake adds where to read the command's help


def test_a_rate_as_a_percentage_or_a_fraction_is_the_same_schedule() -> None:
    percent, fraction = (
        json.loads(openice("schedule", "--principal", "1000", "--rate", r, "--tenor", "3", "--json").stdout)
        for r in ("12%", "0.12")
    )
    assert percent == fraction and percent["principal"] == "1000.00"


def test_end_of_day_to_a_date_not_after_the_business_date_is_refused(book: str) -> None:
    for day in ("2026-02-20", "2026-02-01"):
        line = one_line_error(openice("eod", "--to", day, "--db", book))
        assert line.startswith(f"error: --to: {day} is not after the business date 2026-02-20")


def test_results_on_stdout_progress_on_stderr_and_json_for_scripts(book: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(book.removeprefix("sqlite:///")).read_bytes())
    out = openice("eod", "--db", f"sqlite:///{copy}", "--json")
    assert out.returncode == 0, out.stderr
    closed = json.loads(out.stdout)
    assert closed == closed | {"closed_from": "2026-02-20", "closed_to": "2026-02-20", "business_date": "2026-02-21"}
    assert closed["rows"]["advance"] == 1
    products = json.loads(openice("products", "--db", book, "--json").stdout)
    assert "CASH-EI" in {p["code"] for p in products}
    summary = json.loads(openice("collections", "summary", "--db", book, "--json").stdout)
    assert summary[0]["stage"] == "M1" and summary[0]["overdue_amount"] == "468.78"
    queue = json.loads(openice("collections", "queue", "--db", book, "--json").stdout)
    assert queue[0]["loan_id"] == 1 and queue[0]["overdue_amount"] == "468.78"


def test_money_is_read_in_major_units_with_its_currency(book: str, tmp_path: Path) -> None:
    line = one_line_error(openice("repay", "1", "500", "--key", "too-much", "--db", book))
    assert line == (
        "error: amount: 500.00 CNY is more than the 468.78 CNY due today; pay the difference as a prepayment"
    )
    line = one_line_error(openice("prepay", "1", "9999999", "--key", "too-much", "--db", book))
    assert "9,999,999.00 CNY is more than the payoff amount" in line and " CNY on 2026-02-20" in line
    case = openice("collections", "case", "1", "--db", book)
    assert case.returncode == 0 and "468.78 CNY overdue" in case.stdout and "46878" not in case.stdout
    assert json.loads(openice("collections", "case", "1", "--db", book, "--json").stdout)["overdue_amount"] == "468.78"
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(book.removeprefix("sqlite:///")).read_bytes())
    db = f"sqlite:///{copy}"
    paid = openice("repay", "1", "100", "--key", "p1", "--db", db)
    assert paid.returncode == 0 and paid.stdout.startswith("repaid: transaction ")
    assert (
        "penalty 0.38 CNY; fee 10.00 CNY; interest 75.00 CNY; principal 14.62 CNY;" in paid.stdout
        and "\n" not in paid.stdout.strip()
    )
    paid = json.loads(openice("repay", "1", "100.5", "--key", "p2", "--db", db, "--json").stdout)
    assert paid["currency"] == "CNY" and sum(map(float, paid["allocated"].values())) == 100.5
    assert all(isinstance(v, str) for v in paid["allocated"].values())


def test_metrics_show_money_in_major_units_with_the_currency(book: str) -> None:
    table = openice("metrics", "--db", book)
    assert table.returncode == 0, table.stderr
    assert "5,000.00 CNY" in table.stdout and "500000" not in table.stdout
    data = json.loads(openice("metrics", "--db", book, "--json").stdout)
    assert data["currencies"] == ["CNY"]
    assert data["metrics"]["volume"] == {
        "name": "volume",
        "unit": "money",
        "rows": [{"group": {}, "value": "5000.00"}],
        "note": None,
        "parts": "money",
    }
    assert data["money_unit"] == "CNY"
    assert data["metrics"]["outstanding_balance"]["rows"][0]["value"] == "5000.00"
    assert data["metrics"]["loans_originated"]["rows"][0]["value"] == 1  # counts stay numbers
    repeat = data["metrics"]["repeat_borrower_contribution"]["rows"][0]  # a ratio of money: its parts in major units
    assert (repeat["numerator"], repeat["denominator"], repeat["value"]) == ("0.00", "5000.00", 0.0)
    first_due = data["metrics"]["fpd_rate"]["rows"][0]  # a ratio of loans: its parts stay counts
    assert isinstance(first_due["numerator"], int) and isinstance(first_due["denominator"], int)


def test_money_from_a_source_without_its_currency_is_said_to_be_in_minor_units() -> None:
    from openice.analytics.metrics import Metric, MetricSet, Period
    from openice.analytics.report import fmt_value

    quarter = Period.quarter("2026Q1")
    unknown = MetricSet(quarter, quarter.end, (), "duckdb")
    unknown.add(Metric("volume", "money", [{"group": {}, "value": 123456}]))
    unknown.add(
        Metric("day1_delinquency_rate", "ratio", [{"group": {}, "value": 0.5, "numerator": 5, "denominator": 10}])
    )
    data = unknown.to_major_units()
    assert data["money_unit"] == "minor"
    assert data["metrics"]["volume"]["rows"][0]["value"] == 123456
    assert data["metrics"]["day1_delinquency_rate"]["rows"][0]["numerator"] == 5
    assert fmt_value(123456, "money") == "123,456 minor units"
    assert fmt_value(123456, "money", "CNY") == "1,234.56 CNY"
