"""The whole site `openice serve` runs: the JSON API, and over the same services the four front-ends (the borrower
app, the institution portal, the operator console and the collections desk), their sign-in, and their assets,
served from the package."""

from __future__ import annotations

import gc
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from openice.api.app import create_app
from openice.api.settings import Settings
from openice.web import borrower, console, desk, inbox, onboarding, portal, sign_in
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
    for module in (onboarding, borrower, inbox, console, desk, portal):
        app.include_router(module.router)
    _errors(app)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def landing(request: Request) -> HTMLResponse:
        """Where each kind of user signs in, and the API's documentation."""
        return HTMLResponse(page("landing.html", Words(reader_locale(request)), Front.CONSOLE, None))

    return app


def _errors(app: FastAPI) -> None:
    """A page that fails says so in the reader's language; the API keeps its problem+json."""
    api_http = app.exception_handlers[HTTPException]
    api_unexpected = app.exception_handlers[Exception]

    @app.exception_handler(SignInNeeded)
    async def _sign_in(_request: Request, exc: SignInNeeded) -> Response:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if not request.url.path.startswith(FRONT_PATHS):
            answer = api_http(request, exc)
            return await answer if isawaitable(answer) else answer
        words = Words(reader_locale(request))
        front = Front(request.url.path.split("/")[1])
        key = {403: "error.forbidden", 404: "error.not_found", 429: "error.busy"}.get(exc.status_code, "error.other")
        if exc.detail == "csrf":
            key = "error.csrf"
        html = page("error.html", words, front, None, message=words(key), status=exc.status_code)
        return HTMLResponse(html, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        answer = api_unexpected(request, exc)  # logs it with the request id
        answer = await answer if isawaitable(answer) else answer
        if not request.url.path.startswith(FRONT_PATHS):
            return answer
        words = Words(reader_locale(request))
        front = Front(request.url.path.split("/")[1])
        html = page("error.html", words, front, None, message=words("error.other"), status=500)
        return HTMLResponse(html, status_code=500)


def from_env() -> FastAPI:
    """The factory uvicorn workers call (`openice serve` passes its options through the environment); what is
    built at start-up is moved out of the garbage collector's view, as for the API alone."""
    app = create_site(Settings.load())
    gc.collect()
    gc.freeze()
    return app
