"""Asset-backed deals for their investors: an investor key sees the deals it is bound to and their monthly investor
reports (another deal is missing to it); operators see every deal."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from openice.api.deps import TransactionRoute, Tx, require
from openice.api.funding import REPORT_TYPES
from openice.api.paging import PageParams, paged
from openice.api.views import REPORT_FORMATS, DealView, Page, deal_view
from openice.funding import queries
from openice.funding.service import Funding
from openice.tenancy import Role

router = APIRouter(prefix="/v1", tags=["deals"], route_class=TransactionRoute)
Investor = Annotated[Tx, Depends(require(Role.OPERATOR, Role.INVESTOR))]
Month = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", examples=["2026-02"], description="YYYY-MM")]


@router.get("/deals", response_model=Page[DealView])
def list_deals(tx: Investor, page: PageParams) -> Any:
    """The deals the caller may read: an investor's own, every deal for operators."""
    return paged(queries.deals(tx.scope, page), deal_view)


@router.get(
    "/deals/{deal}/reports/{month}",
    response_class=Response,
    responses=REPORT_FORMATS,
)
def get_deal_report(
    deal: str,
    month: Month,
    tx: Investor,
    format: Annotated[Literal["json", "html", "pdf"], Query()] = "json",
    lang: Annotated[Literal["en", "zh"], Query(description="the language of the HTML and the PDF")] = "en",
) -> Response:
    """The deal's investor report of the month whose month-end closed (docs/funding.md, "Investor reports"): the
    pool, each tranche, the triggers and the reserve account, money as decimal strings with the currency; the HTML
    and the PDF in English or Chinese (`lang`), as `openice abs report --lang` writes them."""
    from openice.funding.render import render_html, render_pdf  # matplotlib and WeasyPrint, when asked for
    from openice.funding.report import report_document

    row = queries.deal(tx.scope, deal)  # 404 for a deal not the caller's
    report = Funding(tx.joined).investor_report(row.name, month)
    if format == "json":
        return JSONResponse(report_document(report))
    if format == "html":
        return HTMLResponse(render_html(report, lang))
    return Response(
        render_pdf(report, lang),
        media_type=REPORT_TYPES["pdf"],
        headers={"Content-Disposition": f'inline; filename="{row.name}-{month}.pdf"'},
    )
