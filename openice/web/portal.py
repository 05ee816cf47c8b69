"""The institution portal (`/portal/`): the offers waiting for the institution's answer, each with its pre-loan
investigation report, accepted or declined with a reason through the same call as the API's; and its own book of
live loans by delinquency bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from babel.dates import format_datetime
from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, Response

from openice.api.deps import TransactionRoute
from openice.api.funding import answer_offer
from openice.api.views import OfferAnswerIn
from openice.errors import ValidationError
from openice.matching import queries as matching
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
    found = matching.offers(tx.scope, Window(PAGE, after), "sent", None)
    return tx.render(
        "portal/offers.html",
        offers=[{"row": o, "expires": expiry(tx.words, o.expires_at)} for o in found.items],
        next_after=found.last_key,
        done=done if done in ("accepted", "declined") else None,
    )


def _offer_page(tx: Visit, offer_id: int, status: int = 200, **context: Any) -> Response:
    offer = matching.offer(tx.scope, offer_id)  # another institution's offer is missing
    report = tx.matching.report(offer_id, "json")
    assert isinstance(report, dict)  # the json rendering is the report itself
    currencies = {p.code: p.currency for p in tx.servicing.products()}
    return tx.render(
        "portal/offer.html",
        status=status,
        offer=offer,
        expires=expiry(tx.words, offer.expires_at),
        report=report,
        currency=currencies[report["drawdown"]["product_code"]],
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
        if not accept and not reason.strip():
            raise ValidationError("say why", field="reason")
        answer_offer(tx, offer_id, key or form_key(), OfferAnswerIn(reason=reason.strip()), accept)
    if failed:
        return _offer_page(tx, offer_id, 422, error=failed[0], error_form=form, typed={"reason": reason})
    return tx.redirect(f"/portal/?done={'accepted' if accept else 'declined'}")


@router.post("/offers/{offer_id}/acceptance")
def accept(
    offer_id: int,
    tx: Institution,
    reason: Annotated[str, Form(max_length=500)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Fund the drawdown: the loan is originated under this institution."""
    return _answer(tx, offer_id, True, reason, key)


@router.post("/offers/{offer_id}/decline")
def decline(
    offer_id: int,
    tx: Institution,
    reason: Annotated[str, Form(max_length=500)] = "",
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
