"""The whole site `openice serve` runs: the JSON API, and over the same services the four front-ends (the borrower
app, the institution portal, the operator console and the collections desk), their sign-in, and their assets,
served from the package."""

from __future__ import annotations

import gc
from collections.abc import Callable
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from openice.api.app import create_app
from openice.api.problems import STATUS
from openice.api.settings import Settings
from openice.errors import NotFound, OpeniceError
from openice.web import (
    borrower,
    console,
    deals,
    desk,
    inbox,
    institution_keys,
    integration,
    onboarding,
    portal,
    sign_in,
)
from openice.web.i18n import Words
from openice.web.visit import STATIC, Front, SignInNeeded, page, reader_locale

FRONT_PATHS = tuple(f"/{f.value}/" for f in Front)


def create_site(settings: Settings | None = None, **parts: Any) -> FastAPI:
    """`create_app`'s service with the front-ends added; tests pass the same engine, scorer and vault."""
    app = create_app(settings, **parts)
    app.mount("/assets", StaticFiles(directory=STATIC), name="assets")
    for front in Front:
        sign_in.install(front)
    app.include_router(sign_in.router)
    for module in (onboarding, borrower, inbox, console, deals, desk, portal, integration, institution_keys):
        app.include_router(module.router)
    _errors(app)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def landing(request: Request) -> HTMLResponse:
        """Where each kind of user signs in, and the API's documentation."""
        return HTMLResponse(page("landing.html", Words(reader_locale(request)), Front.CONSOLE, None))

    return app


def _errors(app: FastAPI) -> None:
    """A page that fails says so on a page, in the reader's language; the API keeps its problem+json. An unexpected
    error on a page still goes through the API's handler too, which logs it with the request id."""
    api = {
        kind: app.exception_handlers[kind] for kind in (HTTPException, OpeniceError, RequestValidationError, Exception)
    }

    def on_page(kind: type[Exception], status: Callable[[Any], int], message: Callable[[Words, Any], str]) -> None:
        async def handle(request: Request, exc: Any) -> Response:
            on_a_page = request.url.path.startswith(FRONT_PATHS)
            if not on_a_page or kind is Exception:
                answer = api[kind](request, exc)
                answer = await answer if isawaitable(answer) else answer
                if not on_a_page:
                    return answer
            words = Words(reader_locale(request))
            code = status(exc)
            html = page(
                "error.html",
                words,
                Front(request.url.path.split("/")[1]),
                None,
                message=message(words, exc),
                status=code,
            )
            return HTMLResponse(html, status_code=code)

        app.add_exception_handler(kind, handle)

    def http_message(words: Words, exc: HTTPException) -> str:
        if exc.detail == "csrf":
            return words("error.csrf")
        return words(
            {403: "error.forbidden", 404: "error.not_found", 429: "error.busy"}.get(exc.status_code, "error.other")
        )

    def domain_message(words: Words, exc: OpeniceError) -> str:
        return words("error.not_found") if isinstance(exc, NotFound) else words.error(exc, with_field=True)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(_request: Request, exc: SignInNeeded) -> Response:
        return exc.response()

    on_page(HTTPException, lambda exc: exc.status_code, http_message)
    on_page(OpeniceError, lambda exc: STATUS.get(exc.code, 400), domain_message)
    on_page(RequestValidationError, lambda _exc: 422, lambda words, _exc: words("error.input"))
    on_page(Exception, lambda _exc: 500, lambda words, _exc: words("error.other"))


def from_env() -> FastAPI:
    """The factory uvicorn workers call (`openice serve` passes its options through the environment); what is
    built at start-up is moved out of the garbage collector's view, as for the API alone."""
    app = create_site(Settings.load())
    gc.collect()
    gc.freeze()
    return app
