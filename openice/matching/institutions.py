"""A funding institution is data: its credit box, pricing, business model, quotas and priority.

Definitions are JSON or YAML validated by pydantic, so an operator onboards an institution without code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from openice.decisioning.domain import TypedAmount, parse
from openice.errors import ValidationError
from openice.matching.webhooks import Event
from openice.money import MAX_MINOR, from_minor, to_minor_within
from openice.servicing.products import PPM

FundingModel = Literal["capital-light", "capital-heavy", "on-balance-sheet"]
# What kind of lender an institution is, as the funding disclosures name their partners: a commercial bank, a
# licensed consumer finance company, a trust company (funding through its trust plans) or a microcredit company. A
# trust's loans are a funding source of their own (`openice.servicing.sources`); the others count as institutions.
InstitutionKind = Literal["bank", "consumer-finance", "trust", "microcredit"]
INSTITUTION_KINDS: tuple[str, ...] = get_args(InstitutionKind)
# A quota's bound: 10^15 minor units (10,000,000,000,000.00 in a two-decimal currency), far beyond any lender's month
# and inside a BIGINT however many loans a period's usage adds up.
MAX_QUOTA = 10**15
# What an institution sets for itself (whom it funds, how much, at what price, where its systems take the events it
# subscribes to); the rest of its definition (its name, business model, guarantee, routing priority, how it answers
# offers) is the platform's agreement with it.
OWN_TERMS = frozenset({"credit_box", "daily_quota", "monthly_quota", "funding_cost", "rate", "webhook_url", "events"})


class BoxTerms(BaseModel):
    """Whom the institution funds, besides the money bounds: the same whichever unit those are typed in. A bound
    left out accepts everything on that side."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_score: float | None = None
    max_score: float | None = None
    min_pd: float = Field(default=0.0, ge=0, le=1)
    max_pd: float = Field(default=1.0, ge=0, le=1)
    min_tenor: int = Field(default=1, ge=1)
    max_tenor: int = Field(default=360, ge=1)
    provinces: tuple[str, ...] | None = None
    min_age: int = Field(default=0, ge=0)
    max_age: int = Field(default=150, ge=0)
    max_dti: float = Field(default=10.0, gt=0, description="(existing debt service + this loan's) / income")
    products: tuple[str, ...] | None = None

    @field_validator("max_score", "max_pd", "max_amount", "max_tenor", "max_age", check_fields=False)
    @classmethod
    def _ranges(cls, high: Any, info: ValidationInfo) -> Any:
        """On the upper bound, so the error names the field a person corrects (its lower bound came first). Read as
        decimals: an amount may be minor units or a typed decimal string."""
        name = str(info.field_name)[4:]
        low = info.data.get(f"min_{name}")
        if low is not None and high is not None and Decimal(str(low)) > Decimal(str(high)):
            raise ValueError(f"min_{name} is above max_{name}")
        return high


class CreditBox(BoxTerms):
    """A credit box as routing reads and the definition stores it: amounts and income in minor units."""

    min_amount: int = Field(default=0, ge=0, le=MAX_MINOR)
    max_amount: int = Field(default=MAX_MINOR, gt=0, le=MAX_MINOR)
    min_income: int = Field(default=0, ge=0, le=MAX_MINOR)


class TypedCreditBox(BoxTerms):
    """A credit box as a person or a client types it: amounts and income as decimal strings of major units in the
    institution's `currency`; one left out is no bound."""

    min_amount: TypedAmount | None = None
    max_amount: TypedAmount | None = None
    min_income: TypedAmount | None = None


class InstitutionTerms(BaseModel):
    """An institution's definition besides its money, the same whichever unit that is typed in."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    kind: InstitutionKind | None = Field(
        default=None,
        description="bank, consumer-finance, trust or microcredit; a trust's loans are their own funding source in "
        "the disclosures; left out: not stated, counted as an institution",
    )
    business_model: FundingModel
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        examples=["CNY"],
        description="the currency of its quotas and credit box amounts, and the only one it lends in; left out: the "
        "book's (its products')",
    )
    funding_cost: Decimal = Field(ge=0, lt=1, description="annual cost of the money it lends")
    rate: Decimal = Field(ge=0, lt=1, description="annual rate it takes out of the borrower's interest")
    max_avg_pd: float = Field(default=1.0, gt=0, le=1, description="amount-weighted, over a batch")
    priority: int = Field(default=100, description="lower routes first when ranking by priority")
    guarantee_payout_dpd: int | None = Field(default=None, ge=1)
    acceptance: Literal["automatic", "manual", "webhook"] = Field(
        default="automatic",
        description="automatic: it funds whatever its credit box lets through, at once; "
        "manual: an offer waits for its key (or a person in its portal) to accept or decline it; "
        "webhook: the offer is POSTed, signed, to webhook_url, and answered in the response or later by its key",
    )
    offer_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="how long a manual or webhook offer waits before the next institution gets it",
    )
    webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", description="where events are POSTed")
    events: tuple[Event, ...] = Field(default=("offer",), description="the events POSTed to webhook_url")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="per attempt")
    circuit_threshold: int = Field(default=5, ge=1, description="failed deliveries in a row that open its circuit")
    circuit_cooldown_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="how long an open circuit keeps routing and deliveries away"
    )

    @model_validator(mode="after")
    def _model(self) -> Self:
        if (self.business_model == "capital-heavy") != (self.guarantee_payout_dpd is not None):
            raise ValueError("a capital-heavy institution needs guarantee_payout_dpd; no other may have one")
        if self.acceptance == "webhook" and self.webhook_url is None:
            raise ValueError("a webhook institution needs webhook_url")
        return self

    @field_validator("monthly_quota", check_fields=False)
    @classmethod
    def _quotas(cls, monthly: Any, info: ValidationInfo) -> Any:
        """Read as decimals: the quotas may be minor units or typed decimal strings."""
        daily = info.data.get("daily_quota")
        if daily is not None and Decimal(str(daily)) > Decimal(str(monthly)):
            raise ValueError("daily_quota is above monthly_quota")
        return monthly


class Institution(InstitutionTerms):
    """An institution as routing reads and the definition stores it: quotas and box amounts in minor units of its
    `currency` (None only in a definition stored before institutions carried one: the book's, `terms_currency`)."""

    credit_box: CreditBox = Field(default_factory=CreditBox)
    daily_quota: int = Field(gt=0, le=MAX_QUOTA)
    monthly_quota: int = Field(gt=0, le=MAX_QUOTA)
    min_monthly_volume: int = Field(default=0, ge=0, le=MAX_QUOTA)

    def platform_terms_changed(self, changed: Institution) -> list[str]:
        """The fields outside `OWN_TERMS` that `changed` sets differently: only the platform's operators may."""
        return [
            name
            for name in type(self).model_fields
            if name not in OWN_TERMS and getattr(self, name) != getattr(changed, name)
        ]

    def amounts_currency(self, book: str | None) -> str:
        """The currency its amounts are in: its own, else the book's (`book`, None before the book has a product)."""
        return currency_or_book(self.currency, book)

    @property
    def funding_cost_ppm(self) -> int:
        return int(self.funding_cost * PPM)

    @property
    def rate_ppm(self) -> int:
        return int(self.rate * PPM)


class MoneyPath(NamedTuple):
    """Where an institution holds money, and the range its minor units may take."""

    name: str
    box: bool
    least: int
    most: int


MONEY_PATHS = (
    MoneyPath("daily_quota", False, 1, MAX_QUOTA),
    MoneyPath("monthly_quota", False, 1, MAX_QUOTA),
    MoneyPath("min_monthly_volume", False, 0, MAX_QUOTA),
    MoneyPath("min_amount", True, 0, MAX_MINOR),
    MoneyPath("max_amount", True, 1, MAX_MINOR),
    MoneyPath("min_income", True, 0, MAX_MINOR),
)


class TypedInstitution(InstitutionTerms):
    """An institution as a person or a client types it (its file, the API's body and answer): money as decimal
    strings of major units in `currency`, the book's when left out."""

    credit_box: TypedCreditBox = Field(default_factory=TypedCreditBox)
    daily_quota: TypedAmount
    monthly_quota: TypedAmount
    min_monthly_volume: TypedAmount = "0"

    @classmethod
    def of(cls, institution: Institution, book: str | None) -> TypedInstitution:
        """The institution as a client reads it, in its currency (`book`: the book's, for a definition stored
        without one), the inverse of `in_minor`."""
        currency = institution.amounts_currency(book)
        data = institution.model_dump(mode="json")
        for path in MONEY_PATHS:
            inner = data["credit_box"] if path.box else data
            inner[path.name] = str(from_minor(inner[path.name], currency))
        return cls.model_validate({**data, "currency": currency})

    def in_minor(self, book: str | None) -> Institution:
        """The institution in minor units of its `currency`, or of the book's (`book`, None before the book has a
        product) when left out, which it then stores. More decimals than the currency has or an amount out of its
        range is refused naming the field, never rounded or clipped."""
        currency = currency_or_book(self.currency, book)
        data = self.model_dump(mode="json", exclude_none=True)
        data["currency"] = currency
        for path in MONEY_PATHS:
            inner = data["credit_box"] if path.box else data
            if path.name in inner:
                where = f"credit_box.{path.name}" if path.box else path.name
                inner[path.name] = to_minor_within(inner[path.name], currency, where, path.least, path.most)
        return parse(Institution, data)


def currency_or_book(currency: str | None, book: str | None) -> str:
    """An institution's currency, else the book's; neither is refused saying what to give."""
    found = currency or book
    if found is None:
        raise ValidationError(
            'no currency: give the institution\'s "currency" (e.g. "CNY"), as the book has no product yet to take '
            "it from",
            field="currency",
        )
    return found


def terms_currency(currencies: Iterable[str]) -> str | None:
    """The book's currency, which an institution's amounts are in when its definition names none: its products'
    (the first in order if the book lends in several). None before the book has a product."""
    return min(currencies, default=None)


def funds_in(institution: str, product: str) -> bool:
    """An institution funds only loans in the currency its quotas and credit box are in: routing never offers it a
    drawdown of a product lent in another, whatever its box says (refused on `product`)."""
    return institution == product


def load_institutions(path: str | Path) -> list[TypedInstitution]:
    """A JSON or YAML file holding a list of institutions (or {"institutions": [...]}), money typed in major units."""
    text = Path(path).read_text()
    data: Any = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if isinstance(data, dict):
        data = data.get("institutions")
    if not isinstance(data, list):
        raise ValidationError("expected a list of institutions", field="institutions")
    institutions = [parse(TypedInstitution, item) for item in data]
    codes = [i.code for i in institutions]
    if len(set(codes)) != len(codes):
        raise ValidationError("institution codes must be unique", field="code")
    return institutions
