"""The pages' two languages (en, zh-CN): message catalogs, and money and dates written the way each locale
reads them (babel's CLDR data: currency symbol and thousands separators, the locale's date order)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from openice.access.users import LOCALES
from openice.errors import Amount, OpeniceError
from openice.money import from_minor, minor_digits

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
        self.babel = _BABEL[self.locale]
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

    def money(self, minor: int | None, currency: str) -> str:
        """Major units with the currency, as the locale writes it: CN¥1,234.56 / ¥1,234.56."""
        if minor is None:
            return "—"
        return format_currency(from_minor(minor, currency), currency, locale=self.babel)

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
        return format_date(when, "medium", locale=self.babel)
