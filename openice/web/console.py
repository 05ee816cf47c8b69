"""The operator console (`/console/`): the book at a glance, loans with their schedules and transactions (reverse
and write off, each with a reason), end of day, the ledger, the people who sign in; borrowers (masked, revealed
with an audited reason), decisions (reproduced on demand), credit lines, products, institutions, API keys, the
audit trail, the quarter's KPIs and the model registry."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from fastapi.responses import Response

from openice.access.keys import key_view
from openice.access.users import LOCALES, RESET_LINK_LIFE, Users
from openice.analytics import report
from openice.analytics import service as analytics
from openice.analytics.metrics import Period, closed_as_of
from openice.api import admin
from openice.api.deps import TransactionRoute
from openice.api.views import ApiKeyIn, audit_view, borrower_view, decision_view
from openice.charts import pdf_of
from openice.close_of_day import close_business_day
from openice.decisioning import queries as lending
from openice.decisioning.reason_words import explained
from openice.errors import Conflict, NotFound, OpeniceError, ValidationError
from openice.matching import queries as matching
from openice.servicing import queries as servicing
from openice.servicing.buckets import BUCKETS
from openice.servicing.settlement_documents import totals
from openice.storage.days import from_day, to_day
from openice.tenancy import Role, Window
from openice.web import book, kpi, monitoring
from openice.web.sign_in import reset_path
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/console", include_in_schema=False, route_class=TransactionRoute)
Operator = Annotated[Visit, Depends(visit(Front.CONSOLE))]
PAGE = 50
OUTCOMES = ("approved", "review", "declined")


def _totals(balances: list[Any]) -> dict[str, int]:
    """Each currency's accounts summed: the trial balance, zero when the ledger balances."""
    totals: dict[str, int] = {}
    for r in balances:
        totals[r.currency] = totals.get(r.currency, 0) + r.balance
    return totals


@router.get("/")
def dashboard(tx: Operator) -> Response:
    return tx.render(
        "console/dashboard.html",
        book=book.by_bucket(tx),
        business_date=tx.servicing.business_date(),
        trial_balance=_totals(servicing.trial_balance(tx.scope)),
    )


@router.get("/book.csv")
def book_csv(tx: Operator) -> Response:
    """The dashboard's bucket table as CSV (major units)."""
    return book.csv_response(tx)


@router.get("/loans")
def loans(
    tx: Operator,
    status: Annotated[str | None, Query(pattern="^(active|closed|written_off)?$")] = None,
    bucket: Annotated[str | None, Query(max_length=4)] = None,
    borrower: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    found = servicing.loans(tx.scope, Window(PAGE, after), status or None, bucket or None, borrower or None, None)
    return tx.render(
        "console/loans.html",
        loans=found.items,
        next_after=found.last_key,
        status_filter=status or "",
        bucket=bucket or "",
        borrower=borrower or "",
        buckets=BUCKETS,
    )


def _loan_page(tx: Visit, loan_id: int, status: int = 200, **context: Any) -> Response:
    row, account = servicing.loan(tx.scope, loan_id)
    moves = servicing.transactions(tx.scope, loan_id, Window(200, None)).items
    today = tx.servicing.business_date()
    payoff = account.payoff_amount(today) if account.status.value == "active" else None
    return tx.render(
        "console/loan.html",
        status=status,
        loan=row,
        account=account,
        transactions=[t for t, _ in moves],
        payoff=payoff,
        today=today,
        key=form_key(),
        **context,
    )


@router.get("/loans/{loan_id}")
def loan(loan_id: int, tx: Operator, done: str | None = None) -> Response:
    return _loan_page(tx, loan_id, done=done)


@router.post("/transactions/{transaction_id}/reverse")
def reverse(
    transaction_id: int,
    tx: Operator,
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Undo a payment: the loan's later history is replayed without it; the reason goes to the audit trail."""
    txn = servicing.transaction_row(tx.scope, transaction_id)
    with tx.attempt() as failed:
        why = tx.reason(reason)
        tx.book(
            "transaction.reversed",
            f"loan/{txn.loan_id}",
            lambda: tx.servicing.reverse(transaction_id, tx.principal.scoped(key or form_key())),
            lambda done: {"transaction_id": done["transaction_id"], "reversed": transaction_id, "reason": why},
        )
    if failed:
        return _loan_page(tx, txn.loan_id, 422, error=failed[0], error_form=f"reverse-{transaction_id}")
    return tx.redirect(f"/console/loans/{txn.loan_id}?done=reversed")


@router.post("/loans/{loan_id}/write-off")
def write_off(
    loan_id: int,
    tx: Operator,
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    servicing.loan_row(tx.scope, loan_id)
    with tx.attempt() as failed:
        why = tx.reason(reason)
        tx.book(
            "loan.write_off",
            f"loan/{loan_id}",
            lambda: tx.servicing.write_off(loan_id, tx.principal.scoped(key or form_key()), why),
            lambda done: {"transaction_id": done["transaction_id"], "reason": why},
        )
    if failed:
        return _loan_page(tx, loan_id, 422, error=failed[0], error_form="write-off")
    return tx.redirect(f"/console/loans/{loan_id}?done=written_off")


def _runs(tx: Visit) -> list[dict[str, Any]]:
    days: dict[int, dict[str, Any]] = {}
    for r in servicing.end_of_day_runs(tx.scope):
        run = days.setdefault(r.business_day, {"day": from_day(r.business_day), "steps": []})
        run["steps"].append({"step": r.step, "rows": r.rows, "completed_at": r.completed_at})
    return list(days.values())


@router.get("/eod")
def end_of_day(tx: Operator) -> Response:
    return tx.render("console/eod.html", business_date=tx.servicing.business_date(), runs=_runs(tx))


@router.post("/eod")
def close_day(tx: Operator) -> Response:
    """Close the business day now. Its steps run in transactions of their own, so the page's is ended first."""
    closing = tx.servicing.business_date()
    tx.audit("eod.started", "business_calendar", {"business_date": closing.isoformat()})
    tx.release()
    close_business_day(tx.svc.engine)
    return tx.redirect("/console/eod")


@router.get("/ledger")
def ledger(
    tx: Operator,
    loan_id: Annotated[int | None, Query(ge=1)] = None,
    account: Annotated[str | None, Query(max_length=40)] = None,
    day: Annotated[date | None, Query()] = None,
) -> Response:
    balances = servicing.trial_balance(tx.scope)
    lines = servicing.journal(tx.scope, loan_id, account or None, None if day is None else to_day(day))
    return tx.render(
        "console/ledger.html",
        balances=balances,
        totals=_totals(balances),
        lines=lines,
        accounts=sorted({r.account for r in balances}),
        loan_id=loan_id,
        account=account or "",
        day=day,
    )


def _users_page(tx: Visit, status: int = 200, **context: Any) -> Response:
    return tx.render(
        "console/users.html",
        status=status,
        users=Users(tx.joined).list(),
        roles=[r.value for r in Role],
        locales=LOCALES,
        reset_hours=int(RESET_LINK_LIFE.total_seconds() // 3600),
        **context,
    )


@router.get("/users")
def users(tx: Operator) -> Response:
    return _users_page(tx)


@router.post("/users/{user_id}/reset")
def reset_link(user_id: str, tx: Operator) -> Response:
    """A one-time link for the user to set a new password, shown on this page only; audited. The user's password
    and sessions stay as they are until the link is used."""
    assert tx.request is not None
    token, person = Users(tx.joined).reset_link(user_id, tx.principal.key_id)
    tx.audit("user.reset_link", f"user/{person['id']}", {"username": person["username"]})
    link = str(tx.request.base_url).rstrip("/") + reset_path(person["role"], token)
    return _users_page(tx, reset={"username": person["username"], "link": link})


@router.post("/users")
def create_user(
    tx: Operator,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=120)] = "",
    locale: Annotated[str, Form(max_length=8)] = "en",
) -> Response:
    with tx.attempt() as failed:
        made = Users(tx.joined).create(
            username, password, role, tenant or None, display_name, locale, created_by=tx.principal.key_id
        )
        tx.audit("user.created", f"user/{made['id']}", {"username": made["username"], "role": role, "tenant": tenant})
    if failed:
        form = {"username": username, "role": role, "tenant": tenant, "display_name": display_name, "locale": locale}
        return _users_page(tx, 422, error=failed[0], form=form)
    return tx.redirect("/console/users")


@router.get("/borrowers")
def borrowers(
    tx: Operator,
    province: Annotated[str | None, Query(max_length=32)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Every borrower, name, national id and mobile masked as the API masks them for an operator."""
    found = lending.borrowers(tx.scope, Window(PAGE, after or None), province or None)
    return tx.render(
        "console/borrowers.html",
        borrowers=[borrower_view(row, tx.svc.vault, full=False) for row in found.items],
        next_after=found.last_key,
        province=province or "",
    )


def _borrower_page(tx: Visit, borrower_id: str, status: int = 200, reveal: bool = False, **context: Any) -> Response:
    row = lending.borrower(tx.scope, borrower_id)
    return tx.render(
        "console/borrower.html",
        status=status,
        borrower=borrower_view(row, tx.svc.vault, full=False),
        card=lending.contact_card(tx.scope, tx.svc.vault, borrower_id, reveal),
        decisions=[decision_view(*d) for d in lending.decisions(tx.scope, Window(PAGE, None), borrower_id, None).items],
        lines=lending.lines(tx.scope, Window(PAGE, None), borrower_id, None).items,
        loans=servicing.loans(tx.scope, Window(PAGE, None), None, None, borrower_id, None).items,
        **context,
    )


@router.get("/borrowers/{borrower_id}")
def borrower(borrower_id: str, tx: Operator) -> Response:
    return _borrower_page(tx, borrower_id)


@router.post("/borrowers/{borrower_id}/reveal")
def reveal(borrower_id: str, tx: Operator, reason: Annotated[str, Form()] = "") -> Response:
    """The borrower's name and mobile in clear, for this page only, with the reason in the audit trail."""
    lending.borrower(tx.scope, borrower_id)
    try:
        why = tx.reason(reason, "reveal_reason")
    except ValidationError as error:
        return _borrower_page(tx, borrower_id, 422, error=error)
    tx.audit("pii.revealed", f"borrower/{borrower_id}", {"reason": why})
    return _borrower_page(tx, borrower_id, reveal=True)


@router.get("/decisions")
def decisions(
    tx: Operator,
    outcome: Annotated[str | None, Query(pattern="^(approved|review|declined)?$")] = None,
    borrower: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    found = lending.decisions(tx.scope, Window(PAGE, after or None), borrower or None, outcome or None)
    return tx.render(
        "console/decisions.html",
        decisions=[decision_view(*item) for item in found.items],
        next_after=found.last_key,
        outcome=outcome or "",
        borrower=borrower or "",
        outcomes=OUTCOMES,
    )


@router.get("/decisions/{decision_id}")
def decision(decision_id: str, tx: Operator, reproduce: bool = False) -> Response:
    """A stored decision with its reasons and rules; with `reproduce`, recomputed from its stored inputs, policy
    and model package, as `openice reproduce` does."""
    row, line_id, currency = lending.decision(tx.scope, decision_id)
    made = decision_view(row, line_id, currency)
    again: dict[str, Any] | None = None
    refused: OpeniceError | None = None
    if reproduce:
        try:
            again = tx.decisioning.reproduce(decision_id)
        except Conflict as error:  # another model package or altered inputs: said on the page
            refused = error
    score_reasons = explained(
        json.loads(row.result)["score_reasons"], json.loads(row.inputs), currency, tx.words.messages
    )
    return tx.render("console/decision.html", decision=made, score_reasons=score_reasons, again=again, refused=refused)


@router.get("/credit-lines")
def credit_lines(
    tx: Operator,
    status: Annotated[str | None, Query(pattern="^(active|expired|frozen)?$")] = None,
    borrower: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    found = lending.lines(tx.scope, Window(PAGE, after or None), borrower or None, status or None)
    return tx.render(
        "console/lines.html",
        lines=found.items,
        next_after=found.last_key,
        status_filter=status or "",
        borrower=borrower or "",
    )


@router.get("/products")
def products(tx: Operator) -> Response:
    return tx.render("console/products.html", products=[p.typed_dict() for p in tx.servicing.products()])


@router.get("/institutions")
def institutions(tx: Operator, after: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    found = matching.institutions(tx.scope, Window(PAGE, after or None))
    return tx.render("console/institutions.html", institutions=found.items, next_after=found.last_key)


@router.get("/institutions/{code}")
def institution(code: str, tx: Operator) -> Response:
    """Its terms, credit box and quotas as they stand (the institution edits them in its portal)."""
    found = matching.institution(tx.scope, code)
    return tx.render(
        "console/institution.html",
        institution=found,
        box=found.credit_box.model_dump(),
        quota=tx.matching.quota_usage(code),
        currency=tx.matching.currency_of(found),  # as the API and the portal read its terms
    )


def _book_currency(tx: Visit) -> str | None:
    """The one currency of the platform's products, which the dashboard's money is counted in (None when the products
    are in several)."""
    currencies = {p.currency for p in tx.servicing.products()}
    return currencies.pop() if len(currencies) == 1 else None


def _keys_page(
    tx: Visit, status: int = 200, role: str = "", tenant: str = "", after: str = "", **context: Any
) -> Response:
    found = tx.scope.page("api_keys", Window(PAGE, after or None), role=role or None, tenant=tenant or None)
    return tx.render(
        "console/keys.html",
        status=status,
        keys=[key_view(row) for row in found.items],
        next_after=found.last_key,
        role=role,
        tenant=tenant,
        roles=[r.value for r in Role],
        key=form_key(),
        overlap_hours=f"{tx.svc.settings.key_overlap_hours:g}",
        **context,
    )


@router.get("/keys")
def keys(
    tx: Operator,
    role: Annotated[str, Query(max_length=16)] = "",
    tenant: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[str, Query(max_length=64)] = "",
    done: str | None = None,
) -> Response:
    return _keys_page(tx, role=role, tenant=tenant, after=after, done=done)


@router.post("/keys")
def create_key(
    tx: Operator,
    role: Annotated[str, Form(max_length=16)] = "",
    tenant: Annotated[str, Form(max_length=64)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A key made through the API's own call (same audit row, same idempotency): its secret is on this page only,
    and a form posted twice makes one key and shows no secret the second time."""
    made: dict[str, Any] = {}
    with tx.attempt() as failed:
        if role not in {r.value for r in Role}:
            raise ValidationError(f"must be one of {[r.value for r in Role]}", field="role")
        if not tenant.strip():
            raise ValidationError("name the tenant: 'platform', an institution code or a borrower id", field="tenant")
        made = admin.create_key(ApiKeyIn(role=role, tenant=tenant.strip(), label=label), key or form_key(), tx)
    typed = {"role": role, "tenant": tenant, "label": label}
    if failed:
        return _keys_page(tx, 422, error=failed[0], typed=typed)
    return _keys_page(tx, made=made)


@router.post("/keys/{key_id}/rotate")
def rotate_key(
    key_id: str,
    tx: Operator,
    overlap_hours: Annotated[str, Form(max_length=16)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A new secret for the same key through the API's own call (audited, idempotent): shown on this page only,
    while the old one still works for the overlap typed."""
    tx.scope.get("api_keys", key_id, "key_id")
    made: dict[str, Any] = {}
    with tx.attempt() as failed:
        hours = overlap_hours_of(tx, overlap_hours)
        made = admin.rotate_key(key_id, key or form_key(), tx, hours)
    if failed:
        return _keys_page(tx, 422, error=failed[0], error_key=key_id)
    return _keys_page(tx, made={**made, "rotated": True})


def overlap_hours_of(tx: Visit, typed: str) -> float:
    """Hours from 0 to 720 (30 days), or why not beside the field, in the reader's language."""
    try:
        hours = float(typed.strip() or tx.svc.settings.key_overlap_hours)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 720:
        raise ValidationError(tx.words("account.key.overlap_invalid"), field="overlap_hours")
    return hours


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: str, tx: Operator) -> Response:
    """Revoke through the API's own call: refused from now on, and audited."""
    tx.scope.get("api_keys", key_id, "key_id")
    with tx.attempt() as failed:
        admin.revoke_key(key_id, tx)
    if failed:
        return _keys_page(tx, 422, error=failed[0], error_key=key_id)
    return tx.redirect("/console/keys?done=revoked")


@router.get("/audit")
def audit(
    tx: Operator,
    action: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The audit trail newest first (the API's `GET /v1/audit` pages it in the order it was written)."""
    found = tx.scope.page("audit_log", Window(PAGE, after), newest_first=True, action=action.strip() or None)
    return tx.render(
        "console/audit.html",
        entries=[audit_view(row) for row in found.items],
        next_after=found.last_key,
        action=action.strip(),
    )


def _quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _quarter(tx: Visit, quarter: str) -> tuple[Period, date, date]:
    """The quarter typed (default: the one holding the book's last closed day), the day its figures run to, and
    that last closed day; a quarter not yet begun is refused, as the API refuses it."""
    closed = tx.servicing.business_date() - timedelta(days=1)
    try:
        period = Period.quarter(quarter.strip() or _quarter_of(closed))
    except ValueError as exc:  # a year the calendar has not (0000)
        raise ValidationError(str(exc), field="quarter") from None
    return period, closed_as_of(period, None, closed, period_field="quarter"), closed


def _kpi(tx: Visit, quarter: str) -> tuple[str, dict[str, Any], list[kpi.Section], str]:
    """The quarter asked for (default: the one holding the last closed day), its metric set as the API gives it,
    the dashboard's sections and the book's currency. The funnel is read before the transaction is released for
    the metrics."""
    period, as_of, _closed = _quarter(tx, quarter)
    chosen = _quarter_of(period.start)
    currency = _book_currency(tx) or ""
    funnel = lending.funnel(tx.scope, to_day(as_of))
    result = admin.quarter_metrics(tx, chosen, None, "calendar-month")
    return chosen, result, kpi.sections(tx.words, result, funnel), currency


@router.get("/kpi")
def kpi_dashboard(tx: Operator, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    """A quarter's volumes, balances, delinquency and collection, vintages, roll rates, funnel and revenue: each
    chart beside the table of its numbers, each table as CSV, and the quarterly report to download."""
    try:
        chosen, result, sections, currency = _kpi(tx, quarter)
    except ValidationError as error:
        return tx.render("console/kpi.html", status=422, quarter=quarter, error=error, sections=[], result=None)
    return tx.render("console/kpi.html", quarter=chosen, result=result, sections=sections, currency=currency, kpi=kpi)


@router.get("/kpi/{section}.csv")
def kpi_csv(section: str, tx: Operator, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    chosen, _result, sections, currency = _kpi(tx, quarter)
    found = [s for s in sections if s.name == section]
    if not found:
        raise HTTPException(404)
    return Response(
        kpi.csv_text(tx.words, found[0], currency),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{section}-{chosen}.csv"'},
    )


@router.get("/kpi/report.{fmt}")
def kpi_report(fmt: str, tx: Operator, quarter: Annotated[str, Query(max_length=8)] = "") -> Response:
    """The quarterly report `openice report quarterly` writes, as HTML or PDF, computed outside the request's
    transaction, once per version of the book: downloading it again, or by another operator, costs nothing until
    the book changes."""
    from openice.analytics.backends import book_version

    if fmt not in ("html", "pdf"):
        raise HTTPException(404)
    try:
        period, as_of, closed = _quarter(tx, quarter)
    except ValidationError as error:
        return tx.render("console/kpi.html", status=422, quarter=quarter, error=error, sections=[], result=None)
    engine = tx.svc.engine
    tx.release()  # the report reads through a connection of its own

    def rendered() -> str | bytes:
        backend = analytics.book_backend(engine)
        try:
            html = report.render_html(report.quarterly(backend, period, as_of, last_closed_day=closed))
        finally:
            backend.close()
        return html if fmt == "html" else pdf_of(html)

    body = tx.svc.reports_cache.get(("quarterly", fmt, period, as_of, closed, book_version(engine)), rendered)
    name = f"quarterly-{_quarter_of(period.start)}"
    if fmt == "html":
        return Response(body, media_type="text/html; charset=utf-8")
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


@router.get("/models")
def models(tx: Operator) -> Response:
    """The scoring model packages of the configured registry: the champion, the challengers and each one's
    validation figures (read-only: `openice model train` and `openice model promote` change it)."""
    try:
        packages = admin.models(tx)
    except NotFound as missing:
        return tx.render("console/models.html", packages=[], missing=missing, monitoring=None)
    return tx.render("console/models.html", packages=packages, missing=None, monitoring=_monitoring(tx, packages))


def _monitoring(tx: Visit, packages: list[admin.ModelPackage]) -> monitoring.Monitoring | None:
    """The champion's monitoring from the decisions it scored (None without a champion or a reference), computed
    once per version of its package and of the decisions and loans it reads: opening the page again, or by another
    operator, costs a few index lookups until a decision is made, a loan booked or a day closed."""
    chosen = next((p for p in packages if p.champion), None)
    if chosen is None:
        return None
    registry = str(tx.svc.settings.model_registry)
    key = ("champion", registry, chosen.path, chosen.package_hash, lending.outcomes_version(tx.scope))
    found: monitoring.Monitoring | None = tx.svc.monitoring_cache.get(
        key, lambda: monitoring.champion(tx.scope, registry, chosen.path, chosen.package_hash)
    )
    return found


@router.get("/models/monitoring.csv")
def models_csv(tx: Operator) -> Response:
    """The champion's monitoring table as CSV."""
    found = _monitoring(tx, admin.models(tx))
    if found is None:
        raise HTTPException(404)
    return Response(
        monitoring.csv_text(found),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="champion-monitoring.csv"'},
    )


@router.get("/settlements")
def settlements(tx: Operator) -> Response:
    """What is still owed between the platform and every institution: the statements not yet paid, summed."""
    rows = servicing.settlement_outstanding_everywhere(tx.scope)
    return tx.render("console/settlements.html", rows=[{"owed": r, "totals": totals(r.lines)} for r in rows])
