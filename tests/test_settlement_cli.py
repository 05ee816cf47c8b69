"""`openice settlement show|paid|outstanding` on an embedded database: money in major units with its currency,
--json as decimal strings, --csv, and one line naming the option on a refusal (exit 2)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from openice.cli import app
from tests.settlement_helpers import small_book


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_show_pay_and_what_is_still_owed_from_the_command_line(engine: Engine) -> None:
    """The small book (`settlement_helpers.small_book`): BANK-A funds two 10,000.00 loans on 15 January, one of them
    capital-light (a 30 bp referral fee: 30.00 owed by BANK-A); February's statement nets 5,075.00 to BANK-A."""
    small_book(engine)
    db = str(engine.url)
    engine.dispose()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        out = runner.invoke(app, ["settlement", *args, "--db", db])
        return out.exit_code, out.output

    code, text = run("show", "BANK-A", "--month", "2026-01")
    assert code == 0, text
    assert "CNY-2026-01" in text and "30.00 CNY" in text and "-30.00 CNY" in text and "open" in text
    code, text = run("show", "BANK-A", "--day", "2026-01-15", "--json")
    (statement,) = json.loads(text)
    assert (statement["id"], statement["lines"]["referral_fees"], statement["net"]) == (
        "CNY-2026-01-15",
        "30.00",
        "-30.00",
    )
    code, text = run("show", "BANK-A", "--month", "2026-01", "--csv")
    (row,) = csv.DictReader(io.StringIO(text))
    assert (row["disbursements_funded"], row["net"]) == ("20000.00", "-30.00")
    code, text = run("show", "BANK-A")
    assert code == 2 and "--day" in text
    code, text = run("show", "BANK-A", "--month", "2026-13")
    assert code == 2 and "--month" in text and "not a date" in text
    code, text = run("paid", "BANK-A", "2026-01", "--key", "k0")
    assert code == 2 and "CURRENCY-YYYY-MM" in text
    code, text = run("paid", "BANK-A", "CNY-2026-01", "--key", "k1")
    assert code == 0 and "net to the institution -30.00 CNY" in text, text
    code, text = run("paid", "BANK-A", "CNY-2026-01", "--key", "k2")
    assert code == 2 and "already settled" in text
    code, text = run("outstanding", "--json")
    assert [(r["institution"], r["net"]) for r in json.loads(text)] == [("BANK-A", "5075.00")]  # February's
