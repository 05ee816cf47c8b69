"""A loan product is data: validated once, then used by schedules, origination and end of day."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from openice.errors import ValidationError
from openice.money import (
    DECIMAL,
    MAX_MINOR,
    from_minor,
    minor_digits,
    mul_div_half_up,
    parse_rate,
    round_half_up,
    to_minor_within,
)
from openice.servicing.buckets import BUCKETS
from openice.servicing.daycount import DayCount

PPM = 1_000_000
# A product's money, typed in its file and shown to people in major units of its currency (held in minor units), with
# the least each may be.
MONEY_FIELDS = {"min_principal": 1, "max_principal": 1, "referral_fee_flat": 0}


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal-installment"
    EQUAL_PRINCIPAL = "equal-principal"
    INTEREST_ONLY = "interest-only"
    BULLET = "bullet"


class PrepaymentMode(StrEnum):
    REAMORTISE = "reamortise"  # keep the number of installments, lower each one
    SHORTEN = "shorten"  # keep the installment amount, finish earlier


class AllocationStrategy(StrEnum):
    """How a repayment is spread over what is owed.

    by-installment: oldest installment first, each one's components in `component_order`.
    by-component: every installment's first component, then every installment's second, ...
    """

    BY_INSTALLMENT = "by-installment"
    BY_COMPONENT = "by-component"


COMPONENTS = ("penalty", "fee", "interest", "principal")

# Provision for contingent liabilities on a capital-heavy loan: a rate per delinquency bucket
# (C, M1, M2, M3, M4+) of the outstanding guaranteed principal, trued up at each month end.
PROVISION_BUCKETS = BUCKETS
DEFAULT_PROVISION_RATES = (Decimal("0.01"), Decimal("0.2"), Decimal("0.5"), Decimal("0.8"), Decimal(1))
BPS = 10_000
MAX_TENOR_MONTHS = 360


def check_tenor_months(months: int, field: str = "tenor") -> None:
    """A tenor is a whole number of months, at least one and at most thirty years."""
    if not 1 <= months <= MAX_TENOR_MONTHS:
        raise ValidationError(
            f"{months} is not a tenor: give a whole number of months from 1 to {MAX_TENOR_MONTHS}", field=field
        )


def to_ppm(rate: Decimal, field_name: str) -> int:
    """Rates are held as integer parts per million so every engine computes the same cents."""
    scaled = rate * PPM
    if scaled != scaled.to_integral_value():
        raise ValidationError(f"{rate} has more than 6 decimal places as a fraction", field=field_name)
    return int(scaled)


@dataclass(frozen=True)
class LoanProduct:
    code: str
    currency: str
    tenors: tuple[int, ...]
    method: RepaymentMethod
    nominal_rate: Decimal
    day_count: DayCount = DayCount.THIRTY_360
    facilitation_fee_rate: Decimal = Decimal(0)
    monthly_service_fee_rate: Decimal = Decimal(0)
    late_fee_daily_rate: Decimal = Decimal(0)
    late_fee_cap_rate: Decimal = Decimal(0)
    grace_days: int = 0
    prepayment_allowed: bool = True
    prepayment_fee_rate: Decimal = Decimal(0)
    apr_cap: Decimal | None = None
    write_off_dpd: int = 180
    non_accrual_dpd: int = 90  # beyond it, interest and fees are held in suspense until collected
    min_principal: int = 1
    max_principal: int = MAX_MINOR
    component_order: tuple[str, ...] = COMPONENTS
    allocation: AllocationStrategy = AllocationStrategy.BY_INSTALLMENT
    referral_fee_bps: int = 0  # capital-light: the institution pays the platform this share of principal
    referral_fee_flat: int = 0  # ... plus this amount in minor units, per loan
    provision_rates: tuple[Decimal, ...] = DEFAULT_PROVISION_RATES
    # Capital-heavy: the guarantee's fair value at origination, as fractions of principal: the expected credit loss
    # over the loan's life plus a margin. The schedule's fees pay for it first; the rest of them is servicing
    # revenue. Not given: the guarantee is priced at all of the fees.
    guarantee_expected_loss_rate: Decimal | None = None
    guarantee_margin_rate: Decimal = Decimal(0)
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code or not self.code.replace("-", "").replace("_", "").isalnum():
            raise ValidationError("must be letters, digits, '-' or '_'", field="code")
        minor_digits(self.currency)
        if not self.tenors:
            raise ValidationError("give at least one tenor in months", field="tenors")
        for tenor in self.tenors:
            check_tenor_months(tenor, "tenors")
        for name in (
            "nominal_rate",
            "facilitation_fee_rate",
            "monthly_service_fee_rate",
            "late_fee_daily_rate",
            "late_fee_cap_rate",
            "prepayment_fee_rate",
            "guarantee_margin_rate",
        ):
            value = getattr(self, name)
            if value < 0:
                raise ValidationError("must not be negative", field=name)
            to_ppm(value, name)
        if self.guarantee_expected_loss_rate is not None:
            if not 0 <= self.guarantee_expected_loss_rate <= 1:
                raise ValidationError("must be between 0 and 1 of principal", field="guarantee_expected_loss_rate")
            to_ppm(self.guarantee_expected_loss_rate, "guarantee_expected_loss_rate")
        if self.nominal_rate > 10:
            raise ValidationError("a nominal rate above 1000% is not credible", field="nominal_rate")
        if self.grace_days < 0:
            raise ValidationError("must not be negative", field="grace_days")
        if self.write_off_dpd < 1:
            raise ValidationError("must be at least 1 day", field="write_off_dpd")
        if self.non_accrual_dpd < 0:
            raise ValidationError("must not be negative", field="non_accrual_dpd")
        if not 0 < self.min_principal <= self.max_principal:
            raise ValidationError("need 0 < min_principal <= max_principal", field="min_principal")
        if sorted(self.component_order) != sorted(COMPONENTS):
            raise ValidationError(f"must order exactly {', '.join(COMPONENTS)}", field="component_order")
        if not isinstance(self.referral_fee_bps, int) or not 0 <= self.referral_fee_bps <= BPS:
            raise ValidationError("must be whole basis points between 0 and 10000", field="referral_fee_bps")
        if not isinstance(self.referral_fee_flat, int) or self.referral_fee_flat < 0:
            raise ValidationError("must be a non-negative whole number of minor units", field="referral_fee_flat")
        if len(self.provision_rates) != len(PROVISION_BUCKETS) or any(not 0 <= r <= 1 for r in self.provision_rates):
            raise ValidationError(
                f"must be {len(PROVISION_BUCKETS)} rates between 0 and 1, one per bucket "
                f"{', '.join(PROVISION_BUCKETS)}",
                field="provision_rates",
            )
        for rate in self.provision_rates:
            to_ppm(rate, "provision_rates")

    def guarantee_share_ppm(self, principal: int, fees: int) -> int:
        """The guarantee's share of a capital-heavy schedule's fees, in parts per million: its fair value
        (principal x (expected loss + margin), half-up) over the fees, at most all of them."""
        if self.guarantee_expected_loss_rate is None or fees <= 0:
            return PPM
        fair_value = round_half_up(principal * (self.guarantee_expected_loss_rate + self.guarantee_margin_rate))
        return min(PPM, mul_div_half_up(fair_value, PPM, fees))

    def referral_fee(self, principal: int) -> int:
        """The referral fee of one capital-light loan: basis points of principal (half-up) plus the flat part."""
        return mul_div_half_up(principal, self.referral_fee_bps, BPS) + self.referral_fee_flat

    def check_tenor(self, tenor: int) -> None:
        if tenor not in self.tenors:
            raise ValidationError(
                f"product {self.code} offers tenors {list(self.tenors)} months, not {tenor}", field="tenor"
            )

    def typed_dict(self) -> dict[str, Any]:
        """The product as a person reads and types it (`from_typed`'s input): money in major units of its currency."""
        data = self.to_dict()
        for name in MONEY_FIELDS:
            data[name] = str(from_minor(data[name], self.currency))
        return data

    @classmethod
    def from_typed(cls, data: dict[str, Any]) -> LoanProduct:
        """A product as a person types it (its file): `min_principal`, `max_principal` and `referral_fee_flat` as
        decimal strings of major units in its `currency`, converted once; a number (it may be minor units), more
        decimals than the currency has or an amount out of range is refused naming the field."""
        converted = dict(data)
        currency = data.get("currency")
        if not isinstance(currency, str):
            raise ValidationError("is required: the currency the product lends in, e.g. CNY", field="currency")
        minor_digits(currency)
        for name, least in MONEY_FIELDS.items():
            if name not in data:
                continue
            value = data[name]
            if not isinstance(value, str) or not DECIMAL.fullmatch(value.strip()):
                raise ValidationError(
                    f'must be a decimal string in major units of {currency}, e.g. "50000.00", not {value!r}',
                    field=name,
                )
            converted[name] = to_minor_within(value.strip(), currency, name, least, MAX_MINOR)
        return cls.from_dict(converted)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Decimal):
                data[key] = str(value)
            elif isinstance(value, tuple):
                data[key] = [str(v) if isinstance(v, Decimal) else v for v in value]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoanProduct:
        """Build from JSON/YAML-like data, naming the field of any bad value."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"unknown product field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        kwargs: dict[str, Any] = dict(data)
        for name in ("code", "currency", "tenors", "method", "nominal_rate"):
            if name not in kwargs:
                raise ValidationError("is required", field=name)
        try:
            kwargs["method"] = RepaymentMethod(kwargs["method"])
        except ValueError:
            raise ValidationError(f"must be one of {[m.value for m in RepaymentMethod]}", field="method") from None
        if "day_count" in kwargs:
            try:
                kwargs["day_count"] = DayCount(kwargs["day_count"])
            except ValueError:
                raise ValidationError(f"must be one of {[d.value for d in DayCount]}", field="day_count") from None
        if "allocation" in kwargs:
            try:
                kwargs["allocation"] = AllocationStrategy(kwargs["allocation"])
            except ValueError:
                raise ValidationError(
                    f"must be one of {[a.value for a in AllocationStrategy]}", field="allocation"
                ) from None
        for name in (
            "nominal_rate",
            "facilitation_fee_rate",
            "monthly_service_fee_rate",
            "late_fee_daily_rate",
            "late_fee_cap_rate",
            "prepayment_fee_rate",
            "apr_cap",
            "guarantee_expected_loss_rate",
            "guarantee_margin_rate",
        ):
            if kwargs.get(name) is not None:
                kwargs[name] = parse_rate(kwargs[name], field=name)
        for name in ("tenors", "component_order", "provision_rates"):
            if name in kwargs:
                try:
                    kwargs[name] = tuple(kwargs[name])
                except TypeError:
                    raise ValidationError("must be a list", field=name) from None
        if "provision_rates" in kwargs:
            kwargs["provision_rates"] = tuple(parse_rate(r, field="provision_rates") for r in kwargs["provision_rates"])
        try:
            kwargs["tenors"] = tuple(int(t) for t in kwargs["tenors"])
        except (TypeError, ValueError):
            raise ValidationError("must be whole numbers of months", field="tenors") from None
        for name in (
            "grace_days",
            "write_off_dpd",
            "non_accrual_dpd",
            "min_principal",
            "max_principal",
            "referral_fee_bps",
            "referral_fee_flat",
        ):
            if name in kwargs and (isinstance(kwargs[name], bool) or not isinstance(kwargs[name], int)):
                raise ValidationError("must be a whole number", field=name)
        return cls(**kwargs)


def demo_products() -> list[LoanProduct]:
    """The products the demo and benchmarks use: a spread of methods and day counts."""
    return [
        LoanProduct(
            code="CASH-EI",
            name="Cash loan, equal installments",
            currency="CNY",
            tenors=(3, 6, 9, 12, 18, 24, 36),
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            nominal_rate=Decimal("0.18"),
            day_count=DayCount.THIRTY_360,
            facilitation_fee_rate=Decimal("0.01"),
            monthly_service_fee_rate=Decimal("0.002"),
            late_fee_daily_rate=Decimal("0.0005"),
            late_fee_cap_rate=Decimal("0.05"),
            grace_days=3,
            prepayment_fee_rate=Decimal("0.01"),
            apr_cap=Decimal("0.36"),
            referral_fee_bps=30,
            guarantee_expected_loss_rate=Decimal("0.015"),
            guarantee_margin_rate=Decimal("0.004"),
        ),
        LoanProduct(
            code="CASH-EP",
            name="Cash loan, equal principal",
            currency="CNY",
            tenors=(6, 12, 24),
            method=RepaymentMethod.EQUAL_PRINCIPAL,
            nominal_rate=Decimal("0.15"),
            day_count=DayCount.ACT_365,
            monthly_service_fee_rate=Decimal("0.001"),
            late_fee_daily_rate=Decimal("0.0005"),
            late_fee_cap_rate=Decimal("0.05"),
            grace_days=1,
            apr_cap=Decimal("0.24"),
        ),
        LoanProduct(
            code="SME-IO",
            name="Small business, interest only",
            currency="CNY",
            tenors=(6, 12),
            method=RepaymentMethod.INTEREST_ONLY,
            nominal_rate=Decimal("0.12"),
            day_count=DayCount.ACT_360,
            late_fee_daily_rate=Decimal("0.0003"),
            late_fee_cap_rate=Decimal("0.03"),
            apr_cap=Decimal("0.24"),
        ),
        LoanProduct(
            code="BNPL-BULLET",
            name="Pay later, one payment",
            currency="CNY",
            tenors=(1, 3),
            method=RepaymentMethod.BULLET,
            nominal_rate=Decimal("0.10"),
            day_count=DayCount.ACT_365,
            facilitation_fee_rate=Decimal("0.005"),
            late_fee_daily_rate=Decimal("0.0005"),
            late_fee_cap_rate=Decimal("0.05"),
            apr_cap=Decimal("0.36"),
            referral_fee_flat=200,
        ),
    ]
