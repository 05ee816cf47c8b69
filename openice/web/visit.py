"""One page request: the signed-in person behind the session cookie, the form token every post must carry, the
reader's language, and the page rendered from its template. A page runs inside its request's one transaction, as an
API operation does (`openice.api.deps.Tx`), with the person's `Principal` in place of a key's: the same tenancy,
the same services, no second path to data."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection

from openice.access.users import Users, WebSession
from openice.api.deps import Services, Tx, request_id, services
from openice.errors import OpeniceError, ValidationError
from openice.money import to_minor
from openice.storage.days import from_day
from openice.storage.uow import JoinedUnits
from openice.tenancy import Principal, Role
from openice.web.i18n import LOCALES, Words, best_locale

SESSION_COOKIE = "openice_session"
REASON_MOST = 500  # characters of a reason typed on a form (the request's body limit bounds what is sent)
LANG_COOKIE = "openice_lang"
STATIC = Path(__file__).parent / "static"


class Front(StrEnum):
    """The four front-ends, each at its own path, each for its own roles."""

    APP = "app"
    PORTAL = "portal"
    CONSOLE = "console"
    DESK = "desk"


ROLES: dict[Front, tuple[Role, ...]] = {
    Front.APP: (Role.BORROWER,),
    Front.PORTAL: (Role.INSTITUTION,),
    Front.CONSOLE: (Role.OPERATOR,),
    Front.DESK: (Role.COLLECTIONS, Role.OPERATOR),
}
HOME: dict[Role, Front] = {
    Role.BORROWER: Front.APP,
    Role.INSTITUTION: Front.PORTAL,
    Role.OPERATOR: Front.CONSOLE,
    Role.COLLECTIONS: Front.DESK,
}

templates = Environment(
    loader=PackageLoader("openice.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # the templates ship with the package: no need to look at each file's time on every page
)
templates.filters["from_day"] = from_day


class SignInNeeded(Exception):
    """No live session (or one still owing its TOTP code): the person is sent to sign in, then back here."""

    def __init__(self, front: Front, back: str, second_factor: bool = False) -> None:
        super().__init__(front.value)
        self.front, self.back, self.second_factor = front, back, second_factor

    def response(self) -> RedirectResponse:
        page = "second-factor" if self.second_factor else "login"
        return RedirectResponse(f"/{self.front.value}/{page}?next={quote(self.back)}", status_code=303)


def reader_locale(request: Request, person: WebSession | None = None) -> str:
    """The language chosen on the page (remembered in a cookie), else the person's own, else the browser's."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    return person.locale if person is not None else best_locale(request.headers.get("accept-language"))


@dataclass
class Visit(Tx):
    """A page request: a `Tx` whose caller is the person signed in on this front-end."""

    front: Front = Front.CONSOLE
    request: Request | None = None
    token: str = ""
    csrf_given: str | None = None
    person: WebSession = field(init=False)
    words: Words = field(init=False)

    def __post_init__(self) -> None:
        self.authenticate = self._signed_in

    def _signed_in(self, conn: Connection) -> Principal:
        assert self.request is not None
        back = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
        person = Users(JoinedUnits(conn)).session_on(conn, self.token) if self.token else None
        if person is None or person.second_factor_due:
            raise SignInNeeded(
                self.front, back if self.request.method == "GET" else f"/{self.front.value}/", bool(person)
            )
        if not self.readonly and not (self.csrf_given and secrets.compare_digest(self.csrf_given, person.csrf)):
            raise HTTPException(403, "csrf")
        self.person = person
        self.words = Words(reader_locale(self.request, person))
        return person.principal

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        assert self.request is not None
        html = page(template, self.words, self.front, self.person, request_path=self.request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def typed_amount(
        self,
        text: str,
        currency: str,
        field: str = "amount",
        *,
        zero_allowed: bool = False,
        most: int | None = None,
        over: str = "",
    ) -> int:
        """An amount typed in major units, as minor units; or why not, beside `field`, in the reader's language and
        in major units: not a number, not positive (zero only where allowed), above `most` (the message `over`)."""
        try:
            minor = to_minor(text.strip(), currency, field)
        except ValidationError:
            raise ValidationError(self.words("app.error.amount"), field=field) from None
        if minor < 0 or (minor == 0 and not zero_allowed):
            raise ValidationError(self.words("app.error.positive"), field=field)
        if most is not None and minor > most:
            raise ValidationError(self.words(over, amount=self.words.money(most, currency)), field=field)
        return minor

    def reason(self, text: str, field: str = "reason", *, required: bool = True) -> str:
        """A reason typed on a form, trimmed; or why not beside `field`, in the reader's language: missing (where
        one is required) or longer than REASON_MOST characters."""
        why = text.strip()
        if required and not why:
            raise ValidationError(self.words("account.reason.missing"), field=field)
        if len(why) > REASON_MOST:
            raise ValidationError(self.words("account.reason.too_long", most=REASON_MOST, given=len(why)), field=field)
        return why

    @contextmanager
    def attempt(self) -> Iterator[list[OpeniceError]]:
        """Run a form's service call in a savepoint: a domain error undoes only the call, is kept for the page to
        show beside its field, and the page is rendered again in the same transaction."""
        failed: list[OpeniceError] = []
        savepoint = self.conn.begin_nested()
        try:
            yield failed
        except OpeniceError as error:
            savepoint.rollback()
            failed.append(error)
        else:
            savepoint.commit()


def page(template: str, words: Words, front: Front, person: WebSession | None, **context: Any) -> str:
    return templates.get_template(template).render(
        t=words, front=front.value, person=person, csrf=person.csrf if person else "", **context
    )


def form_key() -> str:
    """A money form's own idempotency key, made when the form is drawn: posting it twice books once."""
    return f"web-{uuid.uuid4().hex}"


def visit(front: Front, *roles: Role) -> Callable[..., Any]:
    """The dependency of a page of `front` that these roles may see (default: the front-end's own roles)."""
    allowed = roles or ROLES[front]

    async def opened(request: Request, svc: Annotated[Services, Depends(services)]) -> Visit:
        given = None
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get("x-csrf-token")
            if given is None:
                form = await request.form()
                value = form.get("csrf")
                given = value if isinstance(value, str) else None
        return Visit(
            svc,
            request_id(request),
            _no_key,
            allowed,
            request.method in ("GET", "HEAD"),
            front=front,
            request=request,
            token=request.cookies.get(SESSION_COOKIE, ""),
            csrf_given=given,
        )

    return opened


def _no_key(_conn: Connection) -> Principal | None:
    return None  # replaced by the visit's own check of its session
