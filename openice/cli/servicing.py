"""Commands of the servicing stage: schedules, products, loans, money calls and end of day (which closes
collections' day too, `openice.close_of_day`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from openice import deployment
from openice.cli.common import (
    Commands,
    DbOption,
    JsonOption,
    console,
    days_past_due,
    decimal_money,
    fail,
    fields_as,
    messages,
    parse_amount,
    parse_date,
    parse_rate,
    print_json,
)
from openice.close_of_day import DayReport, run_until
from openice.deployment import Mode
from openice.errors import OpeniceError, ValidationError
from openice.idempotency import cli_key
from openice.money import fmt, format_money, from_minor
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
    facilitation_fee: Annotated[str, typer.Option(help="Upfront fee on principal, e.g. 2% or 0.02")] = "0",
    service_fee: Annotated[str, typer.Option(help="Monthly service fee on principal, e.g. 0.5% or 0.005")] = "0",
    apr_cap: Annotated[
        str | None, typer.Option(help="Refuse a schedule whose APR (IRR method) passes this, e.g. 24%")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the repayment schedule of a loan, its APR on the IRR method and its effective annual rate. Rates and
    fees are written 12% or 0.12; a bare number above 1 is refused (did you mean 12%?)."""
    with fields_as(
        {"tenors": "tenor", "nominal_rate": "rate", "facilitation_fee_rate": "facilitation_fee"}
        | {"monthly_service_fee_rate": "service_fee"}
    ):
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
        plan = build_schedule(
            product, parse_amount(principal, currency, "principal"), tenor, parse_date(start, "start")
        )
    if as_json:
        print_json(
            {
                "currency": currency,
                "principal": decimal_money(plan.principal, currency),
                "upfront_fee": decimal_money(plan.upfront_fee, currency),
                "apr": str(round(plan.apr, 6)),
                "effective_annual_rate": str(round(plan.effective_annual_rate, 6)),
                "apr_convention": plan.apr_convention,
                "installments": [
                    {"seq": i.seq, "due_date": i.due_date.isoformat()}
                    | {k: decimal_money(getattr(i, k), currency) for k in ("principal", "interest", "fee", "total")}
                    for i in plan.installments
                ],
            }
        )
        return
    table = Table(
        title=f"{method.value} schedule, {format_money(plan.principal, currency)} at {product.nominal_rate:.2%} "
        f"over {tenor} months ({day_count.value})"
    )
    for col in ("#", "due date", *(f"{k} ({currency})" for k in ("principal", "interest", "fee", "total"))):
        table.add_column(col, justify="right")
    for i in plan.installments:
        table.add_row(
            str(i.seq), str(i.due_date), *(fmt(n, currency) for n in (i.principal, i.interest, i.fee, i.total))
        )
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
    """The servicing of an existing database: a missing SQLite file is refused, not created."""
    return Servicing(EngineUnits(make_engine(db, create=False)))


def init(
    db: DbOption = None,
    business_date: Annotated[str | None, typer.Option("--date", help="First business date")] = None,
    with_products: Annotated[bool, typer.Option(help="Create the demo products")] = True,
    mode: Annotated[
        Mode | None,
        typer.Option(
            "--mode",
            help="saas (a platform of many institutions) | on-premise (one institution alone, --institution); "
            "default: as stored, SaaS for a new database (docs/deployment.md)",
        ),
    ] = None,
    institution: Annotated[
        str | None, typer.Option("--institution", help="On-premise: the code of the one institution")
    ] = None,
) -> None:
    """Create or upgrade the database schema, set the first business date, and store the deployment mode."""
    start = parse_date(business_date, "date") if business_date else None
    wanted = None if mode is None and institution is None else deployment.asked(mode or Mode.SAAS, institution)
    engine = make_engine(db)
    migrate(engine, start)
    with engine.begin() as conn:
        deployed = deployment.read(conn) if wanted is None else deployment.choose(conn, wanted)
    service = Servicing(EngineUnits(engine))
    if with_products:
        existing = {p.code for p in service.products()}
        for product in demo_products():
            if product.code not in existing:
                service.create_product(product)
    messages.print(
        f"database ready at [bold]{database_url(db)}[/bold] ({deployed.describe()}); "
        f"business date {service.business_date()}"
    )


def products(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List loan products."""
    found = _service(db).products()
    if as_json:
        print_json([p.typed_dict() for p in found])
        return
    table = Table(title="loan products")
    for col in ("code", "currency", "method", "rate", "day count", "tenors", "APR cap"):
        table.add_column(col)
    for p in found:
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
        print_json(_loan_json(loan, transactions))
        return
    cur = loan.terms.currency
    typer.echo(
        f"loan {loan.loan_id}: {loan.terms.product_code}, {format_money(loan.terms.principal, cur)} over "
        f"{loan.terms.tenor} months from {loan.disbursed_on}, {loan.terms.business_model.value} funded by "
        f"{loan.funder}; status {loan.status.value}, {days_past_due(loan.days_past_due)} ({loan.bucket}); "
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
        console.print("no transactions yet: repayments, prepayments, write-offs and recoveries are listed here")
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
    as_json: JsonOption = False,
) -> None:
    """Run end of day: accrue, mark dues, days past due, late fees, payouts, write-offs, collection cases;
    advance the date."""
    engine = make_engine(db, create=False)
    current = Servicing(EngineUnits(engine)).business_date()
    target = parse_date(to, "to") if to else current + timedelta(days=1)
    if target <= current:
        raise ValidationError(
            f"{target} is not after the business date {current}: end of day moves the date forward", field="to"
        )
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=messages, transient=True) as progress:
        task = progress.add_task("end of day", total=(target - current).days)
        totals: dict[str, int] = {}

        def on_day(report: DayReport) -> None:
            for step, rows in report.rows.items():
                totals[step] = totals.get(step, 0) + rows
            progress.update(task, advance=1, description=f"closed {report.day}")

        run_until(engine, target, on_day)
    if as_json:
        print_json(
            {"closed_from": current.isoformat(), "closed_to": (target - timedelta(days=1)).isoformat()}
            | {"business_date": target.isoformat(), "rows": totals}
        )
        return
    table = Table(title=f"end of day {current} .. {target - timedelta(days=1)}")
    table.add_column("step")
    table.add_column("loans / rows", justify="right")
    for step, rows in totals.items():
        table.add_row(step, f"{rows:,}")
    console.print(table)
    console.print(f"business date is now [bold]{target}[/bold]")


MONEY_FIELDS = ("outstanding_principal", "settled", "still_owed")


def _money_command(
    db: str | None, what: str, call: Callable[[Servicing], dict[str, Any]], currency_of: int | None, as_json: bool
) -> None:
    """Run a money call and print its result: a line with money in major units and its currency, or with --json
    the result with money as decimal strings. `currency_of` is the loan whose currency the result is in (None:
    the result's own `currency`, or the loan it names)."""
    service = _service(db)
    result = call(service)
    currency = result.get("currency") or service.loan(currency_of or result["loan_id"]).terms.currency
    shaped = {k: decimal_money(v, currency) if k in MONEY_FIELDS else v for k, v in result.items()}
    if "allocated" in result:
        shaped["allocated"] = {k: decimal_money(v, currency) for k, v in result["allocated"].items()}
    if as_json:
        print_json(shaped | {"currency": currency})
        return
    parts = [f"{what}: transaction {result['transaction_id']}" if "transaction_id" in result else what]
    if "loan_id" in result:
        parts.append(f"loan {result['loan_id']} is {result['status']}")
    parts += [f"{k.replace('_', ' ')} {format_money(v, currency)}" for k, v in result.get("allocated", {}).items() if v]
    parts += [f"{k.replace('_', ' ')} {format_money(result[k], currency)}" for k in MONEY_FIELDS if k in result]
    if "value_date" in result:
        parts.append(f"value date {result['value_date']}")
    console.print("; ".join(parts), highlight=False, soft_wrap=True)


def _minor(service: Servicing, loan_id: int, amount: str) -> int:
    return parse_amount(amount, service.loan(loan_id).terms.currency, "amount")


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
    as_json: JsonOption = False,
) -> None:
    """Apply a repayment of AMOUNT (in the loan's currency, e.g. 1234.56) to what is due today (or, backdated, on
    its value date: the loan is replayed)."""
    _money_command(
        db,
        "repaid",
        lambda s: s.repay(
            loan_id,
            _minor(s, loan_id, amount),
            key,
            parse_date(value_date, "value_date") if value_date else None,
            reason=reason,
        ),
        loan_id,
        as_json,
    )


def prepay(
    loan_id: int,
    amount: str,
    key: KeyOption,
    db: DbOption = None,
    mode: Annotated[PrepaymentMode, typer.Option()] = PrepaymentMode.REAMORTISE,
    as_json: JsonOption = False,
) -> None:
    """Pay what is due and prepay principal with AMOUNT (in the loan's currency; the payoff amount closes the
    loan)."""
    _money_command(db, "prepaid", lambda s: s.prepay(loan_id, _minor(s, loan_id, amount), key, mode), loan_id, as_json)


def reverse(transaction_id: int, key: KeyOption, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Reverse a payment; the loan's later history is replayed without it."""
    _money_command(
        db, f"reversed transaction {transaction_id}", lambda s: s.reverse(transaction_id, key), None, as_json
    )


def write_off(
    loan_id: int, key: KeyOption, db: DbOption = None, reason: ReasonOption = None, as_json: JsonOption = False
) -> None:
    """Write a loan off now (a guaranteed loan is paid out to its institution first); a current loan needs --reason."""
    _money_command(db, "written off", lambda s: s.write_off(loan_id, key, reason), loan_id, as_json)


def recover(loan_id: int, amount: str, key: KeyOption, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Record AMOUNT (in the loan's currency) collected on a written-off loan: at most what is still written off."""
    _money_command(db, "recovered", lambda s: s.recover(loan_id, _minor(s, loan_id, amount), key), loan_id, as_json)


def settle_referrals(
    institution: str,
    amount: str,
    key: KeyOption,
    currency: Annotated[str, typer.Option(help="Currency of the loans the fees are owed on")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an institution's payment of AMOUNT of the referral fees it owes: oldest loan first, never more than
    owed."""
    _money_command(
        db,
        f"{institution} settled referral fees",
        lambda s: s.settle_referral_fees(institution, parse_amount(amount, currency, "amount"), currency, key),
        None,
        as_json,
    )


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
    db_app = Commands(help="Database set-up.", no_args_is_help=True)
    db_app.command("init")(init)
    app.add_typer(db_app, name="db")
