"""The README's first loan, run as its reader runs it: the `openice` command in a shell, from an empty database to a
serviced loan; then the commands it uses, and `openice serve`, as a script sees them (stdout, stderr, exit code)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose `openice` is this checkout's, as `source .venv/bin/activate` gives the README's reader."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "openice").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m openice "$@"\n')
    (bin_dir / "openice").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENICE_")}
    return env | {"PATH": f"{bin_dir}:{env['PATH']}", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def readme_taste() -> list[str]:
    """The command lines of the README's taste, without the line that activates the virtualenv."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"A taste:.*?```bash\n(.*?)```", text, re.S)
    assert block is not None, "README.md lost its taste of the command line"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("source ")]


def openice(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openice", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def booked(shell: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """The README's commands run in a shell in an empty folder; the environment they leave (database, PII key)."""
    cwd = tmp_path_factory.mktemp("readme")
    script = "set -e\n" + "\n".join(readme_taste()) + '\necho "OPENICE_PII_KEY=$OPENICE_PII_KEY"\n'
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=shell, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "loan 1: 30,000.00 CNY over 12 months, funded by FIRST-BANK" in done.stdout
    key = re.search(r"^OPENICE_PII_KEY=(.+)$", done.stdout, re.M)
    assert key is not None
    return shell | {"OPENICE_DB": f"sqlite:///{cwd / 'book.db'}", "OPENICE_PII_KEY": key.group(1)}, cwd


def test_the_readme_books_and_services_a_loan(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    loan = as_json(openice(env, cwd, "loan", "1", "--json"))
    assert (loan["currency"], loan["principal"], loan["product_code"], loan["funder"]) == (
        "CNY",
        "30000.00",
        "PERSONAL-EI",
        "FIRST-BANK",
    )
    [payment] = loan["transactions"]
    assert (payment["kind"], payment["amount"], payment["value_date"], payment["reversed"]) == (
        "repayment",
        "1000.00",
        "2026-02-16",
        False,
    )
    text = openice(env, cwd, "loan", "1")
    assert text.returncode == 0 and "transactions" in text.stdout and "30,000.00 CNY" in text.stdout
    # February's installment (2026-02-15) is part paid on the 16th: one day late, in words a person reads
    assert "status active, 1 day past due (M1)" in text.stdout, text.stdout
    assert re.search(rf"│\s+{payment['id']} │ repayment\s+│ 2026-02-16", text.stdout), text.stdout


def test_the_same_key_answers_the_same_booking(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    files = ("examples/borrower.json", "examples/application.json")
    again = as_json(openice(env, cwd, "originate", *files, "--model", "model", "--key", "first-loan", "--json"))
    assert again["loan_id"] == 1 and again["drawdown"]["amount"] == "30000.00" and again["line"]["amount"]


def test_payoff_is_quoted_in_major_units(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    quote = as_json(openice(env, cwd, "payoff", "1", "--json"))
    parts = ("due", "principal_not_due", "accrued_interest", "prepayment_fee")
    assert quote["currency"] == "CNY" and quote["date"] == "2026-02-16"
    assert Decimal(quote["total"]) == sum(Decimal(quote[p]) for p in parts) > Decimal("29000")
    later = as_json(openice(env, cwd, "payoff", "1", "--date", "2026-03-20", "--json"))
    assert Decimal(later["due"]) > Decimal(quote["due"])  # the March installment falls due by then
    text = openice(env, cwd, "payoff", "1")
    assert text.returncode == 0 and f"{Decimal(quote['total']):,} CNY" in text.stdout
    early = openice(env, cwd, "payoff", "1", "--date", "2026-01-01")
    assert early.returncode == 2 and early.stdout == ""
    assert early.stderr.startswith("error: --date: ") and early.stderr.count("\n") == 1, early.stderr


def test_a_declined_application_books_nothing_and_exits_1(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    application = json.loads((cwd / "examples" / "application.json").read_text())
    (cwd / "poor.json").write_text(json.dumps(application | {"income_monthly": "2000.00"}))
    done = openice(
        env, cwd, "originate", "examples/borrower.json", "poor.json", "--model", "model", "--key", "poor", "--json"
    )
    assert done.returncode == 1 and done.stderr == "no loan booked: the application is declined\n", done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "declined" and result["loan_id"] is None and result["existing_borrower"]


def test_a_bad_input_file_is_one_line_naming_it(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    (cwd / "broken.json").write_text('{"product_code": ')
    for files, field in (
        (("missing.json", "examples/application.json"), "borrower"),
        (("examples/borrower.json", "broken.json"), "application"),
    ):
        done = openice(env, cwd, "originate", *files, "--model", "model", "--key", "bad-file")
        assert done.returncode == 2 and done.stdout == "", done.stdout
        assert done.stderr.startswith(f"error: {field}: ") and done.stderr.count("\n") == 1, done.stderr
    (cwd / "list.yaml").write_text("- 1\n")
    done = openice(env, cwd, "product", "create", "list.yaml")
    assert done.returncode == 2 and done.stderr.startswith("error: file: ") and "no product" in done.stderr


def stored_rows(cwd: Path) -> dict[str, int]:
    """Rows of every table an application could write to, in the README's book."""
    with sqlite3.connect(cwd / "book.db") as conn:
        tables = ("borrowers", "applications", "decisions", "credit_lines", "loans", "idempotency_keys")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"requested_amount": 3000000},
            'requested_amount: must be a decimal string in major units, e.g. "30000.00" for 30,000.00 CNY, not 3000000',
        ),
        ({"requested_amount": "30000.001"}, "requested_amount: 30000.001 has more decimals than CNY allows (2)"),
        ({"currency": "USD"}, "currency: product PERSONAL-EI lends in CNY, not USD"),
        ({"income_monthly": "-1"}, "income_monthly: -1 is not from 0.00 CNY to 10,000,000,000.00 CNY"),
    ],
)
def test_an_application_in_minor_units_or_another_currency_is_one_line_and_books_nothing(
    booked: tuple[dict[str, str], Path], changes: dict[str, Any], says: str
) -> None:
    """The application file is typed in major units with the product's currency, for `originate` and `decision
    apply` alike; anything else is refused naming the field, before anything is stored."""
    env, cwd = booked
    application = json.loads((cwd / "examples" / "application.json").read_text())
    assert application["requested_amount"] == "30000.00" and application["currency"] == "CNY"
    (cwd / "typo.json").write_text(json.dumps(application | changes))
    before = stored_rows(cwd)
    for command in (
        ("originate", "examples/borrower.json", "typo.json", "--key", "typo"),
        ("decision", "apply", "Bnobody", "typo.json"),
    ):
        done = openice(env, cwd, *command, "--model", "model")
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {says}\n")
    assert stored_rows(cwd) == before


def book_rows(cwd: Path) -> dict[str, Any]:
    with sqlite3.connect(cwd / "book.db") as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("products", "institutions")}  # noqa: S608


@pytest.mark.parametrize(
    ("file", "changes", "says"),
    [
        (
            "product.json",
            {"code": "P2", "min_principal": 100000},
            'min_principal: must be a decimal string in major units of CNY, e.g. "50000.00", not 100000',
        ),
        (
            "product.json",
            {"code": "P2", "max_principal": "50000.001"},
            "max_principal: 50000.001 has more decimals than CNY allows (2)",
        ),
        (
            "product.json",
            {"code": "P2", "max_principal": "10000000000.01"},
            "max_principal: 10000000000.01 is not from 0.01 CNY to 10,000,000,000.00 CNY",
        ),
        (
            "institution.json",
            {"daily_quota": 500000000},
            'daily_quota: must be a decimal string in major units, e.g. "30000.00" for 30,000.00 CNY, not 500000000',
        ),
        (
            "institution.json",
            {"kind": "pension-fund"},
            "kind: Input should be 'bank', 'consumer-finance', 'trust' or 'microcredit'",
        ),
    ],
)
def test_a_product_or_institution_in_minor_units_is_one_line_and_stores_nothing(
    booked: tuple[dict[str, str], Path], file: str, changes: dict[str, Any], says: str
) -> None:
    """Product and institution files are typed in major units with the currency, as the examples are."""
    env, cwd = booked
    data = json.loads((cwd / "examples" / file).read_text())
    if file == "institution.json":
        data = {"institutions": [data["institutions"][0] | changes]}
    else:
        data |= changes
    (cwd / f"minor-{file}").write_text(json.dumps(data))
    command = ("product", "create") if file == "product.json" else ("match", "institutions")
    before = book_rows(cwd)
    done = openice(env, cwd, *command, f"minor-{file}")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {says}\n")
    assert book_rows(cwd) == before


def test_products_read_in_major_units(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    [product] = [p for p in as_json(openice(env, cwd, "products", "--json")) if p["code"] == "PERSONAL-EI"]
    # the example's 1000.00 and 200000.00 CNY, stored as 100,000 and 20,000,000 fen, read back as typed
    assert (product["min_principal"], product["max_principal"], product["referral_fee_flat"]) == (
        "1000.00",
        "200000.00",
        "0.00",
    )
    with sqlite3.connect(cwd / "book.db") as conn:
        [stored] = conn.execute("SELECT definition FROM products WHERE code = 'PERSONAL-EI'").fetchone()
    assert (json.loads(stored)["min_principal"], json.loads(stored)["max_principal"]) == (100_000, 20_000_000)


def test_examples_are_not_overwritten_unless_asked(shell: dict[str, str], tmp_path: Path) -> None:
    first = openice(shell, tmp_path, "examples", "--out", "x")
    assert first.returncode == 0 and first.stdout.split() == [
        f"x/{n}"
        for n in (
            "product.json",
            "institution.json",
            "borrower.json",
            "application.json",
            "deal.yaml",
            "deal-collections.csv",
            "deal-pool.csv",
        )
    ]
    again = openice(shell, tmp_path, "examples", "--out", "x")
    assert again.returncode == 2 and again.stderr.startswith("error: --out: ") and "--force" in again.stderr
    assert openice(shell, tmp_path, "examples", "--out", "x", "--force").returncode == 0


def test_serve_help_names_its_toml_table(shell: dict[str, str], tmp_path: Path) -> None:
    done = openice(shell, tmp_path, "serve", "--help")
    assert done.returncode == 0 and "[api] table" in done.stdout
    assert "--access-log" in done.stdout and "--model" in done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def test_serve_says_where_it_is_once_ready_and_logs_requests(shell: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        ["openice", "serve", "--port", str(port), "--access-log", "--db", f"sqlite:///{tmp_path / 's.db'}"],
        cwd=tmp_path,
        env=shell,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        deadline, ready = time.monotonic() + 120, ""
        while time.monotonic() < deadline and not ready:
            line = server.stderr.readline()
            ready = line if line.startswith("openice serving") else ready
            assert line or server.poll() is None, "serve ended before it was ready"
        base = f"http://127.0.0.1:{port}"
        assert ready.strip().startswith(f"openice serving {base} (SaaS; API docs {base}/docs"), ready
        with urllib.request.build_opener(NoRedirect).open(f"{base}/") as home:  # the landing page lists them all
            landing = home.read().decode()
        assert home.status == 200 and 'href="/docs"' in landing and 'href="/console/"' in landing
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert out == ""
    assert re.search(r'"GET / HTTP/1.1" 200', err), err


def test_a_drawdown_is_typed_in_major_units_of_the_lines_currency(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    line = as_json(
        openice(
            env,
            cwd,
            "originate",
            "examples/borrower.json",
            "examples/application.json",
            "--model",
            "model",
            "--key",
            "first-loan",
            "--json",
        )
    )["line"]
    for amount, message in (
        ("100.50", f"line {line['id']} is not active, has expired or has less than 100.50 CNY left"),  # all drawn
        ("0.005", "0.005 has more decimals than CNY allows (2)"),
        ("-5", "-5 must be a positive amount in CNY"),
    ):
        done = openice(env, cwd, "match", "drawdown", line["id"], amount, "12", "--key", "more")
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: amount: {message}\n")
    missing = openice(env, cwd, "match", "drawdown", "L-missing", "100", "12", "--key", "more")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "L-missing" in missing.stderr
    assert "major units" in openice(env, cwd, "match", "drawdown", "--help").stdout


def test_a_tenor_of_no_months_is_refused_naming_the_option(booked: tuple[dict[str, str], Path]) -> None:
    env, cwd = booked
    files = ("examples/borrower.json", "examples/application.json")
    done = openice(env, cwd, "originate", *files, "--model", "model", "--key", "no-months", "--tenor", "0")
    assert (done.returncode, done.stdout) == (2, "") and done.stderr == (
        "error: --tenor: 0 is not a tenor: give a whole number of months from 1 to 360\n"
    )


def test_a_decision_and_a_drawdown_read_in_major_units_with_the_currency(booked: tuple[dict[str, str], Path]) -> None:
    from tests.decisioning.helpers import person

    env, cwd = booked
    second = person(7)
    (cwd / "second.json").write_text(json.dumps({**second, "date_of_birth": second["date_of_birth"].isoformat()}))
    borrower = as_json(openice(env, cwd, "decision", "register", "second.json"))["borrower_id"]
    apply = ("decision", "apply", borrower, "examples/application.json", "--model", "model")
    decided = as_json(openice(env, cwd, *apply, "--json"))
    assert decided["currency"] == "CNY" and decided["outcome"] == "approved", decided
    line = decided["line"]
    assert Decimal(line["amount"]) > 0 and "." in line["amount"] and Decimal(line["apr"]) < 1
    said = openice(env, cwd, *apply)
    assert said.returncode == 0, said.stderr
    assert re.search(r"^credit line \S+: [\d,]+\.\d\d CNY at [\d.]+% a year \(APR [\d.]+%\)", said.stdout, re.M)
    drawn = as_json(openice(env, cwd, "match", "drawdown", line["id"], "1000.00", "6", "--key", "drawn-1", "--json"))
    assert (drawn["status"], drawn["amount"], drawn["currency"], drawn["tenor"]) == ("funded", "1000.00", "CNY", 6)
    again = openice(env, cwd, "match", "drawdown", line["id"], "1000.00", "6", "--key", "drawn-1")
    assert again.returncode == 0 and again.stdout.startswith(
        f"loan {drawn['loan_id']}: 1,000.00 CNY over 6 months, funded by {drawn['institution']}"
    ), again.stdout
    assert "100000" not in again.stdout + json.dumps(drawn)
    shown = openice(env, cwd, "decision", "show", decided["decision_id"])
    assert shown.returncode == 0, shown.stderr
    # the example application: 15,000.00 CNY a month (1,500,000 fen stored), 1,500.00 of debt service, 30,000.00 asked
    assert "income monthly 15,000.00 CNY, " in shown.stdout and "requested amount 30,000.00 CNY" in shown.stdout
    assert "existing debt monthly 1,500.00 CNY" in shown.stdout and "requested tenor 12" in shown.stdout
    amount = Decimal(line["amount"])
    assert f"line granted: {amount:,} CNY at " in shown.stdout and "min line 1,000.00 CNY" in shown.stdout
    assert "1500000" not in shown.stdout and "150000" not in shown.stdout
    assert "None" not in shown.stdout  # a field the application left out is not printed
    stored = as_json(openice(env, cwd, "decision", "show", decided["decision_id"], "--json"))
    assert (stored["money_unit"], stored["currency"]) == ("minor", "CNY")  # the record as stored and hashed
    assert stored["inputs"]["application"]["income_monthly"] == 1_500_000
    assert stored["result"]["line"]["amount"] == int(amount * 100)


def test_a_matching_run_reads_in_major_units_with_the_currency(shell: dict[str, str], tmp_path: Path) -> None:
    """Three drawdowns of the batch file (amounts and incomes in yuan, as its currency column says) go to the example
    institution; the run's objective, the greedy waterfall's and the gain are money in yuan, and the gain is their
    difference. The same file without its currency column is refused, unless `--currency` says it."""
    env = shell | {"OPENICE_DB": f"sqlite:///{tmp_path / 'book.db'}"}
    env["OPENICE_PII_KEY"] = openice(env, tmp_path, "pii", "keygen").stdout.strip()
    for command in (("db", "init", "--date", "2026-01-15"), ("examples", "--out", "ex")):
        assert openice(env, tmp_path, *command).returncode == 0
    assert openice(env, tmp_path, "product", "create", "ex/product.json").returncode == 0
    assert openice(env, tmp_path, "match", "institutions", "ex/institution.json").returncode == 0
    rows = [
        f"{amount},12,700,0.03,30,Beijing,15000.00,0.3,PERSONAL-EI,0.12" for amount in ("10000.00", "20000", "5000.5")
    ]
    header = "amount,tenor,score,pd,age,province,income,dti,product,rate"
    bare = tmp_path / "bare.csv"
    bare.write_text(header + "\n" + "\n".join(rows) + "\n")
    batch = tmp_path / "batch.csv"
    batch.write_text(header + ",currency\n" + "\n".join(f"{row},CNY" for row in rows) + "\n")
    refused = openice(env, tmp_path, "match", "optimise", str(bare))
    assert refused.returncode == 2 and refused.stdout == "", refused.stderr
    assert refused.stderr == (
        f"error: --currency: {bare} has no currency column: add one (CNY, the book's) with amount and income in major "
        "units of it, or give --currency CNY\n"
    )
    (tmp_path / "fen.csv").write_text(batch.read_text().replace("5000.5,", "5000.505,"))
    fen = openice(env, tmp_path, "match", "optimise", "fen.csv")
    assert fen.returncode == 2 and fen.stderr.startswith("error: amount (fen.csv line 4): 5000.505 has more decimals")
    done = openice(env, tmp_path, "match", "optimise", str(batch), "--penalty", "0", "--json")
    run = as_json(done)  # the solver's banner went to stderr: stdout is the result alone
    assert "HiGHS" not in done.stdout and run["currency"] == "CNY" and run["funded"] == run["greedy_funded"] == 3
    figures = {name: Decimal(run[name]) for name in ("objective", "greedy_objective", "gain", "margin", "shortfall")}
    assert all(re.fullmatch(r"-?[0-9]+\.[0-9]{2}", run[name]) for name in figures)
    assert figures["objective"] > 0 and figures["gain"] == figures["objective"] - figures["greedy_objective"]
    assert figures["objective"] == figures["margin"] and figures["shortfall"] == 0  # no minimum volume: no penalty
    said = openice(env, tmp_path, "match", "optimise", str(batch), "--penalty", "0")
    assert said.returncode == 0, said.stderr
    assert f"objective {figures['objective']:,} CNY against the greedy waterfall's" in said.stdout
    assert "minor" not in said.stdout and "funded 3 drawdowns (greedy 3)" in said.stdout
    typed = as_json(
        openice(env, tmp_path, "match", "optimise", str(bare), "--penalty", "0", "--currency", "CNY", "--json")
    )
    assert (typed["objective"], typed["funded"]) == (run["objective"], 3)  # the same batch, its currency given apart


def test_a_policy_file_in_minor_units_is_one_line_naming_the_field(shell: dict[str, str], tmp_path: Path) -> None:
    env = shell | {"OPENICE_DB": f"sqlite:///{tmp_path / 'book.db'}"}
    env["OPENICE_PII_KEY"] = openice(env, tmp_path, "pii", "keygen").stdout.strip()
    assert openice(env, tmp_path, "db", "init", "--date", "2026-01-15").returncode == 0
    assert openice(env, tmp_path, "examples", "--out", "ex").returncode == 0
    for text, said in (
        (
            "currency: CNY\nmin_line: 100000\n",
            'error: min_line: must be a decimal string in major units, e.g. "30000.00"',
        ),
        (
            "currency: CNY\nmax_line: '250000.001'\n",
            "error: max_line: 250000.001 has more decimals than CNY allows (2)",
        ),
        ("min_residual_income: '1500.00'\n", "error: currency: is required with min_residual_income"),
    ):
        (tmp_path / "policy.yaml").write_text(text)
        done = openice(env, tmp_path, "decision", "apply", "B1", "ex/application.json", "--policy", "policy.yaml")
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.startswith(said) and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "major units of its currency" in openice(env, tmp_path, "originate", "--help").stdout
