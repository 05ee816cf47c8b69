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
from openice.decisioning.domain import as_read

__all__ = ["explained", "messages"]

LOCALES = Path(__file__).parents[1] / "web" / "locales"


@cache
def messages(locale: str = "en") -> dict[str, str]:
    return dict(json.loads((LOCALES / locale / "reasons.json").read_text(encoding="utf-8")))


def explained(
    score_reasons: Iterable[str],
    inputs: dict[str, Any],
    currency: str,
    words: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """Each stored score reason as ``{"code", "text"}``, the text from `words` (the English catalog by default). The
    applicant's value is read from the decision's stored `inputs` as a person reads it: an amount in major units of
    `currency`, the decision's product's."""
    catalog = messages() if words is None else words
    features = features_of(as_read(inputs, currency))
    return [{"code": r.code, "text": in_words(r, catalog, currency)} for r in adverse_reasons(score_reasons, features)]
