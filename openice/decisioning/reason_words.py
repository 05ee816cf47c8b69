"""The model's adverse reasons as code and words, for every reader: the pages in the reader's language, the API and
the investigation report in English.

The words are the pages' catalog `web/locales/<locale>/reasons.json`, one place for translators; readers without a
language of their own (an API client, an institution's system) get the English one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from openice.decisioning.adverse import adverse_reasons, features_of, in_words

__all__ = ["explained", "messages"]

LOCALES = Path(__file__).parents[1] / "web" / "locales"


@cache
def messages(locale: str = "en") -> dict[str, str]:
    return dict(json.loads((LOCALES / locale / "reasons.json").read_text(encoding="utf-8")))


def explained(
    score_reasons: Iterable[str],
    inputs: Mapping[str, Any],
    words: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Each stored score reason as ``{"code", "text"}``, the text from `words` (the English catalog by default)."""
    catalog = messages() if words is None else words
    return [{"code": r.code, "text": in_words(r, catalog)} for r in adverse_reasons(score_reasons, features_of(inputs))]
