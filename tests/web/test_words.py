"""Amounts and days as the pages write them are exactly babel's (CLDR's) writing for the reader's locale, for every
currency the book supports, from one minor unit to the largest balances, negative or not: the quick writer the
pages use is checked against babel itself, not against a copy of its output."""

from __future__ import annotations

from datetime import date, timedelta

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from hypothesis import given
from hypothesis import strategies as st

from openice.money import MINOR_UNITS, from_minor
from openice.web.i18n import Words

LOCALES = {"en": "en", "zh-CN": "zh_CN"}
amounts = st.one_of(st.integers(-1_000, 1_000), st.integers(-(10**17), 10**17))


@given(locale=st.sampled_from(sorted(LOCALES)), currency=st.sampled_from(sorted(MINOR_UNITS)), minor=amounts)
def test_an_amount_is_written_as_babel_writes_it(locale: str, currency: str, minor: int) -> None:
    expected = format_currency(from_minor(minor, currency), currency, locale=Locale.parse(LOCALES[locale]))
    assert Words(locale).money(minor, currency) == expected


@given(locale=st.sampled_from(sorted(LOCALES)), days=st.integers(0, 40_000))
def test_a_day_is_written_as_babel_writes_it(locale: str, days: int) -> None:
    when = date(1970, 1, 1) + timedelta(days=days)
    expected = format_date(when, "medium", locale=LOCALES[locale])
    assert Words(locale).day(when) == Words(locale).day(when.isoformat()) == expected


def test_the_writing_differs_by_locale_and_currency() -> None:
    assert Words("en").money(-123_456_789, "CNY") == "-CN¥1,234,567.89"
    assert Words("zh-CN").money(-123_456_789, "CNY") == "-¥1,234,567.89"
    assert Words("en").money(5, "JPY") == "¥5"
    assert Words("en").money(None, "CNY") == "—"
