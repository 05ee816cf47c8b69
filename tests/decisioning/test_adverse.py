"""The model's adverse reasons in plain words, in English and Chinese: every feature of the bundled data sets has words,
the applicant's value is shown in words, and a reason nobody wrote words for still never reads as its raw code."""

from __future__ import annotations

import pytest

from openice.datasets import load
from openice.decisioning.adverse import adverse_reasons, in_words
from openice.decisioning.reason_words import explained, messages

LOCALES = ("en", "zh-CN")
SHOWN_AS_TYPED = {"addr_state"}  # US state codes: a place's code reads as itself in both languages

INPUTS = {
    "application": {
        "income_monthly": 300_000,
        "purpose": "education",
        "bureau": {"emp_length": "emp_lt_1", "revol_util": 92.4, "annual_inc": 35000.0, "addr_state": "CA"},
    },
    "age": 41,
}


def test_the_two_catalogs_have_the_same_keys() -> None:
    assert set(messages("en")) == set(messages("zh-CN"))


@pytest.mark.parametrize("dataset", ["lending_club", "credit_data"])
@pytest.mark.parametrize("locale", LOCALES)
def test_every_feature_and_category_of_the_bundled_data_sets_has_words(dataset: str, locale: str) -> None:
    catalog = messages(locale)
    frame = load(dataset, include_leaky=True).frame
    for name in frame.columns:
        feature = name.lower()
        assert f"reason.feature.{feature}" in catalog, name
        if frame[name].dtype == object and feature not in SHOWN_AS_TYPED:
            for category in frame[name].dropna().unique():
                assert f"reason.value.{feature}.{str(category).lower()}" in catalog, (name, category)


def test_a_category_a_figure_with_its_unit_and_the_bin_direction_in_english() -> None:
    stored = ["EMP_LENGTH_CATEGORY: Length of employment is in a higher-risk category", "REVOL_UTIL_HIGH", "AGE_LOW"]
    assert explained(stored, INPUTS, "CNY") == [
        {"code": "EMP_LENGTH_CATEGORY", "text": "Employment length: under 1 year lowered the score"},
        {"code": "REVOL_UTIL_HIGH", "text": "Revolving credit utilisation: high (92.4%) lowered the score"},
        {"code": "AGE_LOW", "text": "Age: low (41) lowered the score"},
    ]


def test_the_same_reasons_in_chinese() -> None:
    stored = ["EMP_LENGTH_CATEGORY", "ANNUAL_INC_LOW", "PURPOSE_CATEGORY"]
    assert [r["text"] for r in explained(stored, INPUTS, "CNY", messages("zh-CN"))] == [
        "工作年限：不满1年，拉低了评分",
        "年收入：偏低（35,000），拉低了评分",
        "借款用途：教育，拉低了评分",
    ]


@pytest.mark.parametrize(
    ("currency", "en", "zh"),
    [
        # 300,000 minor units stored: 3,000.00 CNY (2 decimals), 300,000 JPY (none); never the stored 300,000 fen
        ("CNY", "Monthly income: low (3,000.00 CNY) lowered the score", "月收入：偏低（3,000.00 CNY），拉低了评分"),
        ("JPY", "Monthly income: low (300,000 JPY) lowered the score", "月收入：偏低（300,000 JPY），拉低了评分"),
    ],
)
def test_an_amount_is_quoted_in_major_units_of_the_products_currency(currency: str, en: str, zh: str) -> None:
    assert explained(["INCOME_MONTHLY_LOW"], INPUTS, currency) == [{"code": "INCOME_MONTHLY_LOW", "text": en}]
    assert explained(["INCOME_MONTHLY_LOW"], INPUTS, currency, messages("zh-CN"))[0]["text"] == zh
    assert INPUTS["application"]["income_monthly"] == 300_000  # the stored inputs, as hashed, are left as they were


@pytest.mark.parametrize("locale", LOCALES)
def test_a_missing_value_an_unusual_category_and_an_unknown_feature_never_read_as_the_code(locale: str) -> None:
    inputs = {"application": {"bureau": {"inq_fi": float("nan"), "addr_state": "WY", "shoe_size": 44}}, "age": 30}
    stored = ["INQ_FI_MISSING", "ADDR_STATE_OTHER", "SHOE_SIZE_HIGH", "NEVER_SEEN_LOW: a feature the inputs lack"]
    found = adverse_reasons(stored, {"inq_fi": float("nan"), "addr_state": "WY", "shoe_size": 44})
    assert [(r.feature, r.level, r.value, r.seen) for r in found] == [
        ("inq_fi", "MISSING", None, True),
        ("addr_state", "OTHER", "WY", True),
        ("shoe_size", "HIGH", 44, True),
        ("never_seen", "LOW", None, False),
    ]
    texts = [r["text"] for r in explained(stored, inputs, "CNY", messages(locale))]
    for code, text in zip(stored, texts, strict=True):
        assert code.split(":")[0] not in text and "_" not in text
    if locale == "en":
        assert texts == [
            "Personal finance inquiries: not given, which lowered the score",
            "State of residence: an unusual category (WY) lowered the score",
            "Shoe size: high (44) lowered the score",
            "Never seen lowered the score",
        ]
    else:
        assert texts[:2] == ["个人金融机构查询次数：未提供，拉低了评分", "居住州：少见的类别（WY），拉低了评分"]


def test_a_code_of_another_shape_reads_as_its_words() -> None:
    (found,) = adverse_reasons(["DELINQ: past delinquencies"], {"delinquencies_24m": 2})
    assert (found.feature, found.level, found.seen) == ("delinq", "", False)
    assert in_words(found, messages()) == "Delinq lowered the score"
