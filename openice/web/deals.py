"""The console's asset-backed deals (`/console/deals`): every deal issued with where it stands, and a deal's page
with the investor report of a month its month-end closed (in the page, as PDF and as JSON, the investor API's own
documents) and the stress grid of its pool from closing, in the reader's language."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from openice.api.deps import TransactionRoute
from openice.errors import ValidationError
from openice.funding import queries
from openice.funding.service import Funding
from openice.money import parse_rate
from openice.web.visit import Front, Visit, visit

router = APIRouter(prefix="/console/deals", include_in_schema=False, route_class=TransactionRoute)
Operator = Annotated[Visit, Depends(visit(Front.CONSOLE))]
BASE_CDR = "2%"  # the stress grid's 1x, as `openice abs project` takes it by default
NONE = Decimal(0)  # the grid's prepayment rates are its own; no recovery


@router.get("")
def deals(tx: Operator) -> Response:
    return tx.render("console/deals.html", deals=Funding(tx.joined).deal_lines())


@router.get("/{name}")
def deal(
    name: str,
    tx: Operator,
    month: Annotated[str, Query(max_length=7)] = "",
    cdr: Annotated[str, Query(max_length=12)] = BASE_CDR,
) -> Response:
    """A deal's month (the last closed by default) as investors read it, and its stress grid under `cdr` times 1 to
    5; a month not closed or a rate that is not one is said beside its field, and the rest of the page still shown.
    What the page shows is read first and the request's transaction ended, so the grid's projection and the charts
    hold no connection."""
    from openice.funding.projection import project, scenario, stress_grid
    from openice.funding.render import render_body, render_grid_body  # matplotlib, when a deal is shown

    queries.deal(tx.scope, name)  # 404 for a deal never issued
    funding = Funding(tx.joined)
    (line,) = [d for d in funding.deal_lines() if d.name == name]
    error = None
    chosen = month or (line.months[-1] if line.months else "")
    if chosen and chosen not in line.months:
        error = ValidationError(tx.words("deals.error.month", month=chosen), field="month")
        chosen = line.months[-1] if line.months else ""
    try:
        base = scenario(parse_rate(cdr, "cdr"), NONE, NONE, 0)
    except ValidationError:
        error = error or ValidationError(tx.words("deals.error.cdr", cdr=cdr), field="cdr")
        base = scenario(parse_rate(BASE_CDR, "cdr"), NONE, NONE, 0)
    made = funding.investor_report(name, chosen) if chosen else None
    sized, pool = funding.closing_pool(name)
    tx.release()
    report = render_body(made, tx.words.locale) if made is not None else None
    grid = project(sized, pool, stress_grid(base))
    return tx.render(
        "console/deal.html",
        status=422 if error else 200,
        deal=line,
        month=chosen,
        cdr=cdr,
        error=error,
        report=report,
        grid=render_grid_body(sized, grid, base, tx.words.locale),
    )


@router.get("/{name}/reports/{month}.{fmt}")
def deal_report(name: str, month: str, fmt: str, tx: Operator) -> Response:
    """The month's investor report as the investor API gives it: JSON, or PDF in the reader's language."""
    from openice.funding.render import render_pdf
    from openice.funding.report import report_document

    if fmt not in ("json", "pdf"):
        raise HTTPException(404)
    row = queries.deal(tx.scope, name)
    made = Funding(tx.joined).investor_report(row.name, month)
    disposition = {"Content-Disposition": f'attachment; filename="{row.name}-{month}.{fmt}"'}
    if fmt == "json":
        return JSONResponse(report_document(made), headers=disposition)
    return Response(render_pdf(made, tx.words.locale), media_type="application/pdf", headers=disposition)
