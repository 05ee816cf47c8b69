"""The KPI page's money: ABS issued is a row by currency, written in major units of that currency, in the table as
the reader's locale writes it and in the CSV as a decimal beside the currency."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from openice.web import kpi
from openice.web.i18n import Words


def test_abs_issued_is_written_in_its_own_currency() -> None:
    # 123,456 fen of CNY issued and 5,000 cents of USD, in a book whose other money is CNY; every other metric empty.
    metrics: dict[str, Any] = defaultdict(lambda: {"unit": "count", "rows": []})
    metrics["abs_issued"] = {
        "unit": "money",
        "rows": [{"group": {"currency": "CNY"}, "value": 123_456}, {"group": {"currency": "USD"}, "value": 5_000}],
    }
    funnel = dict.fromkeys(kpi.FUNNEL, 0)
    for locale, written in (("zh-CN", ["¥1,234.56", "US$50.00"]), ("en", ["CN¥1,234.56", "$50.00"])):
        t = Words(locale)
        (section,) = [s for s in kpi.sections(t, {"metrics": metrics}, funnel) if s.name == "abs_issued"]
        assert [kpi.shown(t, r, "CNY") for r in section.rows] == written
    table = list(csv.reader(io.StringIO(kpi.csv_text(t, section, "CNY"))))
    assert table == [["item", "unit", "value"], ["CNY", "CNY", "1234.56"], ["USD", "USD", "50.00"]]


def test_a_book_without_one_currency_says_its_money_is_in_minor_units() -> None:
    # Products lending CNY and USD: the book records no single currency, so its balance of 1,234,567 is a sum of fen
    # and cents, said as minor units rather than written as either currency; ABS issued keeps its own currency.
    metrics: dict[str, Any] = defaultdict(lambda: {"unit": "count", "rows": []})
    metrics["outstanding_balance"] = {"unit": "money", "rows": [{"group": {}, "value": 1_234_567}]}
    metrics["abs_issued"] = {"unit": "money", "rows": [{"group": {"currency": "USD"}, "value": 5_000}]}
    funnel = dict.fromkeys(kpi.FUNNEL, 0)
    for locale, balance in (("en", "1,234,567 minor units"), ("zh-CN", "1,234,567 最小货币单位")):
        t = Words(locale)
        headline, issued = (
            s for s in kpi.sections(t, {"metrics": metrics}, funnel) if s.name in {"headline", "abs_issued"}
        )
        assert [kpi.shown(t, r, "") for r in headline.rows if r.value is not None] == [balance]
        assert [kpi.shown(t, r, "") for r in issued.rows] == (["$50.00"] if locale == "en" else ["US$50.00"])
    t = Words("en")
    headline = kpi.sections(t, {"metrics": metrics}, funnel)[0]
    (row,) = [r for r in headline.rows if r.value is not None]
    table = list(csv.reader(io.StringIO(kpi.csv_text(t, kpi.Section("headline", None, [row]), ""))))
    assert table[1][1:] == ["minor units", "1234567"]
