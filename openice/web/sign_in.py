"""Signing in and out of every front-end, the TOTP step, setting a new password with an operator's one-time reset
link, and the language switch.

The sign-in form has no session yet, so its forgery guard is a double-submit token: a random value in a cookie of
its own that the form must echo. A successful sign-in always makes a new session token (a token planted before
sign-in is never promoted: no session fixation) and sends the person to the front-end of their role."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from openice.access.users import MIN_PASSWORD, Throttled, Users
from openice.api.deps import Services, request_id, services
from openice.errors import ValidationError
from openice.storage.uow import EngineUnits
from openice.tenancy import Role
from openice.web.i18n import LOCALES, Words
from openice.web.visit import HOME, LANG_COOKIE, SESSION_COOKIE, Front, page, reader_locale

FORM_COOKIE = "openice_form"
YEAR = 365 * 24 * 3600

router = APIRouter(include_in_schema=False)


def _safe_next(front: Front, target: str | None) -> str:
    """Only a path on this site (never another host) is a place to go back to."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"/{front.value}/"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def unsigned_page(request: Request, front: Front, template: str, status: int = 200, **context: Any) -> Response:
    """A page whose form is posted before there is a session (signing in, signing up): it carries the double-submit
    token that `form_ok` checks."""
    form_token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    html = page(template, Words(reader_locale(request)), front, None, form_token=form_token, **context)
    response = HTMLResponse(html, status_code=status)
    set_cookie(response, request, FORM_COOKIE, form_token)
    return response


def _sign_in_page(
    request: Request, front: Front, error: str | None = None, status: int = 200, **context: str
) -> Response:
    nxt = _safe_next(front, request.query_params.get("next"))
    done = request.query_params.get("reset") == "done"
    return unsigned_page(request, front, "sign_in.html", status, error=error, next=nxt, reset_done=done, **context)


def reset_path(role: str, token: str) -> str:
    """Where a user of this role sets a new password with a reset link's token (the console and the command
    line give the same link)."""
    return f"/{HOME[Role(role)].value}/reset?token={token}"


def _reset_page(request: Request, front: Front, token: str, status: int = 200, **context: Any) -> Response:
    """The new-password form of a reset link; the link's token is in its address, so no page of it is referred."""
    context.setdefault("dead", not token)
    response = unsigned_page(request, front, "reset.html", status, token=token, min_password=MIN_PASSWORD, **context)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def form_ok(request: Request, given: str) -> bool:
    expected = request.cookies.get(FORM_COOKIE, "")
    return bool(expected) and secrets.compare_digest(expected, given)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def install(front: Front) -> APIRouter:
    """The sign-in, second-factor and sign-out routes of one front-end."""
    prefix = f"/{front.value}"

    @router.get(f"{prefix}/login", response_class=HTMLResponse, name=f"{front.value}-login")
    def login_form(request: Request) -> Response:
        return _sign_in_page(request, front)

    @router.post(f"{prefix}/login", name=f"{front.value}-login-post")
    async def login(
        request: Request,
        svc: Annotated[Services, Depends(services)],
        username: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        form_token: Annotated[str, Form(max_length=64)] = "",
        next: Annotated[str, Form(max_length=512)] = "",
    ) -> Response:
        words = Words(reader_locale(request))
        if not form_ok(request, form_token):
            return _sign_in_page(request, front, words("sign_in.expired"), 403, username=username)
        if not username or not password:
            return _sign_in_page(request, front, words("sign_in.missing"), 422, username=username)
        users = Users(EngineUnits(svc.engine))
        try:
            signed = await run_in_threadpool(users.sign_in, username, password, client_address(request))
        except Throttled as throttled:
            wait = max(1, throttled.wait // 60)
            return _sign_in_page(request, front, words("sign_in.throttled", minutes=wait), 429, username=username)
        if signed is None:
            return _sign_in_page(request, front, words("sign_in.wrong"), 401, username=username)
        token, person = signed
        home = HOME[person.role]
        if person.second_factor_due:
            target = f"/{home.value}/second-factor?next={_safe_next(home, next if home is front else None)}"
        else:
            target = _safe_next(home, next if home is front else None)
        response = RedirectResponse(target, status_code=303)
        set_cookie(response, request, SESSION_COOKIE, token)
        return response

    @router.get(f"{prefix}/second-factor", response_class=HTMLResponse, name=f"{front.value}-second-factor")
    def second_factor_form(request: Request) -> Response:
        return _sign_in_page(request, front, second_factor="yes")

    @router.post(f"{prefix}/second-factor", name=f"{front.value}-second-factor-post")
    async def second_factor(
        request: Request,
        svc: Annotated[Services, Depends(services)],
        code: Annotated[str, Form(max_length=16)] = "",
        form_token: Annotated[str, Form(max_length=64)] = "",
        next: Annotated[str, Form(max_length=512)] = "",
    ) -> Response:
        words = Words(reader_locale(request))
        if not form_ok(request, form_token):
            return _sign_in_page(request, front, words("sign_in.expired"), 403, second_factor="yes")
        token = request.cookies.get(SESSION_COOKIE, "")
        person = await run_in_threadpool(Users(EngineUnits(svc.engine)).check_second_factor, token, code)
        if person is None:
            return _sign_in_page(request, front, words("sign_in.wrong_code"), 401, second_factor="yes")
        return RedirectResponse(_safe_next(front, next), status_code=303)

    @router.get(f"{prefix}/reset", response_class=HTMLResponse, name=f"{front.value}-reset")
    def reset_form(request: Request, token: str = "") -> Response:
        return _reset_page(request, front, token[:64])

    @router.post(f"{prefix}/reset", name=f"{front.value}-reset-post")
    async def reset(
        request: Request,
        svc: Annotated[Services, Depends(services)],
        token: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        form_token: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        """A live link's token sets the new password (once); every session of the user ends."""
        words = Words(reader_locale(request))
        if not form_ok(request, form_token):
            return _reset_page(request, front, token, 403, error=ValidationError(words("error.csrf"), field="form"))
        users = Users(EngineUnits(svc.engine))
        try:
            done = await run_in_threadpool(users.reset_with_link, token, password, request_id(request))
        except ValidationError:
            refused = ValidationError(words("signup.error.password", n=MIN_PASSWORD), field="password")
            return _reset_page(request, front, token, 422, error=refused)
        if done is None:
            return _reset_page(request, front, token, 410, dead=True)
        return RedirectResponse(f"/{HOME[Role(done['role'])].value}/login?reset=done", status_code=303)

    @router.post(f"{prefix}/logout", name=f"{front.value}-logout")
    async def logout(
        request: Request,
        svc: Annotated[Services, Depends(services)],
        csrf: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        users = Users(EngineUnits(svc.engine))
        person = await run_in_threadpool(users.session, token) if token else None
        if person is not None and secrets.compare_digest(person.csrf, csrf):
            await run_in_threadpool(users.sign_out, token)
        response = RedirectResponse(f"{prefix}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


@router.get("/lang", name="language")
def language(request: Request, to: str = "en", next: str = "/") -> Response:
    """Switch the pages' language; the choice is remembered for a year in this browser."""
    response = RedirectResponse(_safe_next(Front.CONSOLE, next), status_code=303)
    if to in LOCALES:
        set_cookie(response, request, LANG_COOKIE, to, max_age=YEAR)
    return response
