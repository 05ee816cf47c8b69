"""Platform credit policy as validated data: fraud thresholds, cut-offs, affordability, line sizing, pricing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openice.decisioning.domain import TypedAmount, canonical_hash, parse
from openice.errors import ValidationError
from openice.money import MAX_MINOR, from_minor, minor_digits, round_half_up, to_minor_within
from openice.servicing.products import PPM, LoanProduct
from openice.servicing.schedule import Schedule, build_schedule

PROBE_DAY = date(2026, 1, 1)  # APR depends on the calendar only through month lengths; any fixed day will do
# Headroom under a cap: a loan's real APR moves by a few basis points with its start date (actual day
# counts) and its amount (interest rounded to the minor unit).
CAP_MARGIN = Decimal("0.0005")
DEFAULT_GRID = {"A": "0.08", "B": "0.11", "C": "0.15", "D": "0.19", "E": "0.24", "F": "0.30"}
DEFAULT_INCOME_MULTIPLE: dict[str, float] = {"A": 10, "B": 8, "C": 6, "D": 4, "E": 3, "F": 2}  # credit line: income x


class PolicyTerms(BaseModel):
    """A credit policy besides its money, the same whichever unit that is typed in."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_age: int = Field(default=18, ge=16)
    max_age: int = Field(default=60, le=100)
    velocity_limit: int = Field(default=3, ge=1, description="applications per ID, mobile or device in 24 h")
    max_identities_per_device: int = Field(default=2, ge=1)
    anomaly_review: float = Field(default=0.65, gt=0, lt=1)
    max_pd: float = Field(default=0.25, gt=0, le=1)
    min_score: float | None = None
    declined_grades: tuple[str, ...] = ("G",)
    max_dti: float = Field(default=0.5, gt=0, le=1)
    income_multiple: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_INCOME_MULTIPLE))
    line_days: int = Field(default=365, gt=0)
    pricing: dict[str, Decimal] = Field(default_factory=lambda: {g: Decimal(r) for g, r in DEFAULT_GRID.items()})

    @field_validator("pricing")
    @classmethod
    def _rates(cls, grid: dict[str, Decimal]) -> dict[str, Decimal]:
        for grade, rate in grid.items():
            if not 0 <= rate < 10:
                raise ValueError(f"rate {rate} of grade {grade} must be between 0 and 10")
        return grid


class Policy(PolicyTerms):
    """What the platform accepts, as the assessment reads it and every decision stores and hashes it: money in minor
    units of `currency`. A change of policy is a new hash recorded on every decision.

    `currency` is None for the built-in default and for the policies decisions stored before policies named one:
    their amounts are minor units of whichever product they are applied to, as they always were. It is left out
    of the hash when None, so those decisions' policy hashes stay what they recorded and `reproduce` reads their
    stored policy as it is: no stored decision is rewritten."""

    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    min_residual_income: int = Field(default=150_000, ge=0, le=MAX_MINOR, description="a month after all debt")
    max_line: int = Field(default=20_000_000, gt=0, le=MAX_MINOR)
    min_line: int = Field(default=100_000, gt=0, le=MAX_MINOR)

    @property
    def policy_hash(self) -> str:
        return canonical_hash(self.model_dump(mode="json", exclude={"currency"} if self.currency is None else None))

    def age_range(self, product: LoanProduct) -> tuple[int, int]:
        """A product may narrow the platform's age range through its `extra` data."""
        return int(product.extra.get("min_age", self.min_age)), int(product.extra.get("max_age", self.max_age))

    def check_currency(self, product: LoanProduct) -> None:
        """A policy whose amounts are typed in one currency sizes no line of a product lending in another."""
        if self.currency is not None and self.currency != product.currency:
            raise ValidationError(
                f"the credit policy's amounts are in {self.currency}; product {product.code} lends in "
                f"{product.currency}",
                field="currency",
            )

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """A policy file (YAML or JSON) as a person types it."""
        return cls.from_typed(yaml.safe_load(Path(path).read_text()))

    @classmethod
    def from_typed(cls, data: Any) -> Policy:
        """A policy as a person types it (`TypedPolicy`: amounts in major units of its currency), in minor units."""
        return parse(TypedPolicy, data or {}).in_minor()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        """A policy as decisions store it and the hybrid bundle carries it: minor units."""
        return parse(cls, data)


DEFAULT = Policy()
# Where a policy holds money, and the least its minor units may be.
POLICY_MONEY = {"min_residual_income": 0, "max_line": 1, "min_line": 1}


class TypedPolicy(PolicyTerms):
    """A credit policy as a person types it (its YAML or JSON file, the policy an institution pulls): its amounts as
    decimal strings of major units in `currency`. One left out keeps the built-in default (`Policy`'s, minor units
    of a two-decimal currency: 1,500.00 a month of residual income, lines from 1,000.00 to 200,000.00); a policy
    typing none needs no currency."""

    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", examples=["CNY"])
    min_residual_income: TypedAmount | None = None
    max_line: TypedAmount | None = None
    min_line: TypedAmount | None = None

    @classmethod
    def of(cls, policy: Policy) -> TypedPolicy:
        """The policy as a person types it, the inverse of `in_minor`: a policy without a currency has the built-in
        amounts, left out."""
        data = policy.model_dump(mode="json", exclude=set(POLICY_MONEY))
        if policy.currency is None and any(getattr(policy, n) != getattr(DEFAULT, n) for n in POLICY_MONEY):
            raise ValidationError("a policy with amounts of its own is typed in its currency: set it", field="currency")
        if policy.currency is not None:
            data |= {name: str(from_minor(getattr(policy, name), policy.currency)) for name in POLICY_MONEY}
        return cls.model_validate(data)

    def in_minor(self) -> Policy:
        """The policy in minor units of its currency. An amount without a currency, a bare number (it may be minor
        units), more decimals than the currency has or an amount out of range is refused naming the field."""
        data = self.model_dump(mode="json", exclude_none=True, exclude=set(POLICY_MONEY))
        typed = {name: getattr(self, name) for name in POLICY_MONEY if getattr(self, name) is not None}
        if typed and self.currency is None:
            raise ValidationError(
                f"is required with {', '.join(typed)}: the currency the policy's amounts are typed in, e.g. CNY",
                field="currency",
            )
        if self.currency is not None:
            minor_digits(self.currency)
            for name, amount in typed.items():
                data[name] = to_minor_within(amount, self.currency, name, POLICY_MONEY[name], MAX_MINOR)
        return parse(Policy, data)


def monthly_payment(amount: float, annual_rate: float, tenor: int) -> float:
    """An annuity installment, for affordability (the exact schedule comes at origination)."""
    r = annual_rate / 12
    return amount / tenor if r == 0 else amount * r / (1 - (1 + r) ** -tenor)


_KEYS: dict[int, tuple[LoanProduct, str]] = {}


def _product_key(product: LoanProduct) -> str:
    """The product's canonical JSON, remembered per product object (the object is kept, so its id stays unique)."""
    known = _KEYS.get(id(product))
    if known is None or known[0] is not product:
        known = _KEYS[id(product)] = (product, json.dumps(product.to_dict(), sort_keys=True))
    return known[1]


@dataclass(frozen=True)
class LineRates:
    """A line's APR (IRR method) and effective annual rate in ppm: those of the tenor with the highest APR."""

    apr_ppm: int
    effective_annual_rate_ppm: int
    apr_convention: str


@cache
def _highest_apr_schedule(key: str, rate_ppm: int) -> Schedule:
    product = LoanProduct.from_dict(json.loads(key))
    probe = max(product.min_principal, min(product.max_principal, 1_000_000))
    return max(
        (
            build_schedule(product, probe, tenor, PROBE_DAY, Decimal(rate_ppm) / PPM, check_cap=False)
            for tenor in product.tenors
        ),
        key=lambda schedule: schedule.apr,
    )


def line_rates(product: LoanProduct, rate_ppm: int) -> LineRates:
    """What a line at `rate_ppm` discloses, rounded half-up to ppm only here, for display and storage."""
    schedule = _highest_apr_schedule(_product_key(product), rate_ppm)
    return LineRates(
        round_half_up(schedule.apr * PPM), round_half_up(schedule.effective_annual_rate * PPM), schedule.apr_convention
    )


@cache
def _max_rate_ppm(key: str) -> int:
    """The highest nominal rate, in steps of 0.01%, whose APR stays within the cap at every tenor (-1: none)."""
    product = LoanProduct.from_dict(json.loads(key))
    if product.apr_cap is None:
        return 10 * PPM
    step = PPM // 10_000
    highest_apr = product.apr_cap - CAP_MARGIN

    def fits(units: int) -> bool:
        return _highest_apr_schedule(key, units * step).apr <= highest_apr  # unrounded

    lo, hi = 0, int(product.apr_cap * PPM) // step
    if not fits(lo):
        return -1
    if fits(hi):
        return hi * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo * step


def price(product: LoanProduct, grid_rate: Decimal) -> tuple[int, LineRates | None]:
    """The nominal rate in ppm, the grid's lowered when fees would push the APR above the product cap, and the
    line's rates at it (None: fees alone pass the cap).

    Both are cached per product and rate, so pricing costs microseconds after the first call.
    """
    key = _product_key(product)
    rate = min(int(grid_rate * PPM), _max_rate_ppm(key))
    return rate, (line_rates(product, rate) if rate >= 0 else None)
