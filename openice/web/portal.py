"""The institution portal (`/portal/`): the offers waiting for the institution's answer, each with its pre-loan
investigation report, accepted or declined with a reason through the same call as the API's; its credit box, quotas
and pricing, changed through the API's own model and call after a preview against the last 30 days of drawdowns;
and its own book: live loans by delinquency bucket, the disclosure figures of its loans, its collections desk."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_datetime
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError as ModelError

from openice.api.admin import quarter_metrics
from openice.api.deps import TransactionRoute
from openice.api.funding import answer_offer, update_institution
from openice.api.views import OfferAnswerIn
from openice.clock import now_iso
from openice.errors import OpeniceError, ValidationError
from openice.matching import institutions
from openice.matching import queries as matching
from openice.matching.boxes import BoxChange
from openice.money import from_minor, minor_digits, to_minor
from openice.servicing import queries as servicing
from openice.servicing import settlement
from openice.servicing.settlement_documents import statements_csv, totals
from openice.tenancy import Window
from openice.web import book as live_book
from openice.web.i18n import Words
from openice.web.visit import Front, Visit, form_key, visit

router = APIRouter(prefix="/portal", include_in_schema=False, route_class=TransactionRoute)
Institution = Annotated[Visit, Depends(visit(Front.PORTAL))]
PAGE = 50


def expiry(words: Words, stamp: str | None) -> str:
    """An offer's deadline to answer, date and time as the reader's locale writes them (UTC, as stored)."""
    if stamp is None:
        return "—"
    return format_datetime(datetime.fromisoformat(stamp), "medium", tzinfo=UTC, locale=words.babel) + " UTC"


@router.get("/")
def offers(tx: Institution, after: Annotated[int | None, Query(ge=0)] = None, done: str | None = None) -> Response:
    """The offers still waiting for this institution's answer, oldest first."""
    found = matching.offers(tx.scope, Window(PAGE, after), "sent", None, open_at=now_iso())
    return tx.render(
        "portal/offers.html",
        offers=[{"row": o, "expires": expiry(tx.words, o.expires_at)} for o in found.items],
        next_after=found.last_key,
        done=done if done in ("accepted", "declined") else None,
    )


def _offer_page(tx: Visit, offer_id: int, status: int = 200, **context: Any) -> Response:
    offer = matching.offer(tx.scope, offer_id)  # another institution's offer is missing
    report = tx.matching.report(offer_id, "json", tx.words.messages)  # the model's reasons in the reader's language
    assert isinstance(report, dict)  # the json rendering is the report itself
    return tx.render(
        "portal/offer.html",
        status=status,
        offer=offer,
        expires=expiry(tx.words, offer.expires_at),
        report=report,
        key=form_key(),
        **context,
    )


@router.get("/offers/{offer_id}")
def offer(offer_id: int, tx: Institution) -> Response:
    return _offer_page(tx, offer_id)


@router.get("/offers/{offer_id}/report", response_class=HTMLResponse)
def report(offer_id: int, tx: Institution) -> Response:
    """The full report as the API serves it in HTML, to print or keep."""
    matching.offer(tx.scope, offer_id)
    return HTMLResponse(str(tx.matching.report(offer_id, "html")))


def _answer(tx: Visit, offer_id: int, accept: bool, reason: str, key: str) -> Response:
    """Accept or decline through the API's own call (same audit action, same idempotency); a decline says why."""
    matching.offer(tx.scope, offer_id)
    form = "accept" if accept else "decline"
    with tx.attempt() as failed:
        why = tx.reason(reason, required=not accept)
        answer_offer(tx, offer_id, key or form_key(), OfferAnswerIn(reason=why), accept)
    if failed:
        return _offer_page(tx, offer_id, 422, error=failed[0], error_form=form, typed={"reason": reason})
    return tx.redirect(f"/portal/?done={'accepted' if accept else 'declined'}")


@router.post("/offers/{offer_id}/acceptance")
def accept(
    offer_id: int,
    tx: Institution,
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Fund the drawdown: the loan is originated under this institution."""
    return _answer(tx, offer_id, True, reason, key)


@router.post("/offers/{offer_id}/decline")
def decline(
    offer_id: int,
    tx: Institution,
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Pass, with the reason on the record: the quota is released and the drawdown goes to the next institution."""
    return _answer(tx, offer_id, False, reason, key)


@router.get("/book")
def book(tx: Institution) -> Response:
    """Its own live loans by delinquency bucket: the tenant-scoped query the console's dashboard draws."""
    return tx.render("portal/book.html", book=live_book.by_bucket(tx))


@router.get("/book.csv")
def book_csv(tx: Institution) -> Response:
    return live_book.csv_response(tx)


# ---- its credit box, quotas and pricing --------------------------------------------------------------------------
# The form's fields, each with how a person types it: money in major units of the book's currency, ratios in per
# cent, lists separated by commas; "number" and "whole" go to the model as typed, which parses them as the API does.
BOX_FIELDS = (
    ("min_score", "number"),
    ("max_score", "number"),
    ("min_pd", "percent"),
    ("max_pd", "percent"),
    ("min_amount", "money"),
    ("max_amount", "money"),
    ("min_tenor", "whole"),
    ("max_tenor", "whole"),
    ("min_age", "whole"),
    ("max_age", "whole"),
    ("min_income", "money"),
    ("max_dti", "percent"),
    ("provinces", "list"),
    ("products", "choice"),
)
TERM_FIELDS = (("daily_quota", "money"), ("monthly_quota", "money"), ("rate", "percent"), ("funding_cost", "percent"))
KINDS = dict(BOX_FIELDS + TERM_FIELDS)
PREVIEW_DAYS = 30
_SEPARATORS = re.compile(r"[\s,，、;；]+")


async def typed_form(request: Request) -> dict[str, Any]:
    """The settings form as typed: one string per field, the ticked products as a list."""
    form = await request.form()
    typed: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in KINDS}
    typed["products"] = [str(v) for v in form.getlist("products")]
    typed["previewed"] = str(form.get("previewed") or "")
    return typed


Typed = Annotated[dict[str, Any], Depends(typed_form)]


def _shown(kind: str, value: Any, currency: str) -> Any:
    """A stored value as the form shows it for editing (major units, per cent, a comma list)."""
    if value is None:
        return [] if kind == "choice" else ""
    if kind == "money":
        return str(from_minor(value, currency))
    if kind == "percent":
        return format(Decimal(str(value)) * 100, "f").rstrip("0").rstrip(".") or "0"
    if kind == "choice":
        return list(value)
    if kind == "list":
        return ", ".join(value)
    return str(value)


def _as_typed(inst: institutions.Institution, currency: str) -> dict[str, Any]:
    return {name: _shown(KINDS[name], value, currency) for name, value in _terms(inst).items()}


def _terms(inst: institutions.Institution) -> dict[str, Any]:
    """The form's fields as the model holds them."""
    return {**{n: getattr(inst.credit_box, n) for n, _ in BOX_FIELDS}, **{n: getattr(inst, n) for n, _ in TERM_FIELDS}}


def _written(words: Words, kind: str, value: Any, currency: str) -> str:
    """A term as a person reads it: money with its currency, ratios in per cent, "—" for no bound or no list."""
    if value is None:
        return "—"
    if kind == "money":
        return words.money(value, currency)
    if kind == "percent":
        return words.percent(Decimal(str(value)))
    if kind in ("list", "choice"):
        return ", ".join(value)
    return words.number(value)


def _parse(kind: str, text: Any, name: str, currency: str) -> Any:
    """One typed value in the model's terms (minor units, ratios, tuples); an empty field is left to the model's
    default (no bound), or its "field required"."""
    if kind == "choice":
        return tuple(text) or None
    if kind == "list":
        return tuple(p for p in _SEPARATORS.split(text) if p) or None
    if kind == "money":
        return to_minor(text.replace(",", ""), currency, field=name)
    if kind == "percent":
        try:
            ratio = Decimal(text.rstrip("%").strip()) / 100
        except InvalidOperation:
            raise ValidationError(f"{text!r} is not a number", field=name) from None
        return str(ratio)
    return text


def _changed(
    words: Words, current: institutions.Institution, typed: dict[str, Any], currency: str
) -> tuple[institutions.Institution | None, dict[str, str]]:
    """The institution as the form would leave it, validated by the API's own model, or every field's error in the
    reader's words."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, kind in KINDS.items():
        if typed[name] in ("", []):
            continue
        try:
            values[name] = _parse(kind, typed[name], name, currency)
        except ValidationError:
            errors[name] = (
                words("portal2.error.money", currency=currency, digits=minor_digits(currency))
                if kind == "money"
                else words("portal2.error.number")
            )
    data = current.model_dump(mode="json")
    data["credit_box"] = {n: values[n] for n, _ in BOX_FIELDS if n in values}
    for name, _ in TERM_FIELDS:
        data.pop(name)
        if name in values:
            data[name] = values[name]
    try:
        changed = institutions.Institution.model_validate(data)
    except ModelError as failed:
        for e in failed.errors():
            field = str(e["loc"][-1]) if e["loc"] else "form"
            errors.setdefault(field, _said(words, field, e, currency))
        return None, errors
    return (None, errors) if errors else (changed, errors)


PARSING = {
    "int_parsing": "portal2.error.whole",
    "int_from_float": "portal2.error.whole",
    "missing": "portal2.error.required",
}
LOWER = {"monthly_quota": "daily_quota"}  # the field an upper bound's range error names, beside min_* for max_*


def _said(words: Words, field: str, error: Any, currency: str) -> str:
    """The model's refusal of a field in the reader's words, a bound written as the field is typed (per cent,
    money with its currency); what the pages have no words for stays as the model says it."""
    kind, limits = KINDS.get(field), error.get("ctx", {})
    if error["type"] in PARSING:
        return words(PARSING[error["type"]])
    if error["type"].endswith("_parsing"):
        return words("portal2.error.number")
    bound = next((key for key in ("ge", "gt", "le", "lt") if key in limits), None)
    if bound is not None:
        value = limits[bound]
        shown = (
            words.percent(Decimal(str(value)), 0)
            if kind == "percent"
            else words.money(int(value), currency)
            if kind == "money"
            else words.number(value)
        )
        return words(f"portal2.error.{bound}", bound=shown)
    lower = LOWER.get(field, f"min_{field[4:]}" if field.startswith("max_") else None)
    if error["type"] == "value_error" and lower in KINDS:
        return words("portal2.error.below", other=words(f"portal2.field.{lower}"))
    return str(error["msg"]).removeprefix("Value error, ")


def _fingerprint(inst: institutions.Institution) -> str:
    """What the preview showed, so a save stores exactly the terms previewed."""
    return hashlib.sha256(json.dumps(inst.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _preview(
    tx: Visit, current: institutions.Institution, changed: institutions.Institution, currency: str
) -> dict[str, Any]:
    """The changed box, pricing and daily quota against the stored drawdowns of the last 30 business days."""
    last = tx.servicing.business_date()
    first = last - timedelta(days=PREVIEW_DAYS - 1)
    change = BoxChange.of(*matching.box_inputs(tx.scope, first, last), current, changed)
    over_before, over_after = change.days_over_quota()
    was, now = _terms(current), _terms(changed)
    sides = (("before", was), ("after", now))
    return {
        "first": first,
        "last": last,
        "totals": change.totals(),
        "criteria": change.criteria(),
        "over_quota": {"before": over_before, "after": over_after},
        "changes": [
            {"field": n, **{side: _written(tx.words, k, terms[n], currency) for side, terms in sides}}
            for n, k in KINDS.items()
            if was[n] != now[n]
        ],
        "fingerprint": _fingerprint(changed),
    }


def _settings_page(tx: Visit, status: int = 200, **context: Any) -> Response:
    code = tx.principal.tenant
    current = matching.institution(tx.scope, code)
    currency = tx.matching.currency_of(current)
    context.setdefault("typed", _as_typed(current, currency))
    return tx.render(
        "portal/settings.html",
        status=status,
        institution=current,
        currency=currency,
        products=sorted(p.code for p in tx.servicing.products()),
        box_fields=BOX_FIELDS,
        term_fields=TERM_FIELDS,
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/settings")
def settings(tx: Institution, done: str | None = None) -> Response:
    """Its credit box, quotas and pricing, as the API's GET /v1/institutions/{code} has them, to change."""
    return _settings_page(tx, saved=done == "saved")


@router.post("/settings/preview")
def preview_settings(tx: Institution, typed: Typed) -> Response:
    """How the typed terms would have answered the last 30 days of drawdowns, beside the current ones; nothing is
    saved. Bad input is answered beside its field (422)."""
    current = matching.institution(tx.scope, tx.principal.tenant)
    currency = tx.matching.currency_of(current)
    changed, errors = _changed(tx.words, current, typed, currency)
    if changed is None:
        return _settings_page(tx, 422, typed=typed, errors=errors)
    return _settings_page(tx, typed=typed, preview=_preview(tx, current, changed, currency))


@router.post("/settings")
def save_settings(tx: Institution, typed: Typed) -> Response:
    """Save the previewed terms through the API's own call (same checks, same audit row). Terms typed after the
    preview are previewed again instead of saved."""
    code = tx.principal.tenant
    current = matching.institution(tx.scope, code)
    currency = tx.matching.currency_of(current)
    changed, errors = _changed(tx.words, current, typed, currency)
    if changed is None:
        return _settings_page(tx, 422, typed=typed, errors=errors)
    if typed["previewed"] != _fingerprint(changed):
        return _settings_page(tx, typed=typed, preview=_preview(tx, current, changed, currency), stale=True)
    with tx.attempt() as failed:
        update_institution(tx, code, changed)
    if failed:
        error = failed[0]
        return _settings_page(tx, 422, typed=typed, errors={error.field or "form": tx.words.error(error)})
    return tx.redirect("/portal/settings?done=saved")


# ---- its book: disclosure figures and its collections desk -------------------------------------------------------
def _quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _own_rows(figures: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(figures["metrics"][name]["rows"])


@router.get("/figures")
def figures(tx: Institution, quarter: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    """Day-1 delinquency, 30-day collection and the 30+ vintages of its loans for a quarter: the figures the API's
    GET /v1/portfolio/metrics gives its key (the same computation, shared with it)."""
    closed = tx.servicing.business_date() - timedelta(days=1)
    chosen = (quarter or "").strip() or _quarter_of(closed)
    currency = tx.matching.currency_of(matching.institution(tx.scope, tx.principal.tenant))  # its loans' (`funds_in`)
    try:
        found = quarter_metrics(tx, chosen, None, "calendar-month")
    except OpeniceError as error:
        return tx.render("portal/figures.html", status=422, quarter=chosen, error=error, currency=currency)
    vintages: dict[str, list[dict[str, Any]]] = {}
    for row in _own_rows(found, "vintage_30_plus"):
        vintages.setdefault(row["group"]["origination_month"], []).append(row)
    months_on_book = max((len(rows) for rows in vintages.values()), default=0)
    return tx.render(
        "portal/figures.html",
        quarter=chosen,
        figures=found,
        currency=currency,
        dues={name: _own_rows(found, name) for name in ("day1_delinquency_rate", "collection_rate_30d")},
        vintages=vintages,
        vintage_series=[  # in basis points, which the chart divides into per cent
            {"name": month, "values": [round((r["value"] or 0) * 10_000) for r in rows]}
            for month, rows in vintages.items()
        ],
        months_on_book=list(range(months_on_book)),
    )


@router.get("/collections")
def collections(
    tx: Institution,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """How the desk working its loans did between two business days (the API's GET /v1/collections/performance):
    per stage, cases opened and escalated; per agent, contacts, promises and what they brought in."""
    today = tx.servicing.business_date()
    first, last = start or today.replace(day=1), end or today
    try:
        found = tx.collections.performance(tx.principal, first, last)
    except OpeniceError as error:
        return tx.render("portal/collections.html", status=422, first=first, last=last, error=error)
    return tx.render("portal/collections.html", first=first, last=last, performance=found)


# ---- settlement with the platform ------------------------------------------------------------------------------
SIDES: dict[str, Any] = {"lines": settlement.LINES, "totals_of": totals}  # the lines in order, each side's sum


def _settlement_window(tx: Visit, period: str, first: str, last: str) -> tuple[settlement.Period, date, date]:
    """The statements asked for: by day or month, from and to as typed (default: the business date's month)."""
    if period not in ("day", "month"):
        raise ValidationError("choose day or month", field="period")
    days = []
    for text, field in ((first, "from"), (last, "to")):
        try:
            days.append(date.fromisoformat(text.strip()) if text.strip() else None)
        except ValueError:
            raise ValidationError(f"{text!r} is not a date; write YYYY-MM-DD", field=field) from None
    end = days[1] or tx.servicing.business_date()
    return settlement.Period(period), days[0] or end.replace(day=1), end


def _statements(tx: Visit, period: str, first: str, last: str) -> list[servicing.StatementRow]:
    chosen, start, end = _settlement_window(tx, period, first, last)
    return servicing.settlement_statements(tx.scope, tx.principal.tenant, chosen, start, end)


@router.get("/settlements")
def settlements(
    tx: Institution,
    period: Annotated[str, Query(max_length=8)] = "month",
    first: Annotated[str, Query(alias="from", max_length=16)] = "",
    last: Annotated[str, Query(alias="to", max_length=16)] = "",
) -> Response:
    """Its statements with the platform by day or month, each line and the net, paid or not, and what is still
    owed either way: the API's own figures."""
    typed = {"period": period, "from": first, "to": last}
    outstanding = servicing.settlement_outstanding(tx.scope, tx.principal.tenant)
    try:
        rows = _statements(tx, period, first, last)
    except OpeniceError as error:
        return tx.render(
            "portal/settlements.html", status=422, typed=typed, error=error, rows=[], outstanding=outstanding, **SIDES
        )
    return tx.render(
        "portal/settlements.html",
        typed=typed,
        rows=[{"row": r, "totals": totals(r.statement.lines)} for r in rows],
        outstanding=outstanding,
        csv_query=urlencode({k: v for k, v in typed.items() if v}),
        **SIDES,
    )


@router.get("/settlements.csv")
def settlements_csv(
    tx: Institution,
    period: Annotated[str, Query(max_length=8)] = "month",
    first: Annotated[str, Query(alias="from", max_length=16)] = "",
    last: Annotated[str, Query(alias="to", max_length=16)] = "",
) -> Response:
    """The statements on the page as CSV: the API's table."""
    return Response(
        statements_csv(_statements(tx, period, first, last)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="settlements.csv"'},
    )
