"""Institutions (credit boxes, quotas, pricing), the offers routed to them and their investigation reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from openice.api.deps import ReadScope, Svc, audit, require
from openice.api.keys import Principal, Role
from openice.api.paging import MAX_ID, NumericId, PageParams, rows
from openice.api.views import OfferView, Page, offer_view
from openice.errors import ValidationError
from openice.matching.institutions import Institution

router = APIRouter(prefix="/v1", tags=["funding"])
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Funder = Annotated[Principal, Depends(require(Role.OPERATOR, Role.INSTITUTION))]


@router.put("/institutions/{code}", response_model=Institution)
def put_institution(code: str, body: Institution, principal: Operator, svc: Svc, request: Request) -> Any:
    """Create or change an institution (PUT is idempotent by nature); loans keep the terms they were made under."""
    if body.code != code:
        raise ValidationError(f"the body's code {body.code!r} differs from the path's {code!r}", field="code")
    svc.matching.register_institutions([body])
    audit(request, svc, principal, "institution.upserted", code, {"daily_quota": body.daily_quota,
                                                                  "monthly_quota": body.monthly_quota})
    return body


@router.get("/institutions", response_model=Page[Institution])
def list_institutions(principal: Funder, scope: ReadScope, page: PageParams) -> Any:
    found = rows(scope, "institutions", page)
    return Page(items=[Institution.model_validate_json(r.definition) for r in found.items],
                next_cursor=found.next_cursor)


@router.get("/institutions/{code}", response_model=Institution)
def get_institution(code: str, principal: Funder, scope: ReadScope) -> Any:
    return Institution.model_validate_json(scope.get("institutions", code, "code").definition)


@router.get("/offers", response_model=Page[OfferView])
def list_offers(principal: Funder, scope: ReadScope, page: PageParams,
                status: Annotated[str | None, Query(pattern="^(sent|accepted|declined|failed)$")] = None,
                drawdown_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Any:
    found = rows(scope, "offers", page, status=status, drawdown_id=drawdown_id)
    return Page(items=[offer_view(r) for r in found.items], next_cursor=found.next_cursor)


@router.get("/offers/{offer_id}", response_model=OfferView)
def get_offer(offer_id: NumericId, principal: Funder, scope: ReadScope) -> Any:
    return offer_view(scope.get("offers", offer_id, "offer_id"))


REPORT_TYPES = {"json": "application/json", "html": "text/html", "pdf": "application/pdf"}


@router.get("/offers/{offer_id}/report", response_class=Response, responses={200: {"content": {
    "application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def get_report(offer_id: NumericId, principal: Funder, svc: Svc,
               format: Annotated[Literal["json", "html", "pdf"], Query()] = "json") -> Response:
    """The pre-loan investigation report sent with the offer; personal data in it is masked."""
    svc.owned(principal, "offers", offer_id, "offer_id")
    report = svc.matching.report(offer_id, format)
    if format == "json":
        return JSONResponse(report)
    if format == "html":
        return HTMLResponse(str(report))
    return Response(bytes(report), media_type=REPORT_TYPES["pdf"],  # type: ignore[arg-type]
                    headers={"Content-Disposition": f'inline; filename="offer-{offer_id}.pdf"'})
