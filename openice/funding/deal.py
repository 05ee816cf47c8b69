"""An asset-backed deal as its file describes it: the pool at closing, the tranches most senior first, the fees, how
principal is paid, the reserve account and the triggers (pure, no I/O).

Money arrives as decimal strings in major units and is held as integer minor units of the deal's currency; rates are
annual fractions held as Decimal. Everything is checked once, here, so the waterfall can trust what it is given: a bad
value is refused with the path of its field (`tranches[1].balance`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from openice.errors import ValidationError
from openice.money import format_money, minor_digits, parse_rate, to_minor

E = TypeVar("E", bound=StrEnum)


class PrincipalPayment(StrEnum):
    SEQUENTIAL = "sequential"  # each tranche in order of seniority until its balance is zero
    PRO_RATA = "pro-rata"  # every tranche in proportion to its opening balance


class TriggerMetric(StrEnum):
    CUMULATIVE_DEFAULT_RATE = "cumulative_default_rate"  # defaults to date over the pool's balance at closing


@dataclass(frozen=True)
class Tranche:
    """A class of notes. One without a coupon is the subordinated residual tranche: it takes principal last and
    whatever cash is left at the bottom of the waterfall."""

    name: str
    balance: int
    coupon: Decimal | None

    @property
    def residual(self) -> bool:
        return self.coupon is None


@dataclass(frozen=True)
class Fee:
    """A senior fee (servicing, trustee) charged each month on the pool's opening balance."""

    name: str
    annual_rate: Decimal


@dataclass(frozen=True)
class ReserveAccount:
    """Cash held for the notes: all of it is available each month, and it is refilled up to `target` after principal
    (an `initial` above the target is released the first month)."""

    target: int
    initial: int


@dataclass(frozen=True)
class Trigger:
    """Once `metric` is above `above`, principal is paid as `then` says from that month on, for good."""

    metric: TriggerMetric
    above: Decimal
    then: PrincipalPayment


@dataclass(frozen=True)
class Eligibility:
    """Which loans of the live book may go into the pool (`pool.select`). Shares are fractions of the deal's
    `pool_balance`, so a loan is taken or left on its own figures in one pass over the book."""

    cut_off: date | None  # None: the date the pool is cut on
    current_only: bool  # no day past due
    min_remaining_tenor: int | None  # months still to fall due
    max_remaining_tenor: int | None
    products: frozenset[str] | None  # None: any
    grades: frozenset[str] | None
    max_borrower_share: Decimal | None
    province_limits: Mapping[str, Decimal]  # province -> its largest share; a province not named has no limit


@dataclass(frozen=True)
class Revolving:
    """The revolving period: through period `until_period` the principal distribution amount buys new eligible loans
    instead of paying the notes; with `ends_on_trigger` a breached trigger ends it for good (early amortisation)."""

    until_period: int
    ends_on_trigger: bool

    def on(self, period: int, breached: bool) -> bool:
        """Whether `period` still revolves, given whether a trigger has been breached by it."""
        return period <= self.until_period and not (self.ends_on_trigger and breached)


@dataclass(frozen=True)
class CleanUpCall:
    """The servicer buys the pool back once its balance falls below `below` x its balance at closing."""

    below: Decimal

    def due(self, pool: int, closing: int) -> bool:
        """Whether a pool of `pool` minor units is below the share of `closing`, compared exactly."""
        return Decimal(pool) < self.below * closing


ANY_LOAN = Eligibility(None, True, None, None, None, None, None, {})
# The deal's loans' funder is `ABS:` and its name (servicing.loan.deal_funder), held in a 64-character column.
MAX_NAME = 60


@dataclass(frozen=True)
class Deal:
    """A deal checked whole when it is read (`from_dict`), so the waterfall and the projections can trust it."""

    name: str
    currency: str
    pool_balance: int
    tranches: tuple[Tranche, ...]
    fees: tuple[Fee, ...]
    principal_payment: PrincipalPayment
    reserve_account: ReserveAccount
    triggers: tuple[Trigger, ...]
    eligibility: Eligibility = ANY_LOAN
    derecognise: bool = False  # sold to the trust (off the balance sheet), else pledged for a secured borrowing
    revolving: Revolving | None = None
    clean_up_call: CleanUpCall | None = None

    @property
    def residual(self) -> Tranche:
        return self.tranches[-1]

    @property
    def notes(self) -> int:
        """The coupon tranches' balance: what the residual tranche is subordinated to."""
        return sum(t.balance for t in self.tranches[:-1])

    def sized_to(self, pool: int) -> Deal:
        """The deal over a pool cut of `pool` minor units: the notes as the file sizes them, the residual tranche
        whatever the pool holds beyond them; a pool smaller than the notes is refused."""
        if pool < self.notes:
            raise ValidationError(
                f"the pool cut holds {format_money(pool, self.currency)}, less than the notes' "
                f"{format_money(self.notes, self.currency)}",
                field="pool_balance",
            )
        residual = replace(self.residual, balance=pool - self.notes)
        return replace(self, pool_balance=pool, tranches=(*self.tranches[:-1], residual))

    @classmethod
    def from_dict(cls, data: Any) -> Deal:
        """Build from the deal file's data (YAML or JSON), refusing unknown keys, missing ones, negative amounts and
        tranches that do not add up to the pool, each with the path of its field."""
        root = _mapping(data, None, required=("name", "currency", "pool_balance", "tranches"), optional=_OPTIONAL)
        name = root["name"]
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("must be a non-empty name", field="name")
        if "," in name:
            raise ValidationError(
                "may not hold a comma: an investor's key lists its deals separated by commas", field="name"
            )
        if len(name) > MAX_NAME:
            raise ValidationError(f"is {len(name)} characters long; a deal's name has at most {MAX_NAME}", field="name")
        currency = root["currency"]
        if not isinstance(currency, str):
            raise ValidationError("must be a currency code such as CNY", field="currency")
        minor_digits(currency)  # refuses a currency the platform does not hold
        pool = _money(root["pool_balance"], currency, "pool_balance")
        if pool == 0:
            raise ValidationError("must be above zero", field="pool_balance")
        tranches = tuple(_tranche(t, currency, f"tranches[{i}]") for i, t in enumerate(_list(root, "tranches")))
        _check_tranches(tranches, pool, currency)
        fees = tuple(_fee(f, f"fees[{i}]") for i, f in enumerate(_list(root, "fees")))
        _unique([f.name for f in fees], "fees")
        reserve = _reserve(root.get("reserve_account"), currency)
        triggers = tuple(_trigger(t, f"triggers[{i}]") for i, t in enumerate(_list(root, "triggers")))
        return cls(
            name=name,
            currency=currency,
            pool_balance=pool,
            tranches=tranches,
            fees=fees,
            principal_payment=_choice(
                PrincipalPayment, root.get("principal_payment", "sequential"), "principal_payment"
            ),
            reserve_account=reserve,
            triggers=triggers,
            eligibility=_eligibility(root.get("eligibility")),
            derecognise=_flag(root.get("derecognise", False), "derecognise"),
            revolving=_revolving(root.get("revolving")),
            clean_up_call=_clean_up_call(root.get("clean_up_call")),
        )


_OPTIONAL = (
    "fees",
    "principal_payment",
    "reserve_account",
    "triggers",
    "eligibility",
    "derecognise",
    "revolving",
    "clean_up_call",
)
_ELIGIBILITY = (
    "cut_off",
    "current_only",
    "min_remaining_tenor",
    "max_remaining_tenor",
    "products",
    "grades",
    "max_borrower_share",
    "province_limits",
)


def _mapping(
    data: Any, field: str | None, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """`data` as a mapping with the keys given and no other; `field` is its path, None for the deal itself."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"must be a mapping with {', '.join(required or optional)}", field=field or "deal")
    prefix = f"{field}." if field else ""
    unknown = sorted(str(k) for k in data if k not in required and k not in optional)
    if unknown:
        raise ValidationError(
            f"unknown key; the keys are {', '.join((*required, *optional))}", field=f"{prefix}{unknown[0]}"
        )
    for key in required:
        if key not in data:
            raise ValidationError("is required", field=f"{prefix}{key}")
    return data


def _list(root: Mapping[str, Any], key: str) -> list[Any]:
    value = root.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError("must be a list", field=key)
    return value


def _money(value: Any, currency: str, field: str) -> int:
    """A non-negative amount in major units; a number YAML read as a float is taken by its decimal text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValidationError(f'{value!r} is not an amount; write a decimal string such as "1000.00"', field=field)
    minor = to_minor(value, currency, field)
    if minor < 0:
        raise ValidationError(f"{value} is negative", field=field)
    return minor


def _rate(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValidationError(f"{value!r} is not a rate; write 0.05 for 5%", field=field)
    return parse_rate(value, field)


def _choice(kind: type[E], value: Any, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not one of {', '.join(k.value for k in kind)}", field=field) from None


def _tranche(data: Any, currency: str, field: str) -> Tranche:
    t = _mapping(data, field, required=("name", "balance"), optional=("coupon",))
    if not isinstance(t["name"], str) or not t["name"].strip():
        raise ValidationError("must be a non-empty name", field=f"{field}.name")
    coupon = t.get("coupon")
    return Tranche(
        name=t["name"],
        balance=_money(t["balance"], currency, f"{field}.balance"),
        coupon=None if coupon is None else _rate(coupon, f"{field}.coupon"),
    )


def _check_tranches(tranches: tuple[Tranche, ...], pool: int, currency: str) -> None:
    if not tranches:
        raise ValidationError("must list at least the residual tranche", field="tranches")
    _unique([t.name for t in tranches], "tranches")
    for i, t in enumerate(tranches[:-1]):
        if t.residual:
            raise ValidationError(
                "has no coupon, so it is the residual tranche, which must come last", field=f"tranches[{i}].coupon"
            )
    if not tranches[-1].residual:
        raise ValidationError(
            "the last tranche must be the residual tranche, without a coupon", field=f"tranches[{len(tranches) - 1}]"
        )
    total = sum(t.balance for t in tranches)
    if total != pool:
        raise ValidationError(
            f"balances add up to {format_money(total, currency)}, not the pool_balance {format_money(pool, currency)}",
            field="tranches",
        )


def _unique(names: list[str], field: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValidationError(f"{name!r} is named twice", field=f"{field}[{i}].name")


def _fee(data: Any, field: str) -> Fee:
    f = _mapping(data, field, required=("name", "annual_rate"))
    if not isinstance(f["name"], str) or not f["name"].strip():
        raise ValidationError("must be a non-empty name", field=f"{field}.name")
    return Fee(name=f["name"], annual_rate=_rate(f["annual_rate"], f"{field}.annual_rate"))


def _reserve(data: Any, currency: str) -> ReserveAccount:
    if data is None:
        return ReserveAccount(target=0, initial=0)
    r = _mapping(data, "reserve_account", required=("target", "initial"))
    return ReserveAccount(
        target=_money(r["target"], currency, "reserve_account.target"),
        initial=_money(r["initial"], currency, "reserve_account.initial"),
    )


def _trigger(data: Any, field: str) -> Trigger:
    t = _mapping(data, field, required=("metric", "above", "then"))
    then = _choice(PrincipalPayment, t["then"], f"{field}.then")
    if then is not PrincipalPayment.SEQUENTIAL:
        raise ValidationError("a trigger can only switch principal to sequential", field=f"{field}.then")
    above = _rate(t["above"], f"{field}.above")
    if above > 1:
        raise ValidationError(
            f"{above} is above 1: a rate of defaults is a fraction of the pool", field=f"{field}.above"
        )
    return Trigger(metric=_choice(TriggerMetric, t["metric"], f"{field}.metric"), above=above, then=then)


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{value!r} is not true or false", field=field)
    return value


def _months(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{value!r} is not a whole number of months", field=field)
    return value


def _share(value: Any, field: str) -> Decimal:
    share = _rate(value, field)
    if not 0 < share <= 1:
        raise ValidationError(f"{share} is not a share of the pool above 0 and at most 1", field=field)
    return share


def _names(value: Any, field: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str | int) for v in value):
        raise ValidationError("must be a non-empty list of codes", field=field)
    return frozenset(str(v) for v in value)


def _eligibility(data: Any) -> Eligibility:
    """The `eligibility` block; every key optional, loans current by default."""
    if data is None:
        return ANY_LOAN
    field = "eligibility"
    e = _mapping(data, field, required=(), optional=_ELIGIBILITY)
    cut_off = e.get("cut_off")
    if cut_off is not None and not isinstance(cut_off, date):
        try:
            cut_off = date.fromisoformat(str(cut_off))
        except ValueError:
            raise ValidationError(f"{cut_off!r} is not a date such as 2026-06-30", field=f"{field}.cut_off") from None
    low = _months(e.get("min_remaining_tenor"), "eligibility.min_remaining_tenor")
    high = _months(e.get("max_remaining_tenor"), "eligibility.max_remaining_tenor")
    if low is not None and high is not None and low > high:
        raise ValidationError(f"{high} is below min_remaining_tenor {low}", field="eligibility.max_remaining_tenor")
    provinces = e.get("province_limits") or {}
    if not isinstance(provinces, Mapping):
        raise ValidationError("must map each province to its largest share", field="eligibility.province_limits")
    borrower = e.get("max_borrower_share")
    return Eligibility(
        cut_off=cut_off,
        current_only=_flag(e.get("current_only", True), "eligibility.current_only"),
        min_remaining_tenor=low,
        max_remaining_tenor=high,
        products=_names(e.get("products"), "eligibility.products"),
        grades=_names(e.get("grades"), "eligibility.grades"),
        max_borrower_share=None if borrower is None else _share(borrower, "eligibility.max_borrower_share"),
        province_limits={str(k): _share(v, f"eligibility.province_limits.{k}") for k, v in sorted(provinces.items())},
    )


def _revolving(data: Any) -> Revolving | None:
    """The `revolving` block: `until_period` (the last period that revolves, at least 1) and `ends_on_trigger`
    (true unless said otherwise)."""
    if data is None:
        return None
    r = _mapping(data, "revolving", required=("until_period",), optional=("ends_on_trigger",))
    until = _months(r["until_period"], "revolving.until_period")
    if not until:
        raise ValidationError("must be a period number of at least 1", field="revolving.until_period")
    return Revolving(until, _flag(r.get("ends_on_trigger", True), "revolving.ends_on_trigger"))


def _clean_up_call(data: Any) -> CleanUpCall | None:
    if data is None:
        return None
    c = _mapping(data, "clean_up_call", required=("below",))
    below = _rate(c["below"], "clean_up_call.below")
    if not 0 < below < 1:
        raise ValidationError(
            f"{below} is not a share of the pool's closing balance above 0 and below 1", field="clean_up_call.below"
        )
    return CleanUpCall(below)
