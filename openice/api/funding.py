"""Institutions (credit boxes, quotas, pricing), the offers routed to them and their investigation reports."""

from __future__ import annotations

import time
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from openice.api.deps import IdempotencyKey, TransactionRoute, Tx, require
from openice.api.paging import MAX_ID, NumericId, PageParams, paged
from openice.api.views import (
    AMOUNT,
    CURRENCY,
    REPORT_FORMATS,
    MatchingRunView,
    Money,
    OfferAnswer,
    OfferAnswerIn,
    OfferView,
    Page,
    matching_run_view,
    money,
    offer_view,
    reply,
)
from openice.errors import ValidationError
from openice.matching import queries as matching
from openice.matching.institutions import Institution, TypedInstitution
from openice.matching.webhooks import SIGNATURE_HEADER, callback_message
from openice.money import to_minor
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["funding"], route_class=TransactionRoute)
Operator = Annotated[Tx, Depends(require(Role.OPERATOR))]
Funder = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INSTITUTION))]
Institutional = Annotated[Tx, Depends(require(Role.INSTITUTION))]


def update_institution(tx: Tx, code: str, body: Institution) -> Institution:
    """Create or change an institution, audited. An institution changes only its own, and only its own terms
    (`OWN_TERMS`: its credit box, quotas and pricing); operators change any."""
    if body.code != code:
        raise ValidationError(f"the body's code {body.code!r} differs from the path's {code!r}", field="code")
    if tx.principal.role is Role.INSTITUTION:
        agreed = matching.institution(tx.scope, code).platform_terms_changed(body)  # 404 for another institution
        if agreed:
            raise ValidationError("agreed with the platform: only its operators change it", field=agreed[0])
    tx.matching.register_institutions([body])
    tx.audit("institution.upserted", code, {"daily_quota": body.daily_quota, "monthly_quota": body.monthly_quota})
    return body


@router.put("/institutions/{code}", response_model=TypedInstitution)
def put_institution(code: str, body: TypedInstitution, tx: Funder) -> Any:
    """Create or change an institution (PUT is idempotent by nature); loans keep the terms they were made under.
    Quotas and the credit box's amounts are decimal strings of major units in `currency` (the book's when left
    out), converted once. An institution's key changes its own credit box, quotas and pricing, and nothing else."""
    book = tx.matching.terms_currency()
    return TypedInstitution.of(update_institution(tx, code, body.in_minor(book)), book)


@router.get("/institutions", response_model=Page[TypedInstitution])
def list_institutions(tx: Funder, page: PageParams) -> Any:
    book = tx.matching.terms_currency()
    return paged(matching.institutions(tx.scope, page), lambda institution: TypedInstitution.of(institution, book))


@router.get("/institutions/{code}", response_model=TypedInstitution)
def get_institution(code: str, tx: Funder) -> Any:
    found = matching.institution(tx.scope, code)
    return TypedInstitution.of(found, tx.matching.currency_of(found))


class ReferralSettlementIn(BaseModel):
    amount: str = Field(pattern=AMOUNT, examples=["1250.00"])
    currency: str = Field(pattern=CURRENCY, examples=["CNY"])


class ReferralSettlement(BaseModel):
    institution: str
    settled: Money
    loans: int = Field(description="loans whose referral receivable the payment cleared, wholly or in part")
    still_owed: Money
    settled_on: date


@router.post("/institutions/{code}/referral-settlements", status_code=201, response_model=ReferralSettlement)
def settle_referral_fees(code: str, body: ReferralSettlementIn, key: IdempotencyKey, tx: Operator) -> Any:
    """The institution paid referral fees it owes: the payment clears its loans' receivables, oldest loan first.
    More than it owes in that currency is refused."""
    matching.institution(tx.scope, code)  # 404 for another institution
    amount = to_minor(body.amount, body.currency)
    done = tx.book(
        "referral.settled",
        f"institution/{code}",
        lambda: tx.servicing.settle_referral_fees(code, amount, body.currency, tx.principal.scoped(key)),
        lambda settled: {"amount": amount, "currency": body.currency, "loans": settled["loans"]},
    )
    return reply(
        ReferralSettlement(
            institution=code,
            settled=money(done["settled"], body.currency),
            loans=done["loans"],
            still_owed=money(done["still_owed"], body.currency),
            settled_on=done["settled_on"],
        ),
        201,
    )


class QuotaPeriod(BaseModel):
    period: Literal["day", "month"]
    starts_on: date
    quota: Money
    used: Money = Field(description="reserved by offers and loans in the period")
    left: Money


class QuotaUsage(BaseModel):
    institution: str
    business_date: date
    periods: list[QuotaPeriod]


@router.get("/institutions/{code}/quota", response_model=QuotaUsage)
def get_quota(code: str, tx: Funder) -> Any:
    """How much of its daily and monthly quota the institution has taken on the current business date, in its
    currency as its terms are."""
    found = matching.institution(tx.scope, code)  # 404 for another institution
    usage, currency = tx.matching.quota_usage(code), tx.matching.currency_of(found)
    periods = [
        QuotaPeriod(**{**p, **{name: money(p[name], currency) for name in ("quota", "used", "left")}})
        for p in usage["periods"]
    ]
    return reply(QuotaUsage(institution=code, business_date=usage["business_date"], periods=periods))


@router.get("/matching-runs", response_model=Page[MatchingRunView])
def list_matching_runs(tx: Operator, page: PageParams) -> Any:
    """The batch optimisations run so far, with the shadow prices real-time routing prices institutions by (the
    latest run's); newest last, as every list is ordered by id. Money is in the book's currency, read once and only
    when there is a run (a book without products has neither)."""
    currency = cache(tx.matching.run_currency)
    return reply(paged(matching.matching_runs(tx.scope, page), lambda row: matching_run_view(row, currency())))


@router.get("/offers", response_model=Page[OfferView])
def list_offers(
    tx: Funder,
    page: PageParams,
    status: Annotated[str | None, Query(pattern="^(sent|accepted|declined|expired|failed)$")] = None,
    drawdown_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    found = matching.offers(tx.scope, page, status, drawdown_id)
    currencies = matching.offer_currencies(tx.scope, found.items)
    return paged(found, lambda offer: offer_view(offer, currencies[offer.drawdown_id]))


@router.get("/offers/{offer_id}", response_model=OfferView)
def get_offer(offer_id: NumericId, tx: Funder) -> Any:
    return _offer(tx, offer_id)


class SignedCallback(NamedTuple):
    header: str
    message: bytes  # what the signature covers: `webhooks.callback_message`


async def signed_callback(
    request: Request,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            max_length=1000,
            description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<METHOD> <path>\\n<body>'> under the "
            "institution's webhook secret: when present, a wrong, stale or reused signature is 401 (docs/gateway.md)",
        ),
    ] = None,
) -> SignedCallback | None:
    if signature is None:
        return None
    return SignedCallback(signature, callback_message(request.method, request.url.path, await request.body()))


Signed = Annotated[SignedCallback | None, Depends(signed_callback)]


def _offer(tx: Tx, offer_id: int) -> OfferView:
    row = matching.offer(tx.scope, offer_id)
    return offer_view(row, matching.offer_currencies(tx.scope, [row])[row.drawdown_id])


def answer_offer(
    tx: Tx, offer_id: int, key: str, body: OfferAnswerIn, accept: bool, signed: SignedCallback | None = None
) -> dict[str, Any]:
    """Accept or decline through the institution's own scope; the key makes a retried answer replay. A signed
    callback is checked first (a refused one changes nothing, and its key is not taken); an offer already
    answered, expired or passed on is a 409."""
    if signed is not None:
        tx.webhooks.check_callback(tx.principal.tenant, signed.header, signed.message, time.time())
    matching.offer(tx.scope, offer_id)  # 404 for another institution's offer
    verb = "accepted" if accept else "declined"

    def work() -> dict[str, Any]:
        result = tx.matching.answer(tx.principal, offer_id, accept, body.reason)
        tx.record_expiries(result["expired"])
        tx.audit(
            f"offer.{verb}",
            f"offer/{offer_id}",
            {"drawdown_id": result["drawdown_id"], "drawdown_status": result["status"], "loan_id": result["loan_id"]},
        )
        return OfferAnswer(
            offer=_offer(tx, offer_id),
            drawdown_status=result["status"],
            loan_id=result["loan_id"],
        ).model_dump(mode="json")

    return tx.idempotent(key, f"offer.{verb}:{offer_id}", body.model_dump(), work)


@router.post("/offers/{offer_id}/acceptance", status_code=201, response_model=OfferAnswer)
def accept_offer(
    offer_id: NumericId, key: IdempotencyKey, tx: Institutional, signed: Signed, body: OfferAnswerIn | None = None
) -> Any:
    """The institution funds the drawdown: the loan is originated under it (manual and webhook institutions;
    automatic ones answered when the offer was made)."""
    return answer_offer(tx, offer_id, key, body or OfferAnswerIn(), True, signed)


@router.post("/offers/{offer_id}/decline", status_code=201, response_model=OfferAnswer)
def decline_offer(
    offer_id: NumericId, key: IdempotencyKey, tx: Institutional, signed: Signed, body: OfferAnswerIn | None = None
) -> Any:
    """The institution passes: its quota is released and the drawdown goes to the next institution."""
    return answer_offer(tx, offer_id, key, body or OfferAnswerIn(), False, signed)


REPORT_TYPES = {"json": "application/json", "html": "text/html", "pdf": "application/pdf"}


@router.get(
    "/offers/{offer_id}/report",
    response_class=Response,
    responses=REPORT_FORMATS,
)
def get_report(
    offer_id: NumericId, tx: Funder, format: Annotated[Literal["json", "html", "pdf"], Query()] = "json"
) -> Response:
    """The pre-loan investigation report sent with the offer; personal data in it is masked."""
    matching.offer(tx.scope, offer_id)  # 404 for another institution's offer
    report = tx.matching.report(offer_id, format)
    if isinstance(report, dict):
        return JSONResponse(report)
    if isinstance(report, str):
        return HTMLResponse(report)
    return Response(
        report,
        media_type=REPORT_TYPES["pdf"],
        headers={"Content-Disposition": f'inline; filename="offer-{offer_id}.pdf"'},
    )
