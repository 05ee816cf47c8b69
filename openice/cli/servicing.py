"""Commands of the servicing stage: schedules, products, loans, money calls and end of day (which closes
collections' day too, `openice.close_of_day`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from openice.cli.common import DbOption, console, fail, parse_date
from openice.close_of_day import DayReport, run_until
from openice.errors import OpeniceError, ValidationError
from openice.idempotency import cli_key
from openice.money import fmt, format_money, from_minor, parse_rate, to_minor
from openice.servicing import ledger
from openice.servicing.daycount import DayCount
from openice.servicing.loan import LoanAccount
from openice.servicing.products import LoanProduct, PrepaymentMode, RepaymentMethod, demo_products
from openice.servicing.schedule import build_schedule
from openice.servicing.service import Servicing
from openice.storage.days import from_day
from openice.storage.engine import database_url, make_engine, migrate
from openice.storage.uow import EngineUnits


def schedule(
    principal: Annotated[str, typer.Option(help="Amount lent, e.g. 10000 or 10000.00")],
    rate: Annotated[str, typer.Option(help="Nominal annual rate, e.g. 12% or 0.12")],
    tenor: Annotated[int, typer.Option(help="Months")],
    method: Annotated[RepaymentMethod, typer.Option()] = RepaymentMethod.EQUAL_INSTALLMENT,
    day_count: Annotated[DayCount, typer.Option("--day-count")] = DayCount.THIRTY_360,
    start: Annotated[str, typer.Option(help="Disbursement date, YYYY-MM-DD")] = "2026-01-15",
    currency: Annotated[str, typer.Option()] = "CNY",
    facilitation_fee: Annotated[str, typer.Option(help="Upfront fee, % of principal")] = "0",
    service_fee: Annotated[str, typer.Option(help="Monthly service fee, % of principal")] = "0",
    apr_cap: Annotated[str | None, typer.Option(help="Refuse a schedule whose APR (IRR method) passes this")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Print the repayment schedule of a loan, its APR on the IRR method and its effective annual rate."""
    try:
        product = LoanProduct(
            code="ADHOC",
            currency=currency,
            tenors=(tenor,),
            method=method,
            nominal_rate=parse_rate(rate, "rate"),
            day_count=day_count,
            facilitation_fee_rate=parse_rate(facilitation_fee, "facilitation_fee"),
            monthly_service_fee_rate=parse_rate(service_fee, "service_fee"),
            apr_cap=parse_rate(apr_cap, "apr_cap") if apr_cap else None,
        )
        start_date = parse_date(start, "start")
        plan = build_schedule(product, to_minor(principal, currency, "principal"), tenor, start_date)
    except OpeniceError as error:
        fail(error)
    rows = [
        {
            "seq": i.seq,
            "due_date": i.due_date.isoformat(),
            "principal": str(fmt(i.principal, currency)),
            "interest": fmt(i.interest, currency),
            "fee": fmt(i.fee, currency),
            "total": fmt(i.total, currency),
        }
        for i in plan.installments
    ]
    if as_json:
        out = {
            "currency": currency,
            "principal": fmt(plan.principal, currency).replace(",", ""),
            "upfront_fee": fmt(plan.upfront_fee, currency).replace(",", ""),
            "apr": str(round(plan.apr, 6)),
            "effective_annual_rate": str(round(plan.effective_annual_rate, 6)),
            "apr_convention": plan.apr_convention,
            "installments": [
                {k: (v.replace(",", "") if isinstance(v, str) else v) for k, v in r.items()} for r in rows
            ],
        }
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(
        title=f"{method.value} schedule, {currency} {fmt(plan.principal, currency)} at {rate} "
        f"over {tenor} months ({day_count.value})"
    )
    for col in ("#", "due date", "principal", "interest", "fee", "total"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("seq", "due_date", "principal", "interest", "fee", "total")))
    table.add_row(
        "",
        "total",
        fmt(plan.principal, currency),
        fmt(plan.total_interest, currency),
        fmt(sum(i.fee for i in plan.installments), currency),
        fmt(sum(i.total for i in plan.installments), currency),
        style="bold",
    )
    console.print(table)
    console.print(
        f"APR ({plan.apr_convention}; the borrower's cash flows, fees included): "
        f"[bold]{plan.apr:.2%}[/bold]; effective annual rate {plan.effective_annual_rate:.2%}"
    )


def _service(db: str | None) -> Servicing:
    return Servicing(EngineUnits(make_engine(db)))


def init(
    db: DbOption = None,
    business_date: Annotated[str | None, typer.Option("--date", help="First business date")] = None,
    with_products: Annotated[bool, typer.Option(help="Create the demo products")] = True,
) -> None:
    """Create or upgrade the database schema and set the first business date."""
    try:
        start = parse_date(business_date, "date") if business_date else None
        engine = make_engine(db)
        migrate(engine, start)
        service = Servicing(EngineUnits(engine))
        if with_products:
            existing = {p.code for p in service.products()}
            for product in demo_products():
                if product.code not in existing:
                    service.create_product(product)
    except OpeniceError as error:
        fail(error)
    console.print(f"database ready at [bold]{database_url(db)}[/bold]; business date {service.business_date()}")


def products(db: DbOption = None) -> None:
    """List loan products."""
    table = Table(title="loan products")
    for col in ("code", "currency", "method", "rate", "day count", "tenors", "APR cap"):
        table.add_column(col)
    for p in _service(db).products():
        table.add_row(
            p.code,
            p.currency,
            p.method.value,
            f"{p.nominal_rate:.2%}",
            p.day_count.value,
            ",".join(map(str, p.tenors)),
            f"{p.apr_cap:.0%}" if p.apr_cap else "-",
        )
    console.print(table)


def show_loan(
    loan_id: Annotated[int, typer.Argument()],
    db: DbOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (money as decimal strings) instead of tables")
    ] = False,
) -> None:
    """A loan's schedule, balances, delinquency and transactions (their ids are what `openice reverse` takes)."""
    try:
        loan, transactions = _service(db).loan_with_transactions(loan_id)
    except OpeniceError as error:
        fail(error)
    if as_json:
        typer.echo(json.dumps(_loan_json(loan, transactions), indent=2))
        return
    cur = loan.terms.currency
    typer.echo(
        f"loan {loan.loan_id}: {loan.terms.product_code}, {format_money(loan.terms.principal, cur)} over "
        f"{loan.terms.tenor} months from {loan.disbursed_on}, {loan.terms.business_model.value} funded by "
        f"{loan.funder}; status {loan.status.value}, {loan.days_past_due} days past due ({loan.bucket}); "
        f"due now {format_money(loan.total_due(), cur)}"
    )
    table = Table(title=f"schedule ({cur})")
    for col in ("#", "due", "principal", "interest", "fee", "paid", "state"):
        table.add_column(col, justify="right")
    for i in loan.installments:
        paid = i.principal_paid + i.interest_paid + i.fee_paid
        state = "paid" if i.unpaid == 0 else ("due" if i.booked else "")
        table.add_row(
            str(i.seq),
            str(i.due_date),
            fmt(i.principal, cur),
            fmt(i.interest, cur),
            fmt(i.fee, cur),
            fmt(paid, cur),
            state,
        )
    console.print(table)
    balances = Table(title=f"ledger balances ({cur})")
    balances.add_column("account")
    balances.add_column("balance", justify="right")
    for account in ledger.SNAPSHOT_ACCOUNTS:
        balances.add_row(account, fmt(loan.balance(account), cur))
    console.print(balances)
    if not transactions:
        console.print("no transactions yet")
        return
    history = Table(title=f"transactions ({cur}; `openice reverse ID --key K` reverses a payment)")
    for col in ("id", "kind", "value date", "booked on", "amount", "reversed", "reason"):
        history.add_column(col, justify="right" if col in ("id", "amount") else "left")
    for t in transactions:
        history.add_row(
            str(t.id),
            t.kind + (f" ({t.mode})" if t.mode else ""),
            str(from_day(t.value_day)),
            str(from_day(t.booked_day)),
            fmt(t.amount, cur),
            "reversed" if t.reversed else "",
            t.reason or "",
        )
    console.print(history)


def _loan_json(loan: LoanAccount, transactions: list[Any]) -> dict[str, Any]:
    """The loan as the API's loan and transaction views name its fields, money as decimal strings of major units
    with the currency given once."""
    cur = loan.terms.currency

    def money(minor: int) -> str:
        return str(from_minor(minor, cur))

    return {
        "id": loan.loan_id,
        "product_code": loan.terms.product_code,
        "currency": cur,
        "principal": money(loan.terms.principal),
        "tenor": loan.terms.tenor,
        "rate": str(loan.terms.rate),
        "funder": loan.funder,
        "business_model": loan.terms.business_model.value,
        "disbursed_on": loan.disbursed_on.isoformat(),
        "status": loan.status.value,
        "days_past_due": loan.days_past_due,
        "bucket": loan.bucket,
        "outstanding_principal": money(loan.balance(ledger.LOAN_PRINCIPAL)),
        "due_now": money(loan.total_due()),
        "schedule": [
            {
                "seq": i.seq,
                "due_date": i.due_date.isoformat(),
                "principal": money(i.principal),
                "interest": money(i.interest),
                "fee": money(i.fee),
                "paid": money(i.principal_paid + i.interest_paid + i.fee_paid),
                "unpaid": money(i.unpaid),
            }
            for i in loan.installments
        ],
        "balances": {account: money(loan.balance(account)) for account in ledger.SNAPSHOT_ACCOUNTS},
        "transactions": [
            {
                "id": t.id,
                "kind": t.kind,
                "value_date": from_day(t.value_day).isoformat(),
                "booked_on": from_day(t.booked_day).isoformat(),
                "amount": money(t.amount),
                "mode": t.mode,
                "reversed": bool(t.reversed),
                "reason": t.reason,
            }
            for t in transactions
        ],
    }


def eod(
    db: DbOption = None,
    to: Annotated[str | None, typer.Option(help="Close days until the business date is this (default: +1)")] = None,
) -> None:
    """Run end of day: accrue, mark dues, days past due, late fees, payouts, write-offs, collection cases;
    advance the date."""
    engine = make_engine(db)
    try:
        current = Servicing(EngineUnits(engine)).business_date()
        target = parse_date(to, "to") if to else current + timedelta(days=1)
        if target < current:
            raise ValidationError(f"{target} is before the business date {current}", field="to")
        with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("end of day", total=(target - current).days)
            totals: dict[str, int] = {}

            def on_day(report: DayReport) -> None:
                for step, rows in report.rows.items():
                    totals[step] = totals.get(step, 0) + rows
                progress.update(task, advance=1, description=f"closed {report.day}")

            run_until(engine, target, on_day)
    except OpeniceError as error:
        fail(error)
    table = Table(title=f"end of day {current} .. {target - timedelta(days=1)}")
    table.add_column("step")
    table.add_column("loans / rows", justify="right")
    for step, rows in totals.items():
        table.add_row(step, f"{rows:,}")
    console.print(table)
    console.print(f"business date is now [bold]{target}[/bold]")


def _money_command(db: str | None, call: Callable[[Servicing], dict[str, Any]]) -> None:
    try:
        result = call(_service(db))
    except OpeniceError as error:
        fail(error)
    typer.echo(json.dumps(result, indent=2, default=str))


def _minor(service: Servicing, loan_id: int, amount: str) -> int:
    return to_minor(amount, service.loan(loan_id).terms.currency, "amount")


KeyOption = Annotated[
    str, typer.Option("--key", help="Idempotency key: the same key never pays twice", callback=cli_key)
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why: kept on the transaction")]


def repay(
    loan_id: int,
    amount: str,
    key: KeyOption,
    db: DbOption = None,
    value_date: Annotated[
        str | None,
        typer.Option("--value-date", help="Backdate to this day (YYYY-MM-DD, in an open month; needs --reason)"),
    ] = None,
    reason: ReasonOption = None,
) -> None:
    """Apply a repayment to what is due today (or, backdated, on its value date: the loan is replayed)."""
    _money_command(
        db,
        lambda s: s.repay(
            loan_id,
            _minor(s, loan_id, amount),
            key,
            parse_date(value_date, "value_date") if value_date else None,
            reason=reason,
        ),
    )


def prepay(
    loan_id: int,
    amount: str,
    key: KeyOption,
    db: DbOption = None,
    mode: Annotated[PrepaymentMode, typer.Option()] = PrepaymentMode.REAMORTISE,
) -> None:
    """Pay what is due and prepay principal (the payoff amount closes the loan)."""
    _money_command(db, lambda s: s.prepay(loan_id, _minor(s, loan_id, amount), key, mode))


def reverse(transaction_id: int, key: KeyOption, db: DbOption = None) -> None:
    """Reverse a payment; the loan's later history is replayed without it."""
    _money_command(db, lambda s: s.reverse(transaction_id, key))


def write_off(loan_id: int, key: KeyOption, db: DbOption = None, reason: ReasonOption = None) -> None:
    """Write a loan off now (a guaranteed loan is paid out to its institution first); a current loan needs --reason."""
    _money_command(db, lambda s: s.write_off(loan_id, key, reason))


def recover(loan_id: int, amount: str, key: KeyOption, db: DbOption = None) -> None:
    """Record money collected on a written-off loan: at most what is still written off on it."""
    _money_command(db, lambda s: s.recover(loan_id, _minor(s, loan_id, amount), key))


def settle_referrals(
    institution: str,
    amount: str,
    key: KeyOption,
    currency: Annotated[str, typer.Option(help="Currency of the loans the fees are owed on")],
    db: DbOption = None,
) -> None:
    """Record an institution's payment of the referral fees it owes: oldest loan first, never more than owed."""
    try:
        result = _service(db).settle_referral_fees(institution, to_minor(amount, currency, "amount"), currency, key)
    except OpeniceError as error:
        fail(error)
    typer.echo(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    app.command()(schedule)
    app.command()(eod)
    app.command()(products)
    app.command()(repay)
    app.command()(prepay)
    app.command()(reverse)
    app.command("write-off")(write_off)
    app.command()(recover)
    app.command("settle-referrals")(settle_referrals)
    app.command("loan")(show_loan)
    db_app = typer.Typer(help="Database set-up.", no_args_is_help=True)
    db_app.command("init")(init)
    app.add_typer(db_app, name="db")
