"""Every word a page writes exists in both languages."""

from __future__ import annotations

import re
from pathlib import Path

from openice.web.i18n import catalog

WEB = Path(__file__).parents[2] / "openice" / "web"


def test_each_part_of_the_site_has_its_words_in_both_languages() -> None:
    parts = {p.name for p in (WEB / "locales" / "en").glob("*.json")}
    assert parts and parts == {p.name for p in (WEB / "locales" / "zh-CN").glob("*.json")}


def test_both_catalogs_have_the_same_keys_and_no_empty_text() -> None:
    en, zh = catalog("en"), catalog("zh-CN")
    assert set(en) == set(zh)
    assert all(v.strip() for v in [*en.values(), *zh.values()])
    for key in en:  # the same placeholders on both sides
        assert set(re.findall(r"{(\w+)}", en[key])) == set(re.findall(r"{(\w+)}", zh[key])), key


def test_every_key_a_template_or_route_names_is_in_the_catalogs() -> None:
    used = set()
    for template in WEB.glob("templates/**/*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_.+-]+)'\s*[,)]", template.read_text(encoding="utf-8")))
    for module in WEB.glob("*.py"):
        used |= set(re.findall(r'\bwords\("([a-z0-9_.]+)"', module.read_text(encoding="utf-8")))
    assert used, "no keys found: the pattern no longer matches the templates"  # keys built from a code are not
    missing = used - set(catalog("en"))
    assert missing == set()
