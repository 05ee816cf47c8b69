"""The pages' two languages (en, zh-CN): message catalogs, and money and dates written the way each locale
reads them (babel's CLDR data: currency symbol and thousands separators, the locale's date order)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from openice.access.users import LOCALES
from openice.errors import Amount, OpeniceError
from openice.money import from_minor, minor_digits, to_minor

DEFAULT = "en"
_BABEL = {"en": "en", "zh-CN": "zh_CN"}


@cache
def catalog(locale: str) -> dict[str, str]:
    """Every message of a locale: the files of `locales/LOCALE/` (one per part of the site) together. A key defined
    in two files is an error, not a silent override."""
    merged: dict[str, str] = {}
    for part in sorted((Path(__file__).parent / "locales" / locale).glob("*.json")):
        messages = json.loads(part.read_text(encoding="utf-8"))
        twice = merged.keys() & messages.keys()
        if twice:
            raise ValueError(f"{part}: {sorted(twice)} already defined in another file of {locale}")
        merged.update(messages)
    return merged


@cache
def _cldr(name: str) -> Locale:
    """A locale's CLDR data, parsed once: given a locale's name, babel parses it and looks its data up on every call."""
    return Locale.parse(name)


# Amounts whose written form a currency's writer is checked against babel's before it is trusted.
_SAMPLES = (0, 1, -1, 7, 99, -100, 12_345, 1_000_000, -123_456_789, 10**15 + 1)


@cache
def _money_writer(babel: Locale, currency: str) -> Callable[[int], str]:
    """How this locale writes amounts of this currency, read once off babel's own output: its sign, symbol and
    separators around digits grouped by three, so a long page's amounts cost string formatting instead of babel's
    pattern machinery each. A locale that groups otherwise, or whose result differs from babel's on any sample,
    keeps babel's way."""
    digits = minor_digits(currency)
    symbols = babel.number_symbols["latn"]
    group, point = symbols["group"], symbols["decimal"]

    def babel_way(minor: int) -> str:
        return format_currency(from_minor(minor, currency), currency, locale=babel)

    one = "1" + (point + "0" * digits if digits else "")
    positive, negative = babel_way(10**digits).split(one), babel_way(-(10**digits)).split(one)
    if len(positive) != 2 or len(negative) != 2:
        return babel_way

    def fast_way(minor: int) -> str:
        major, cents = divmod(abs(minor), 10**digits)
        figure = f"{major:,}".replace(",", group) + (f"{point}{cents:0{digits}d}" if digits else "")
        before, after = negative if minor < 0 else positive
        return before + figure + after

    return fast_way if all(fast_way(m) == babel_way(m) for m in _SAMPLES) else babel_way


@lru_cache(maxsize=4096)
def _written_day(babel: Locale, when: date) -> str:
    return format_date(when, "medium", locale=babel)


def best_locale(accept_language: str | None) -> str:
    """The first of the browser's languages the pages speak (any Chinese reads zh-CN)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


class Words:
    """Everything a template writes in the reader's language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else DEFAULT
        self.babel = _cldr(_BABEL[self.locale])
        self.messages = catalog(self.locale)

    def __call__(self, key: str, **values: Any) -> str:
        text = self.messages.get(key) or catalog(DEFAULT).get(key, key)
        return text.format(**values) if values else text

    def name(self, prefix: str, value: str) -> str:
        """A code's name in this language (a transaction kind, a step), or the code itself when it has none."""
        return self.messages.get(f"{prefix}.{value}") or catalog(DEFAULT).get(f"{prefix}.{value}", value)

    def error(self, error: OpeniceError, with_field: bool = False) -> str:
        """A domain error in this language: the words for its `reason`, with its amounts and dates as this locale
        writes them; the error's English text for a cause the catalogs do not know (naming its field when
        `with_field`, for an error shown away from any field)."""
        text = self.messages.get(f"error.{error.reason}") if error.reason else None
        if text is None:
            return str(error) if with_field else error.message
        return text.format(**{name: self._value(value) for name, value in error.values.items()})

    def _value(self, value: object) -> object:
        if isinstance(value, Amount):
            return self.money(value.minor, value.currency)
        if isinstance(value, date):
            return self.day(value)
        if isinstance(value, int):
            return self.number(value)
        return value

    def money(self, minor: int | str | None, currency: str) -> str:
        """Major units with the currency, as the locale writes it: CN¥1,234.56 / ¥1,234.56. A string is an amount
        as the API serves it (a decimal string of major units, e.g. an investigation report's)."""
        if minor is None:
            return "—"
        return _money_writer(self.babel, currency)(to_minor(minor, currency) if isinstance(minor, str) else minor)

    def amount(self, minor: int, currency: str) -> str:
        """The bare major-unit figure for a form's input (no symbol, no separators)."""
        return str(from_minor(minor, currency))

    def minor_per_major(self, currency: str) -> int:
        """What a chart divides minor units by to plot major units (100 for CNY, 1 for JPY)."""
        return int(10 ** minor_digits(currency))

    def number(self, value: int | float | Decimal) -> str:
        return format_decimal(value, locale=self.babel)

    def percent(self, value: float | Decimal | None, digits: int = 2) -> str:
        if value is None:
            return "—"
        return format_percent(value, format="#,##0." + "0" * digits + "%", locale=self.babel)

    def day(self, value: date | str | None) -> str:
        if value is None:
            return "—"
        when = date.fromisoformat(value[:10]) if isinstance(value, str) else value
        return _written_day(self.babel, when)
