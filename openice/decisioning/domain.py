"""Inputs and outcomes of the assessment: validated at the edge, plain values inside."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from openice.errors import ValidationError
from openice.money import DECIMAL, MAX_MINOR, from_minor, to_minor_within

M = TypeVar("M", bound=BaseModel)

Employment = Literal["salaried", "self-employed", "freelance", "retired", "student", "unemployed"]

# An application's money is whole minor units, at most MAX_MINOR.
Minor = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]
MAX_BUREAU_ATTRIBUTES, MAX_BUREAU_NUMBER, MAX_BUREAU_TEXT = 100, 10**12, 200
MONEY_FIELDS = ("income_monthly", "existing_debt_monthly", "existing_debt_balance", "requested_amount")


def as_read(inputs: dict[str, Any], currency: str) -> dict[str, Any]:
    """A decision's stored inputs as a person reads them: the application's money in major units of `currency` (its
    product's), everything else as stored. The stored form (minor units, as hashed) is never changed."""
    application = inputs["application"]
    money = {name: from_minor(application[name], currency) for name in MONEY_FIELDS if name in application}
    return {**inputs, "application": {**application, **money}}


def _decimal_string(value: Any) -> Any:
    """An amount as typed is text: a JSON or YAML number is refused, not guessed at (it may be minor units)."""
    if isinstance(value, str) and DECIMAL.fullmatch(value.strip()):
        return value.strip()
    raise PydanticCustomError(
        "decimal_string",
        'must be a decimal string in major units, e.g. "30000.00" for 30,000.00 CNY, not {shown}',
        {"shown": json.dumps(value, default=str)},
    )


TypedAmount = Annotated[
    str,
    BeforeValidator(_decimal_string),
    Field(
        max_length=32,
        examples=["30000.00"],
        description="a decimal string of major units in `currency`",
        json_schema_extra={"pattern": DECIMAL.pattern},
    ),
]


def parse(model: type[M], data: Any) -> M:
    """Validate data into a pydantic model, reporting the first bad field the way every layer does."""
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise ValidationError(first["msg"], field=where) from None


def canonical_hash(data: Any) -> str:
    """SHA-256 of canonical JSON: the same inputs hash the same on every machine."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Registration(BaseModel):
    """Who the borrower says they are; every field but the device is personal data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=64)
    national_id: str
    mobile: str
    date_of_birth: date
    province: str = Field(min_length=1, max_length=32)
    city: str = Field(min_length=1, max_length=32)
    device_id: str = Field(min_length=1, max_length=128)


class ApplicationTerms(BaseModel):
    """What an application asks for besides its money, the same whichever unit the money is in."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    product_code: str = Field(min_length=1, max_length=64)
    employment: Employment
    requested_tenor: int = Field(strict=True, gt=0, le=360)
    purpose: str = Field(min_length=1, max_length=64)
    device_id: str | None = Field(default=None, max_length=128)  # the device applying, if not the registered one
    bureau: dict[str, float | int | str | None] = Field(default_factory=dict, max_length=MAX_BUREAU_ATTRIBUTES)

    @field_validator("bureau")
    @classmethod
    def _sane_bureau(cls, bureau: dict[str, Any]) -> dict[str, Any]:
        """The bureau's attributes go to the model and into the stored decision as JSON: names of 1-64 characters,
        finite numbers within +-10^12, short text."""
        for name, value in bureau.items():
            if not 1 <= len(name) <= 64:
                raise ValueError(f"attribute names are 1-64 characters, not {len(name)}")
            if isinstance(value, str) and len(value) > MAX_BUREAU_TEXT:
                raise ValueError(f"{name} is longer than {MAX_BUREAU_TEXT} characters")
            if isinstance(value, int | float) and not (math.isfinite(value) and abs(value) <= MAX_BUREAU_NUMBER):
                raise ValueError(f"{name} must be a finite number within +-{MAX_BUREAU_NUMBER:,}")
        return bureau


class ApplicationInput(ApplicationTerms):
    """A credit application as the assessment reads and the decision stores it: money in minor units per month
    unless named otherwise."""

    income_monthly: Minor
    existing_debt_monthly: Minor = 0
    existing_debt_balance: Minor = 0
    requested_amount: Minor = Field(gt=0)


class TypedApplication(ApplicationTerms):
    """A credit application as a person or a client types it (the API's body, the command line's file): money as
    decimal strings of major units in `currency`, which must be the product's."""

    income_monthly: TypedAmount
    existing_debt_monthly: TypedAmount = "0"
    existing_debt_balance: TypedAmount = "0"
    requested_amount: TypedAmount
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])

    @classmethod
    def of(cls, application: ApplicationInput, currency: str) -> TypedApplication:
        """An application as a client types it, the inverse of `in_minor`: for clients written in Python."""
        amounts = {name: str(from_minor(getattr(application, name), currency)) for name in MONEY_FIELDS}
        return cls.model_validate(
            {**application.model_dump(exclude=set(MONEY_FIELDS)), **amounts, "currency": currency}
        )

    def in_minor(self, currency: str) -> ApplicationInput:
        """The application in minor units of `currency`, its product's. Another currency, more decimals than it
        has, a negative amount or one beyond MAX_MINOR is refused naming the field, never rounded or clipped."""
        if self.currency != currency:
            raise ValidationError(
                f"product {self.product_code} lends in {currency}, not {self.currency}", field="currency"
            )
        amounts = {
            name: to_minor_within(getattr(self, name), currency, name, int(name == "requested_amount"), MAX_MINOR)
            for name in MONEY_FIELDS
        }
        return parse(ApplicationInput, {**self.model_dump(exclude={"currency", *MONEY_FIELDS}), **amounts})


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVIEW = "review"


@dataclass(frozen=True)
class FraudFacts:
    """What the records say about this applicant's identifiers, gathered before the pure assessment."""

    other_identities_with_id: int = 0
    other_identities_with_mobile: int = 0
    other_identities_with_device: int = 0
    applications_24h_by_id: int = 0
    applications_24h_by_mobile: int = 0
    applications_24h_by_device: int = 0
    blacklisted: tuple[str, ...] = ()  # kinds hit: national_id, mobile, device


@dataclass(frozen=True)
class AssessmentInput:
    """Everything an assessment reads; its hash identifies the decision's inputs."""

    application: dict[str, Any]
    age: int
    province: str
    decided_on: date
    facts: FraudFacts = field(default_factory=FraudFacts)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["decided_on"] = self.decided_on.isoformat()
        data["facts"]["blacklisted"] = list(self.facts.blacklisted)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssessmentInput:
        facts = dict(data["facts"])
        facts["blacklisted"] = tuple(facts["blacklisted"])
        return cls(
            application=data["application"],
            age=data["age"],
            province=data["province"],
            decided_on=date.fromisoformat(data["decided_on"]),
            facts=FraudFacts(**facts),
        )

    @property
    def input_hash(self) -> str:
        return canonical_hash(self.to_json())


@dataclass(frozen=True)
class RuleResult:
    """One named check: whether it fired, what it then does (review or reject) and why."""

    rule: str
    fired: bool
    action: str
    reason: str


@dataclass(frozen=True)
class CreditLine:
    amount: int
    rate_ppm: int  # nominal annual rate of drawdowns
    apr_ppm: int  # the highest APR (IRR method) over the product's tenors, fees included; never above the cap
    effective_annual_rate_ppm: int  # of the same tenor: its per-period IRR compounded over a year
    expiry: date
    max_tenor: int


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    fraud: str  # pass | review | reject
    rules: tuple[RuleResult, ...]
    reasons: tuple[str, ...]
    pd: float | None
    score: float | None
    grade: str | None
    score_reasons: tuple[str, ...]
    affordability: dict[str, Any]
    line: CreditLine | None
    anomaly: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        if self.line is not None:
            data["line"]["expiry"] = self.line.expiry.isoformat()
        for name in ("rules", "reasons", "score_reasons"):
            data[name] = list(data[name])
        return data
