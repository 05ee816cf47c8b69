"""Becoming a borrower in the app (`/app/`): sign up with a mobile number and a one-time code (the same way, a
borrower who forgot their password sets a new one), register one's
identity with consent, apply, and read the decision: the line with its grade's price and APR, or the reasons in
plain words. A borrower who has signed up but not registered has a tenant that matches no row, so every other page
of the app sends them to register first (`RegisteredRoute`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from openice.access.sign_up import CODE_LIFE, SignUps, TooSoon, Verdict
from openice.access.sms import SENDERS
from openice.access.users import MIN_PASSWORD, Throttled, Users
from openice.api.deps import Services, TransactionRoute, request_id, services
from openice.api.lending import submit_application
from openice.decisioning import queries as lending
from openice.decisioning.domain import MONEY_FIELDS, Employment, TypedApplication, parse
from openice.decisioning.identity import mask_mobile
from openice.decisioning.reason_words import explained
from openice.decisioning.synthetic import PURPOSES
from openice.errors import Conflict, OpeniceError, ValidationError
from openice.money import MAX_MINOR
from openice.servicing.products import PPM, LoanProduct
from openice.storage.uow import EngineUnits
from openice.web.i18n import Words
from openice.web.sign_in import client_address, form_ok, set_cookie, unsigned_page
from openice.web.visit import SESSION_COOKIE, Front, Visit, form_key, reader_locale, visit

SIGN_UP_COOKIE = "openice_sign_up"  # the number being signed up, from its code being sent to the code given
RESET_COOKIE = "openice_reset"  # the number whose password is being reset, likewise
DEVICE_COOKIE = "openice_device"  # this browser, the device an application names for the fraud rules
YEAR = 365 * 24 * 3600
CONSENT_VERSION = "2026-01"  # the consent text the borrower agreed to, recorded in the audit trail
EMPLOYMENT = get_args(Employment)
CODE_VERDICTS = {
    Verdict.WRONG: "signup.error.code_wrong",
    Verdict.EXPIRED: "signup.error.code_expired",
    Verdict.EXHAUSTED: "signup.error.code_exhausted",
}
OPTIONAL_MONEY = ("existing_debt_monthly", "existing_debt_balance")  # left empty: none
# A decline's reason codes (the text before the colon) in plain words; any other code reads as `signup.reason.other`.
REASONS = {
    "cut-off": "signup.reason.cut_off",
    "affordability": "signup.reason.affordability",
    "shared_national_id": "signup.reason.identity",
    "shared_mobile": "signup.reason.identity",
    "shared_device": "signup.reason.device",
    "velocity_national_id": "signup.reason.velocity",
    "velocity_mobile": "signup.reason.velocity",
    "velocity_device": "signup.reason.velocity",
    "blacklist": "signup.reason.records",
    "age_range": "signup.reason.age",
    "anomaly": "signup.reason.unusual",
}


class RegisteredRoute(TransactionRoute):
    """A page of the app for a borrower who has registered their identity; one who has only signed up is sent to
    register (their `Principal`'s tenant matches nothing, so the page would show nothing)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        @wraps(endpoint)
        def registered(**arguments: Any) -> Any:
            tx: Visit = arguments["tx"]
            if tx.person.tenant is None:
                return tx.redirect("/app/identity")
            return endpoint(**arguments)

        super().__init__(path, registered, **kwargs)


public = APIRouter(prefix="/app", include_in_schema=False)
signed_up = APIRouter(prefix="/app", include_in_schema=False, route_class=TransactionRoute)
registered = APIRouter(prefix="/app", include_in_schema=False, route_class=RegisteredRoute)
Borrower = Annotated[Visit, Depends(visit(Front.APP))]
Svc = Annotated[Services, Depends(services)]


def _sign_ups(svc: Services) -> SignUps:
    units = EngineUnits(svc.engine)
    return SignUps(units, SENDERS[svc.settings.sms](units), svc.vault)


def _sign_up_page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    response = unsigned_page(request, Front.APP, template, status, min_password=MIN_PASSWORD, **context)
    if DEVICE_COOKIE not in request.cookies:
        set_cookie(response, request, DEVICE_COOKIE, f"web-{form_key()[4:]}", max_age=YEAR)
    return response


def _refused(words: Words, field: str, key: str, **values: Any) -> ValidationError:
    return ValidationError(words(key, **values), field=field)


@public.get("/signup")
def sign_up_form(request: Request) -> Response:
    return _sign_up_page(request, "app/signup.html", mobile=request.cookies.get(SIGN_UP_COOKIE, ""))


def _send_code(
    request: Request,
    mobile: str,
    form_token: str,
    template: str,
    cookie: str,
    follow: str,
    send: Callable[[Words, int], str],
) -> Response:
    """Sign-up and password reset alike: `send(words, minutes)` sends a one-time code and gives the number, kept in
    `cookie` until the code is given on `follow`; a refusal is answered beside the number on `template`."""
    words = Words(reader_locale(request))
    error, status = None, 422
    if not form_ok(request, form_token):
        error, status = _refused(words, "form", "error.csrf"), 403
    else:
        try:
            number = send(words, int(CODE_LIFE.total_seconds() // 60))
        except ValidationError:
            error = _refused(words, "mobile", "signup.error.mobile")
        except TooSoon as wait:
            error, status = _refused(words, "mobile", "signup.error.too_soon", seconds=wait.wait), 429
    if error is not None:
        return _sign_up_page(request, template, status, error=error, mobile=mobile)
    response = RedirectResponse(follow, status_code=303)
    set_cookie(response, request, cookie, number, max_age=3600)
    return response


def _code_page(request: Request, cookie: str, restart: str, template: str) -> Response:
    """The page that takes the code sent to the number in `cookie`; without one, back to `restart`."""
    number = request.cookies.get(cookie)
    if not number:
        return RedirectResponse(restart, status_code=303)
    return _sign_up_page(request, template, number=number, masked=mask_mobile(number))


def _check_code(
    request: Request,
    form_token: str,
    cookie: str,
    restart: str,
    template: str,
    check: Callable[[str, Words], Verdict],
    done: Callable[[], Response],
) -> Response:
    """Sign-up and password reset alike: `check(number, words)` judges the code given for the number in `cookie`
    (and, when right, does the work); a wrong code, a password too short, a number taken or too many tries are
    answered beside their field on `template`, anything else starts again at `restart`. A right code ends with
    `done()`, the cookie dropped."""
    number = request.cookies.get(cookie)
    if not number:
        return RedirectResponse(restart, status_code=303)
    words = Words(reader_locale(request))
    error, status = None, 422
    if not form_ok(request, form_token):
        error, status = _refused(words, "form", "error.csrf"), 403
    else:
        try:
            verdict = check(number, words)
            if verdict is not Verdict.ACCEPTED:
                error = _refused(words, "code", CODE_VERDICTS[verdict])
        except ValidationError as refused:
            if refused.field != "password":
                return RedirectResponse(restart, status_code=303)
            error = _refused(words, "password", "signup.error.password", n=MIN_PASSWORD)
        except Conflict:  # signing up a number another borrower took meanwhile
            error = _refused(words, "code", "signup.error.taken")
        except Throttled as throttled:
            wait = max(1, throttled.wait // 60)
            error, status = _refused(words, "code", "sign_in.throttled", minutes=wait), 429
    if error is not None:
        return _sign_up_page(request, template, status, error=error, number=number, masked=mask_mobile(number))
    response = done()
    response.delete_cookie(cookie, path="/")
    return response


@public.post("/signup")
def send_code(
    request: Request,
    svc: Svc,
    mobile: Annotated[str, Form(max_length=32)] = "",
    form_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Send a one-time code to the number (kept in a cookie of its own until the code is given)."""

    def send(words: Words, minutes: int) -> str:
        return _sign_ups(svc).send_code(
            mobile,
            client_address(request),
            lambda code: words("signup.sms", code=code, minutes=minutes),
            lambda: words("account.sms.registered"),
        )

    return _send_code(request, mobile, form_token, "app/signup.html", SIGN_UP_COOKIE, "/app/signup/code", send)


@public.get("/signup/code")
def code_form(request: Request) -> Response:
    return _code_page(request, SIGN_UP_COOKIE, "/app/signup", "app/signup_code.html")


@public.post("/signup/code")
def confirm_code(
    request: Request,
    svc: Svc,
    code: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    form_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A right code makes the borrower user and signs them in; anything else is answered beside its field."""
    signed: list[str] = []

    def check(number: str, words: Words) -> Verdict:
        verdict, session = _sign_ups(svc).confirm(number, code, password, words.locale, client_address(request))
        if session is not None:
            signed.append(session[0])
        return verdict

    def done() -> Response:
        response = RedirectResponse("/app/identity", status_code=303)
        set_cookie(response, request, SESSION_COOKIE, signed[0])
        return response

    return _check_code(request, form_token, SIGN_UP_COOKIE, "/app/signup", "app/signup_code.html", check, done)


@public.get("/forgot")
def forgot_form(request: Request) -> Response:
    return _sign_up_page(request, "app/forgot.html", mobile=request.cookies.get(RESET_COOKIE, ""))


@public.post("/forgot")
def send_reset_code(
    request: Request,
    svc: Svc,
    mobile: Annotated[str, Form(max_length=32)] = "",
    form_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Send a reset code to the number if a borrower signed up with it; the answer is the same either way."""

    def send(words: Words, minutes: int) -> str:
        return _sign_ups(svc).send_reset_code(
            mobile, client_address(request), lambda code: words("account.sms.reset", code=code, minutes=minutes)
        )

    return _send_code(request, mobile, form_token, "app/forgot.html", RESET_COOKIE, "/app/forgot/code", send)


@public.get("/forgot/code")
def reset_form(request: Request) -> Response:
    return _code_page(request, RESET_COOKIE, "/app/forgot", "app/forgot_code.html")


@public.post("/forgot/code")
def reset_password(
    request: Request,
    svc: Svc,
    code: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    form_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A right code sets the new password and ends every session of the user; they sign in with it."""

    def check(number: str, _words: Words) -> Verdict:
        return _sign_ups(svc).reset(number, code, password, client_address(request), request_id(request))

    def done() -> Response:
        return RedirectResponse("/app/login?reset=done", status_code=303)

    return _check_code(request, form_token, RESET_COOKIE, "/app/forgot", "app/forgot_code.html", check, done)


@signed_up.get("/identity")
def identity_form(tx: Borrower) -> Response:
    if tx.person.tenant is not None:
        return tx.redirect("/app/")
    return tx.render("app/identity.html", typed={}, consent_version=CONSENT_VERSION)


def _identity_error(words: Words, error: OpeniceError) -> OpeniceError:
    """The registration's refusal beside its field, in the reader's language."""
    if isinstance(error, Conflict):
        return _refused(words, "national_id", "signup.error.national_id_taken")
    keys = {
        "name": "signup.error.name",
        "national_id": "signup.error.national_id",
        "date_of_birth": "signup.error.date_of_birth",
        "province": "signup.error.province",
        "city": "signup.error.city",
        "consent": "signup.error.consent",
    }
    return _refused(words, error.field, keys[error.field]) if error.field in keys else error


@signed_up.post("/identity")
def identity(
    tx: Borrower,
    name: Annotated[str, Form(max_length=64)] = "",
    national_id: Annotated[str, Form(max_length=32)] = "",
    date_of_birth: Annotated[str, Form(max_length=16)] = "",
    province: Annotated[str, Form(max_length=32)] = "",
    city: Annotated[str, Form(max_length=32)] = "",
    consent: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Register the borrower as the API does (their identity encrypted) and make this user that borrower."""
    if tx.person.tenant is not None:
        return tx.redirect("/app/")
    typed = dict(name=name, national_id=national_id, date_of_birth=date_of_birth, province=province, city=city)
    with tx.attempt() as failed:
        if consent != CONSENT_VERSION:
            raise ValidationError("consent is required", field="consent")
        assert tx.request is not None
        mobile = tx.person.username
        device = tx.request.cookies.get(DEVICE_COOKIE) or f"web-{tx.person.user_id}"
        done = tx.decisioning.register({**typed, "mobile": mobile, "device_id": device})
        borrower_id = done["borrower_id"]
        if done["existing"] and not lending.holds_mobile(tx.conn, tx.svc.vault, borrower_id, mobile):
            raise Conflict("registered with another mobile number", field="national_id")
        tx.audit("borrower.registered", borrower_id, {"existing": done["existing"]})
        Users(tx.joined).bind_borrower(tx.person.user_id, borrower_id)
        tx.audit("user.borrower_bound", tx.person.user_id, {"borrower_id": borrower_id, "consent": CONSENT_VERSION})
    if failed:
        error = _identity_error(tx.words, failed[0])
        return tx.render("app/identity.html", 422, error=error, typed=typed, consent_version=CONSENT_VERSION)
    return tx.redirect("/app/apply")


def _apply_page(tx: Visit, status: int = 200, **context: Any) -> Response:
    products = tx.servicing.products()
    return tx.render(
        "app/apply.html",
        status=status,
        products=products,
        currency=products[0].currency if products else "CNY",
        tenors=sorted({t for p in products for t in p.tenors}),
        employment=EMPLOYMENT,
        purposes=PURPOSES,
        key=context.pop("key", None) or form_key(),
        **context,
    )


@registered.get("/apply")
def apply_form(tx: Borrower) -> Response:
    return _apply_page(tx, typed={})


def _application(tx: Visit, typed: dict[str, str], products: list[LoanProduct]) -> TypedApplication:
    """The form as the API's application: the amounts as typed, in the product's currency, which the API's own call
    converts (`Decisioning.in_minor`); the choices checked here, to be refused in the reader's language."""
    product = next((p for p in products if p.code == typed["product_code"]), None)
    if product is None:
        raise _refused(tx.words, "product_code", "signup.error.product")
    tenor = int(typed["requested_tenor"]) if typed["requested_tenor"].isdigit() else 0
    if tenor not in product.tenors:
        raise _refused(tx.words, "requested_tenor", "app.error.tenor")
    if typed["employment"] not in EMPLOYMENT:
        raise _refused(tx.words, "employment", "signup.error.choose")
    if typed["purpose"] not in PURPOSES:
        raise _refused(tx.words, "purpose", "signup.error.choose")
    assert tx.request is not None
    amounts = {field: typed[field].strip() or ("0" if field in OPTIONAL_MONEY else "") for field in MONEY_FIELDS}
    return parse(
        TypedApplication,
        {
            **amounts,  # an optional amount left empty: none
            "currency": product.currency,
            "product_code": product.code,
            "employment": typed["employment"],
            "requested_tenor": tenor,
            "purpose": typed["purpose"],
            "device_id": tx.request.cookies.get(DEVICE_COOKIE),
        },
    )


def _amount_error(words: Words, error: OpeniceError, currency: str) -> OpeniceError:
    """An amount the application refused (not a number, too many decimals, out of range) in the reader's
    language; any other error as it is."""
    if error.field not in MONEY_FIELDS:
        return error
    key = "units.error.requested" if error.field == "requested_amount" else "units.error.amount"
    return _refused(words, error.field, key, most=words.money(MAX_MINOR, currency))


@registered.post("/apply")
def apply(
    tx: Borrower,
    product_code: Annotated[str, Form(max_length=64)] = "",
    income_monthly: Annotated[str, Form(max_length=32)] = "",
    employment: Annotated[str, Form(max_length=32)] = "",
    existing_debt_monthly: Annotated[str, Form(max_length=32)] = "",
    existing_debt_balance: Annotated[str, Form(max_length=32)] = "",
    requested_amount: Annotated[str, Form(max_length=32)] = "",
    requested_tenor: Annotated[str, Form(max_length=4)] = "",
    purpose: Annotated[str, Form(max_length=64)] = "",
    key: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Submit the application through the API's own call, under the key the form carried (a second post of the
    same form shows the same decision), and show the decision."""
    typed = dict(
        product_code=product_code,
        income_monthly=income_monthly,
        employment=employment,
        existing_debt_monthly=existing_debt_monthly,
        existing_debt_balance=existing_debt_balance,
        requested_amount=requested_amount,
        requested_tenor=requested_tenor,
        purpose=purpose,
    )
    assert tx.person.tenant is not None
    products = tx.servicing.products()
    with tx.attempt() as failed:
        body = _application(tx, typed, products)
        decision = submit_application(tx, tx.person.tenant, body, key or form_key())
    if failed:
        currency = next((p.currency for p in products if p.code == product_code), "")  # found, if an amount failed
        error = _amount_error(tx.words, failed[0], currency)
        return _apply_page(tx, 422, error=error, typed=typed, key=key)
    return tx.redirect(f"/app/decisions/{decision['id']}")


def reasons_in_words(words: Words, reasons: list[str]) -> list[str]:
    """Each distinct reason of a decline as a sentence; a code without words reads as the generic one."""
    codes = [reason.split(":", 1)[0].strip() if ":" in reason else "" for reason in reasons]
    return list(dict.fromkeys(words(REASONS.get(code, "signup.reason.other")) for code in codes))


@registered.get("/decisions/{decision_id}")
def decision(decision_id: Annotated[str, Path(max_length=64)], tx: Borrower) -> Response:
    """The outcome: the line (its amount, grade, the grade's price and APR), a review under way, or the reasons."""
    row, line_id, currency = lending.decision(tx.scope, decision_id)
    line, product = lending.line(tx.scope, line_id) if line_id else (None, None)
    reasons = json.loads(row.reasons)
    return tx.render(
        "app/decision.html",
        decision=row,
        line=line,
        product=product,
        reasons=reasons_in_words(tx.words, reasons),
        score_reasons=_score_reasons(tx, row, reasons, currency),
        ppm=PPM,
    )


def _score_reasons(tx: Borrower, row: Any, reasons: list[str], currency: str) -> list[str]:
    """What lowered the score, in the borrower's words, when the score is why they were declined (a cut-off); a
    decline on other grounds does not blame the score."""
    if not any(reason.startswith("cut-off") for reason in reasons):
        return []
    found = explained(json.loads(row.result)["score_reasons"], json.loads(row.inputs), currency, tx.words.messages)
    return [r["text"] for r in found]


router = APIRouter()
for part in (public, signed_up, registered):
    router.include_router(part)
