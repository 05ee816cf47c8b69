"""Exact money: integer minor units; Decimal only at the edges.

Rounding policy (stated once, used everywhere): half-up to the minor unit, computed per
installment; the last installment absorbs the residual so parts always sum to the whole.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from openice.errors import Amount, ValidationError

# A typed amount's ceiling: 10^12 minor units (10,000,000,000.00 in a two-decimal currency), the largest principal a
# product may allow, far inside a BIGINT, so sums and ratios of such amounts stay exact.
MAX_MINOR = 10**12
# An amount as a person or a client types it in a file or a body: a decimal string of major units, no grouping, no
# exponent. A JSON or YAML number is refused where this is asked for: it may be minor units.
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
MINOR_UNITS = {"CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "JPY": 0, "IDR": 2, "PHP": 2, "MXN": 2}


def minor_digits(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValidationError(
            f"unsupported currency {currency!r}; use one of {', '.join(sorted(MINOR_UNITS))}",
            field="currency",
        ) from None


def to_minor(amount: Decimal | str | int | float, currency: str, field: str = "amount") -> int:
    """Parse a decimal amount into minor units, refusing sub-minor precision rather than rounding it."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValidationError(f"{amount!r} is not a number", field=field, reason="amount.not_number") from None
    if not value.is_finite():
        raise ValidationError(f"{amount!r} is not a finite number", field=field, reason="amount.not_number")
    scaled = value.scaleb(minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{amount} has more decimals than {currency} allows ({minor_digits(currency)})",
            field=field,
            reason="amount.decimals",
            values={"digits": minor_digits(currency)},
        )
    return int(scaled)


def to_minor_within(amount: Decimal | str, currency: str, field: str, least: int, most: int) -> int:
    """`to_minor`, refusing an amount outside [least, most] minor units naming the field and both bounds in major
    units with the currency: the range check every typed amount (a file, a body, a form) needs after its conversion."""
    minor = to_minor(amount, currency, field)
    if not least <= minor <= most:
        raise ValidationError(
            f"{amount} is not from {format_money(least, currency)} to {format_money(most, currency)}",
            field=field,
            reason="amount.range",
            values={"least": Amount(least, currency), "most": Amount(most, currency)},
        )
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    digits = minor_digits(currency)
    return (Decimal(minor).scaleb(-digits)).quantize(Decimal(1).scaleb(-digits))


def fmt(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency):,}"


def format_money(minor: int, currency: str) -> str:
    """Money as a person reads it: major units with the currency, `1,234.56 CNY`."""
    return f"{fmt(minor, currency)} {currency}"


def round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def mul_div_half_up(a: int, b: int, c: int) -> int:
    """round_half_up(a * b / c) on non-negative integers, exactly as the SQL engines compute it."""
    return (2 * a * b + c) // (2 * c)


def mul_div_half_up_sql(a: str, b: str, c: str | int) -> str:
    """`mul_div_half_up` as SQL over integer expressions: the same formula, where `/` of integers truncates, which
    on non-negative operands is Python's `//` (SQLite and PostgreSQL; not DuckDB, whose `/` is a float's)."""
    return f"(2 * ({a}) * ({b}) + ({c})) / (2 * ({c}))"


def parse_rate(value: str | Decimal | float, field: str = "rate") -> Decimal:
    """Accept '12%', '0.12' or 0.12 and return the fraction (Decimal('0.12'))."""
    text = str(value).strip()
    try:
        rate = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"{value!r} is not a rate; write 12% or 0.12", field=field) from None
    if not rate.is_finite() or rate < 0:
        raise ValidationError(f"{value!r} must be a non-negative rate", field=field)
    return rate
