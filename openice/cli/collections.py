"""CLI of the collections stage: `openice collections summary|queue|case|contact|assign|performance`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from openice.cli.common import (
    Commands,
    DbOption,
    JsonOption,
    console,
    days_past_due,
    decimal_money,
    parse_amount,
    parse_date,
    print_json,
)
from openice.collections.service import Collections
from openice.money import format_money
from openice.storage.engine import make_engine
from openice.storage.uow import EngineUnits
from openice.tenancy import collections_desk

collections_app = Commands(
    help="Overdue loans: the work queue, contacts, promises to pay, agents.", no_args_is_help=True
)
Funder = Annotated[str | None, typer.Option("--funder", help="Only the cases of loans this institution funded")]
Stage = Annotated[str | None, typer.Option("--stage", help="M1 | M2 | M3 | M4+ | WO")]


def _service(db: str | None) -> Collections:
    return Collections(EngineUnits(make_engine(db, create=False)))


def _money_as_decimals(row: dict[str, Any]) -> dict[str, Any]:
    """A case, a stage or an action for JSON: its amounts as decimal strings in its currency, as the API writes
    them."""
    currency = row["currency"]

    def shaped(key: str, value: Any) -> Any:
        if isinstance(value, int) and (key.endswith("amount") or key == "amount"):
            return decimal_money(value, currency)
        if isinstance(value, dict):
            return {k: shaped(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [shaped(key, v | {"currency": currency}) if isinstance(v, dict) else v for v in value]
        return value

    return {k: shaped(k, v) for k, v in row.items()}


@collections_app.command()
def summary(db: DbOption = None, funder: Funder = None, as_json: JsonOption = False) -> None:
    """Open cases by stage: how many, how much is overdue, due for contact today, promises pending."""
    rows = _service(db).summary(collections_desk(funder))
    if as_json:
        print_json([_money_as_decimals(r) for r in rows])
        return
    console.print(summary_table(rows) if rows else "no open collection cases")


def summary_table(rows: list[dict[str, Any]]) -> Table:
    """The open cases by stage, as `Collections.summary` gives them."""
    table = Table(title="collections by stage (open cases)")
    for col in ("stage", "cases", "overdue", "due today", "promises pending", "unassigned"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["stage"],
            f"{r['cases']:,}",
            format_money(r["overdue_amount"], r["currency"]),
            f"{r['due_today']:,}",
            f"{r['promises_pending']:,}",
            f"{r['unassigned']:,}",
        )
    return table


@collections_app.command()
def queue(
    db: DbOption = None,
    funder: Funder = None,
    stage: Stage = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's cases")] = None,
    limit: Annotated[int, typer.Option(help="How many cases")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Today's work list: open cases due for contact, most severe stage and largest amount first."""
    rows = _service(db).queue(collections_desk(funder), stage, agent, limit)
    if as_json:
        print_json([_money_as_decimals(r) for r in rows])
        return
    table = Table(title="collections work queue")
    for col in ("case", "loan", "stage", "DPD", "overdue", "agent", "last contact", "kept/broken"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["loan_id"]),
            r["stage"],
            str(r["days_past_due"]),
            format_money(r["overdue_amount"], r["currency"]),
            r["assignee"] or "-",
            str(r["last_contact_on"] or "-"),
            f"{r['promises_kept']}/{r['promises_broken']}",
        )
    console.print(table if rows else "nothing is due for contact today")


@collections_app.command()
def performance(
    start: Annotated[str, typer.Option("--from", help="First business day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="Last business day, YYYY-MM-DD")],
    db: DbOption = None,
    funder: Funder = None,
    as_json: JsonOption = False,
) -> None:
    """How the desk did: contacts, promises kept and broken per agent; cases opened, escalated and closed."""
    found = _service(db).performance(collections_desk(funder), parse_date(start, "from"), parse_date(end, "to"))
    if as_json:
        print_json(found)
        return
    agents = Table(title=f"agents {found['from']} .. {found['to']}")
    for col in ("agent", "contacts", "reached", "promises", "kept", "broken", "kept rate"):
        agents.add_column(col, justify="right")
    for a in found["agents"]:
        agents.add_row(
            a["agent"],
            *(f"{a[k]:,}" for k in ("contacts", "reached", "promises", "kept", "broken")),
            "-" if a["kept_rate"] is None else f"{a['kept_rate']:.0%}",
        )
    stages = Table(title="cases by stage")
    for col in ("stage", "opened", "escalated in"):
        stages.add_column(col, justify="right")
    for s in found["stages"]:
        stages.add_row(s["stage"], f"{s['opened']:,}", f"{s['escalated_in']:,}")
    console.print(agents, stages)
    console.print("closed: " + ", ".join(f"{how} {n:,}" for how, n in found["closed"].items()))


@collections_app.command("case")
def show_case(case_id: int, db: DbOption = None, funder: Funder = None, as_json: JsonOption = False) -> None:
    """A case and its history."""
    found = _service(db).case(collections_desk(funder), case_id)
    if as_json:
        print_json(_money_as_decimals(found))
        return
    print_case(found)


def print_case(found: dict[str, Any]) -> None:
    """A case as a person reads it: money in major units with its currency, then its actions."""
    cur = found["currency"]
    promise, resolution = found["promise"], found["resolution"]
    console.print(
        f"case {found['id']} on loan {found['loan_id']}: {found['status']}"
        f"{f' ({resolution})' if resolution else ''}, stage {found['stage']}, "
        f"{days_past_due(found['days_past_due'])}, {format_money(found['overdue_amount'], cur)} overdue; "
        f"agent {found['assignee'] or '-'}; opened {found['opened_on']}, next contact {found['next_contact_on']}; "
        f"promises kept {found['promises_kept']}, broken {found['promises_broken']}"
        + (f"; promised {format_money(promise['amount'], cur)} by {promise['by']}" if promise else ""),
        highlight=False,
        soft_wrap=True,
    )
    actions = found.get("actions", [])
    if not actions:
        return
    table = Table(title="history")
    for col in ("on", "kind", "channel", "outcome", "amount", "promise by", "agent", "detail"):
        table.add_column(col)
    for a in actions:
        table.add_row(
            str(a["on"]),
            a["kind"],
            a["channel"] or "",
            a["outcome"] or "",
            format_money(a["amount"], cur) if a["amount"] is not None else "",
            str(a["promise_by"] or ""),
            a["agent"] or "",
            a["detail"] or "",
        )
    console.print(table)


@collections_app.command()
def contact(
    case_id: int,
    channel: Annotated[str, typer.Option(help="sms | call | email | visit | letter")],
    outcome: Annotated[str, typer.Option(help="reached | no_answer | wrong_number | refused | promise")],
    agent: Annotated[str, typer.Option(help="Who made the contact")],
    promise_amount: Annotated[str | None, typer.Option(help="Promised amount, e.g. 500.00")] = None,
    promise_date: Annotated[str | None, typer.Option(help="Promised by, YYYY-MM-DD")] = None,
    db: DbOption = None,
    funder: Funder = None,
    as_json: JsonOption = False,
) -> None:
    """Record a contact attempt, with a promise to pay when the outcome is 'promise'."""
    service, desk = _service(db), collections_desk(funder)
    currency = service.case(desk, case_id)["currency"]
    amount = parse_amount(promise_amount, currency, "promise_amount") if promise_amount is not None else None
    by: date | None = parse_date(promise_date, "promise_date") if promise_date is not None else None
    found = service.record_contact(
        desk,
        case_id,
        channel=channel,
        outcome=outcome,
        agent=agent,
        promise_amount=amount,
        promise_date=by,
    )
    case = {k: v for k, v in found.items() if k != "actions"}
    if as_json:
        print_json(_money_as_decimals(case))
        return
    print_case(case)


@collections_app.command()
def assign(
    agents: Annotated[list[str], typer.Argument(help="Agents to share the unassigned cases among")],
    db: DbOption = None,
    funder: Funder = None,
    stage: Stage = None,
    as_json: JsonOption = False,
) -> None:
    """Share the open unassigned cases among agents, largest amounts first, evening out workloads."""
    received = _service(db).assign(collections_desk(funder), agents, stage)
    if as_json:
        print_json(received)
        return
    table = Table(title="cases assigned")
    table.add_column("agent")
    table.add_column("cases", justify="right")
    for agent, count in received.items():
        table.add_row(agent, f"{count:,}")
    console.print(table)
