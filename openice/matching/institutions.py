"""A funding institution is data: its credit box, pricing, business model, quotas and priority.

Definitions are JSON or YAML validated by pydantic, so an operator onboards an institution without code.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from openice.decisioning.domain import parse
from openice.errors import ValidationError
from openice.matching.webhooks import Event
from openice.servicing.products import PPM

FundingModel = Literal["capital-light", "capital-heavy", "on-balance-sheet"]
# What an institution sets for itself (whom it funds, how much, at what price, where its systems take the events it
# subscribes to); the rest of its definition (its name, business model, guarantee, routing priority, how it answers
# offers) is the platform's agreement with it.
OWN_TERMS = frozenset({"credit_box", "daily_quota", "monthly_quota", "funding_cost", "rate", "webhook_url", "events"})


class CreditBox(BaseModel):
    """Whom the institution funds. A bound left out accepts everything on that side."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_score: float | None = None
    max_score: float | None = None
    min_pd: float = Field(default=0.0, ge=0, le=1)
    max_pd: float = Field(default=1.0, ge=0, le=1)
    min_amount: int = Field(default=0, ge=0)
    max_amount: int = Field(default=10**12, gt=0)
    min_tenor: int = Field(default=1, ge=1)
    max_tenor: int = Field(default=360, ge=1)
    provinces: tuple[str, ...] | None = None
    min_age: int = Field(default=0, ge=0)
    max_age: int = Field(default=150, ge=0)
    min_income: int = Field(default=0, ge=0)
    max_dti: float = Field(default=10.0, gt=0, description="(existing debt service + this loan's) / income")
    products: tuple[str, ...] | None = None

    @field_validator("max_score", "max_pd", "max_amount", "max_tenor", "max_age")
    @classmethod
    def _ranges(cls, high: float | None, info: ValidationInfo) -> float | None:
        """On the upper bound, so the error names the field a person corrects (its lower bound came first)."""
        name = str(info.field_name)[4:]
        low = info.data.get(f"min_{name}")
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_{name} is above max_{name}")
        return high


class Institution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    business_model: FundingModel
    funding_cost: Decimal = Field(ge=0, lt=1, description="annual cost of the money it lends")
    rate: Decimal = Field(ge=0, lt=1, description="annual rate it takes out of the borrower's interest")
    credit_box: CreditBox = Field(default_factory=CreditBox)
    daily_quota: int = Field(gt=0)
    monthly_quota: int = Field(gt=0)
    min_monthly_volume: int = Field(default=0, ge=0)
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
    def _model(self) -> Institution:
        if (self.business_model == "capital-heavy") != (self.guarantee_payout_dpd is not None):
            raise ValueError("a capital-heavy institution needs guarantee_payout_dpd; no other may have one")
        if self.acceptance == "webhook" and self.webhook_url is None:
            raise ValueError("a webhook institution needs webhook_url")
        return self

    @field_validator("monthly_quota")
    @classmethod
    def _quotas(cls, monthly: int, info: ValidationInfo) -> int:
        if info.data.get("daily_quota", 0) > monthly:
            raise ValueError("daily_quota is above monthly_quota")
        return monthly

    def platform_terms_changed(self, changed: Institution) -> list[str]:
        """The fields outside `OWN_TERMS` that `changed` sets differently: only the platform's operators may."""
        return [
            name
            for name in type(self).model_fields
            if name not in OWN_TERMS and getattr(self, name) != getattr(changed, name)
        ]

    @property
    def funding_cost_ppm(self) -> int:
        return int(self.funding_cost * PPM)

    @property
    def rate_ppm(self) -> int:
        return int(self.rate * PPM)


def load_institutions(path: str | Path) -> list[Institution]:
    """A JSON or YAML file holding a list of institutions (or {"institutions": [...]})."""
    text = Path(path).read_text()
    data: Any = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if isinstance(data, dict):
        data = data.get("institutions")
    if not isinstance(data, list):
        raise ValidationError("expected a list of institutions", field="institutions")
    institutions = [parse(Institution, item) for item in data]
    codes = [i.code for i in institutions]
    if len(set(codes)) != len(codes):
        raise ValidationError("institution codes must be unique", field="code")
    return institutions
