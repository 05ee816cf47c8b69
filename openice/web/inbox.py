"""The borrower's messages (`/app/messages`): due reminders, overdue notices and a loan's end, read off each of the
borrower's loans on the business date (`openice.servicing.notices`), so they agree with what the loan pages show."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from openice.servicing import queries as servicing
from openice.servicing.notices import notices
from openice.tenancy import Window
from openice.web.onboarding import RegisteredRoute
from openice.web.visit import Front, Visit, visit

router = APIRouter(prefix="/app", include_in_schema=False, route_class=RegisteredRoute)
Borrower = Annotated[Visit, Depends(visit(Front.APP))]
LOANS = 100  # a borrower's loans on one page; no borrower has nearly as many


@router.get("/messages")
def messages(tx: Borrower) -> Response:
    today = tx.servicing.business_date()
    found = []
    for row in servicing.loans(tx.scope, Window(LOANS), None, None, None, None).items:
        found.extend(notices(servicing.account(tx.scope, row), today))
    found.sort(key=lambda n: (n.kind != "overdue", n.on))
    return tx.render("app/messages.html", notices=found, today=today)
