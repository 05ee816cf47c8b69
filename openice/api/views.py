"""Request and response bodies. Money crosses the edge as a decimal string with its currency; dates as ISO 8601."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field
from starlette.responses import Response

from openice.decisioning.identity import mask_id, mask_mobile, mask_name
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import line_rates
from openice.decisioning.reason_words import explained
from openice.money import from_minor
from openice.servicing.loan import LoanAccount
from openice.servicing.products import LoanProduct, PrepaymentMode
from openice.storage.days import from_day

T = TypeVar("T")
AMOUNT = r"^[0-9]{1,13}(\.[0-9]{1,4})?$"
CURRENCY = r"^[A-Z]{3}$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class Money(BaseModel):
    amount: str = Field(examples=["1250.00"])
    currency: str = Field(examples=["CNY"])


def reply(content: BaseModel | list[BaseModel] | dict[str, Any], status: int = 200) -> Response:
    """The body as JSON bytes, made once (fields by alias, as FastAPI would). The route's response model still
    documents it, but a body built from that model (or stored as its JSON by an idempotent create) is not validated
    against it again: FastAPI would do that in another trip through the thread pool, for every request."""
    if isinstance(content, BaseModel):
        body = content.model_dump_json(by_alias=True)
    elif isinstance(content, list):
        body = "[" + ",".join(item.model_dump_json(by_alias=True) for item in content) + "]"
    else:
        body = json.dumps(content, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def money(minor: int, currency: str) -> Money:
    return Money(amount=str(from_minor(int(minor), currency)), currency=currency)


class PaymentIn(BaseModel):
    amount: str = Field(pattern=AMOUNT, examples=["500.00"])
    currency: str = Field(pattern=CURRENCY, examples=["CNY"])
    value_date: date | None = Field(
        None,
        description="default today; an earlier date (backdating) replays the loan "
        "and is for operator keys only, with a reason, never in a closed month",
    )
    reason: str | None = Field(None, min_length=1, max_length=200, description="why the payment is backdated")


class PrepaymentIn(BaseModel):
    amount: str = Field(pattern=AMOUNT, examples=["5000.00"])
    currency: str = Field(pattern=CURRENCY, examples=["CNY"])
    mode: PrepaymentMode = PrepaymentMode.REAMORTISE


class WriteOffIn(BaseModel):
    reason: str | None = Field(
        None, min_length=1, max_length=200, description="why the loan is written off; required when it is not past due"
    )


class RecoveryIn(BaseModel):
    amount: str = Field(pattern=AMOUNT)
    currency: str = Field(pattern=CURRENCY)


class DrawdownIn(BaseModel):
    amount: str = Field(pattern=AMOUNT, examples=["10000.00"])
    currency: str = Field(pattern=CURRENCY, examples=["CNY"])
    tenor: int = Field(gt=0, le=360, description="months")


class PaymentResult(BaseModel):
    transaction_id: int
    loan_id: int
    status: str
    outstanding_principal: Money
    value_date: date | None = None
    allocated: dict[str, Money] = Field(default_factory=dict)


class Installment(BaseModel):
    seq: int
    period_start: date
    due_date: date
    principal: Money
    interest: Money
    fee: Money
    paid: Money
    unpaid: Money


class LoanView(BaseModel):
    id: int
    borrower_id: str | None
    product_code: str
    funder: str
    original_funder: str
    business_model: str
    channel: str
    status: str
    principal: Money
    outstanding_principal: Money
    tenor: int
    rate_ppm: int
    disbursed_on: date
    maturity_on: date
    days_past_due: int
    bucket: str


class LoanDetail(LoanView):
    balances: dict[str, Money]
    schedule: list[Installment]


def loan_view(row: Any) -> LoanView:
    c = row.currency
    return LoanView(
        id=row.id,
        borrower_id=row.borrower_id,
        product_code=row.product_code,
        funder=row.funder,
        original_funder=row.original_funder,
        business_model=row.business_model,
        channel=row.channel,
        status=row.status,
        principal=money(row.principal, c),
        outstanding_principal=money(row.bal_loan_principal, c),
        tenor=row.tenor,
        rate_ppm=row.rate_ppm,
        disbursed_on=from_day(row.disbursed_day),
        maturity_on=from_day(row.maturity_day),
        days_past_due=row.dpd,
        bucket=row.bucket,
    )


def loan_detail(row: Any, loan: LoanAccount) -> LoanDetail:
    c = loan.terms.currency
    schedule = [
        Installment(
            seq=i.seq,
            period_start=i.period_start,
            due_date=i.due_date,
            principal=money(i.principal, c),
            interest=money(i.interest, c),
            fee=money(i.fee, c),
            paid=money(i.principal_paid + i.interest_paid + i.fee_paid, c),
            unpaid=money(i.unpaid, c),
        )
        for i in loan.installments
    ]
    base = loan_view(row).model_dump()
    base.update(status=loan.status.value, days_past_due=loan.days_past_due, bucket=loan.bucket)
    return LoanDetail(**base, balances={k: money(v, c) for k, v in sorted(loan.balances.items())}, schedule=schedule)


class TransactionView(BaseModel):
    id: int
    loan_id: int
    kind: str
    value_date: date
    booked_on: date
    amount: Money
    mode: str | None
    reversed: bool
    reason: str | None = Field(None, description="why an operator backdated it or wrote the loan off")


def transaction_view(row: Any, currency: str) -> TransactionView:
    return TransactionView(
        id=row.id,
        loan_id=row.loan_id,
        kind=row.kind,
        value_date=from_day(row.value_day),
        booked_on=from_day(row.booked_day),
        amount=money(row.amount, currency),
        mode=row.mode,
        reversed=bool(row.reversed),
        reason=row.reason,
    )


class BorrowerView(BaseModel):
    id: str
    registered_on: date
    province: str
    city: str
    birth_year: int
    name: str
    national_id: str
    mobile: str
    masked: bool = Field(description="personal data is shown in full only to the borrower themself")


def borrower_view(row: Any, vault: PiiVault, full: bool, contact: bool = False) -> BorrowerView:
    """Decrypt and mask by role: the borrower sees everything; a collections agent also sees the mobile."""
    name, nid, mobile = (vault.decrypt(col, getattr(row, f"{col}_enc")) for col in ("name", "national_id", "mobile"))
    if not full:
        name, nid = mask_name(name), mask_id(nid)
        mobile = mobile if contact else mask_mobile(mobile)
    return BorrowerView(
        id=row.id,
        registered_on=from_day(row.registered_day),
        province=row.province,
        city=row.city,
        birth_year=row.birth_year,
        name=name,
        national_id=nid,
        mobile=mobile,
        masked=not full,
    )


class ScoreReason(BaseModel):
    code: str = Field(examples=["EMP_LENGTH_CATEGORY"])
    text: str = Field(examples=["Employment length: under 1 year lowered the score"])


class DecisionView(BaseModel):
    id: str
    application_id: str
    borrower_id: str
    decided_on: date
    outcome: str
    fraud: str
    pd: float | None
    score: float | None
    grade: str | None
    reasons: list[str]
    score_reasons: list[ScoreReason] = Field(
        description="the model's adverse reasons, largest first: the scorecard's code and, in words, the feature and "
        "the applicant's value of it"
    )
    rules_fired: list[str]
    line_id: str | None = None
    model_hash: str
    policy_hash: str
    input_hash: str
    result: dict[str, Any] = Field(
        description="the decision's result as stored and hashed (affordability facts, the line): its money in integer "
        "minor units of `currency`, as `money_unit` says, so a reproduction can be compared with it"
    )
    currency: str = Field(
        description="the decision's product's currency: what the reasons' and the result's money is in"
    )
    money_unit: Literal["minor"] = Field(default="minor", description="the unit of the money in `result`")


def decision_view(row: Any, line_id: str | None, currency: str) -> DecisionView:
    """A stored decision as the API gives it; its reasons quote an amount in major units of `currency`, its
    product's, while `result` stays as stored (minor units, as hashed)."""
    result = json.loads(row.result)
    return DecisionView(
        id=row.id,
        application_id=row.application_id,
        borrower_id=row.borrower_id,
        decided_on=from_day(row.decided_day),
        outcome=row.outcome,
        fraud=row.fraud,
        pd=row.pd,
        score=row.score,
        grade=row.grade,
        reasons=json.loads(row.reasons),
        score_reasons=[ScoreReason(**r) for r in explained(result["score_reasons"], json.loads(row.inputs), currency)],
        rules_fired=json.loads(row.rules_fired),
        line_id=line_id,
        model_hash=row.model_hash,
        policy_hash=row.policy_hash,
        input_hash=row.input_hash,
        result=result,
        currency=currency,
    )


class CreditLineView(BaseModel):
    id: str
    borrower_id: str
    decision_id: str
    product_code: str
    approved_on: date
    expiry_on: date
    status: str
    amount: Money
    drawn: Money
    available: Money
    rate_ppm: int
    apr_ppm: int = Field(description="the highest APR over the product's tenors, fees included, as approved")
    effective_annual_rate_ppm: int = Field(description="that tenor's per-period IRR compounded over a year")
    apr_convention: str = Field(description="how the APR annualises, e.g. IRR method: per-period IRR x 12")
    max_tenor: int
    grade: str


def line_view(row: Any, product: LoanProduct) -> CreditLineView:
    """The line as approved; its effective annual rate and convention follow from its product and rate."""
    c = product.currency
    rates = line_rates(product, row.rate_ppm)
    return CreditLineView(
        id=row.id,
        borrower_id=row.borrower_id,
        decision_id=row.decision_id,
        product_code=row.product_code,
        approved_on=from_day(row.approved_day),
        expiry_on=from_day(row.expiry_day),
        status=row.status,
        amount=money(row.amount, c),
        drawn=money(row.drawn, c),
        available=money(row.amount - row.drawn, c),
        rate_ppm=row.rate_ppm,
        apr_ppm=row.apr_ppm,
        effective_annual_rate_ppm=rates.effective_annual_rate_ppm,
        apr_convention=rates.apr_convention,
        max_tenor=row.max_tenor,
        grade=row.grade,
    )


class DrawdownView(BaseModel):
    id: int
    line_id: str
    borrower_id: str
    amount: Money
    tenor: int
    requested_on: date
    status: str = Field(description="routing | offered | funded | no_funder | failed")
    institution_code: str | None
    loan_id: int | None
    reasons: dict[str, Any]


def drawdown_view(row: Any, currency: str) -> DrawdownView:
    return DrawdownView(
        id=row.id,
        line_id=row.line_id,
        borrower_id=row.borrower_id,
        amount=money(row.amount, currency),
        tenor=row.tenor,
        requested_on=from_day(row.requested_day),
        status=row.status,
        institution_code=row.institution_code,
        loan_id=row.loan_id,
        reasons=json.loads(row.reasons or "{}"),
    )


class OfferView(BaseModel):
    id: int
    drawdown_id: int
    institution_code: str
    rank: int
    expected_margin: Money = Field(description="the platform's expected margin if the institution funds it")
    status: str = Field(
        description="sent (waiting for the institution's answer) | accepted | declined | expired | failed"
    )
    reason: str | None
    created_at: str
    expires_at: str | None = Field(None, description="a manual institution's deadline to answer")
    answered_at: str | None = None


class MatchingRunView(BaseModel):
    id: int
    run_on: date
    drawdowns: int
    objective: Money = Field(description="expected margin less the risk penalty of the assignment")
    greedy_objective: Money = Field(description="the same for the greedy waterfall on the same batch")
    gain: Money = Field(description="objective less greedy_objective: what the assignment adds over the waterfall")
    prices: dict[str, dict[str, float]] = Field(
        description="per institution, the shadow prices of its quotas and caps that routing adds to its cost"
    )
    created_at: str


def matching_run_view(row: Any, currency: str) -> MatchingRunView:
    """A matching run with its objectives in major units of the book's currency (`terms_currency`)."""
    return MatchingRunView(
        id=row.id,
        run_on=from_day(row.run_day),
        drawdowns=row.drawdowns,
        objective=money(row.objective, currency),
        greedy_objective=money(row.greedy_objective, currency),
        gain=money(row.objective - row.greedy_objective, currency),
        prices=json.loads(row.prices),
        created_at=row.created_at,
    )


def offer_view(row: Any, currency: str) -> OfferView:
    """An offer with its expected margin in major units of its drawdown's currency."""
    return OfferView(
        id=row.id,
        drawdown_id=row.drawdown_id,
        institution_code=row.institution_code,
        rank=row.rank,
        expected_margin=money(row.expected_margin, currency),
        status=row.status,
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        answered_at=row.answered_at,
    )


class OfferAnswerIn(BaseModel):
    reason: str = Field(default="", max_length=500, description="why, for the record (no personal data)")


class OfferAnswer(BaseModel):
    offer: OfferView
    drawdown_status: str = Field(description="offered (to the next institution) | funded | no_funder | failed")
    loan_id: int | None


class ApiKeyIn(BaseModel):
    role: str = Field(pattern="^(operator|institution|borrower|collections|investor)$")
    tenant: str = Field(
        min_length=1,
        max_length=1000,
        description="'platform', an institution code, a borrower id, or an investor's deal names separated by commas",
    )
    label: str = Field("", max_length=200)


class InstitutionKeyIn(BaseModel):
    label: str = Field("", max_length=200, description="what the key is for, e.g. the system that holds it")


class ApiKeyView(BaseModel):
    id: str
    role: str
    tenant: str
    label: str
    created_at: str
    revoked_at: str | None
    replaced_by: str | None = Field(
        description="the key that replaced this one (keys rotated before rotations kept the id)"
    )
    rotated_at: str | None = None
    previous_until: str | None = Field(None, description="until when the secret before the last rotation still works")


class ApiKeyCreated(ApiKeyView):
    secret: str | None = Field(description="shown once; only its SHA-256 is stored (null on a replay)")


class AuditView(BaseModel):
    id: int
    at: str
    request_id: str
    key_id: str | None
    role: str
    tenant: str
    action: str
    resource: str
    detail: dict[str, Any]


def audit_view(row: Any) -> AuditView:
    return AuditView(**{**row._mapping, "detail": json.loads(row.detail)})


class DealView(BaseModel):
    name: str
    currency: str
    cut_off: date
    pool_balance: Money  # at closing
    loans: int
    derecognised: bool  # sold to the trust, else kept on the balance sheet


def deal_view(row: Any) -> DealView:
    return DealView(
        name=row.name,
        currency=row.currency,
        cut_off=from_day(row.cut_off_day),
        pool_balance=money(row.pool_balance, row.currency),
        loans=row.loans,
        derecognised=row.derecognise,
    )


# A report answered as JSON, HTML or PDF by its `format` query parameter, as the API's schema documents it.
REPORT_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/html": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}
