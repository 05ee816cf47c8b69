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

from openice.decisioning.domain import canonical_hash, parse
from openice.money import round_half_up
from openice.servicing.products import PPM, LoanProduct
from openice.servicing.schedule import Schedule, build_schedule

PROBE_DAY = date(2026, 1, 1)  # APR depends on the calendar only through month lengths; any fixed day will do
# Headroom under a cap: a loan's real APR moves by a few basis points with its start date (actual day
# counts) and its amount (interest rounded to the minor unit).
CAP_MARGIN = Decimal("0.0005")
DEFAULT_GRID = {"A": "0.08", "B": "0.11", "C": "0.15", "D": "0.19", "E": "0.24", "F": "0.30"}
DEFAULT_INCOME_MULTIPLE: dict[str, float] = {"A": 10, "B": 8, "C": 6, "D": 4, "E": 3, "F": 2}  # credit line: income x


class Policy(BaseModel):
    """What the platform accepts; a change of policy is a new hash recorded on every decision."""

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
    min_residual_income: int = Field(default=150_000, ge=0, description="minor units a month after all debt")
    income_multiple: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_INCOME_MULTIPLE))
    max_line: int = Field(default=20_000_000, gt=0)
    min_line: int = Field(default=100_000, gt=0)
    line_days: int = Field(default=365, gt=0)
    pricing: dict[str, Decimal] = Field(default_factory=lambda: {g: Decimal(r) for g, r in DEFAULT_GRID.items()})

    @field_validator("pricing")
    @classmethod
    def _rates(cls, grid: dict[str, Decimal]) -> dict[str, Decimal]:
        for grade, rate in grid.items():
            if not 0 <= rate < 10:
                raise ValueError(f"rate {rate} of grade {grade} must be between 0 and 10")
        return grid

    @property
    def policy_hash(self) -> str:
        return canonical_hash(self.model_dump(mode="json"))

    def age_range(self, product: LoanProduct) -> tuple[int, int]:
        """A product may narrow the platform's age range through its `extra` data."""
        return int(product.extra.get("min_age", self.min_age)), int(product.extra.get("max_age", self.max_age))

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        return parse(cls, yaml.safe_load(Path(path).read_text()))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return parse(cls, data)


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
