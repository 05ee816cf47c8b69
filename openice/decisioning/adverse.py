"""The model's own adverse reasons in plain words: which feature lowered the score, and the applicant's value of it.

A decision stores the scorecard's reason codes (``EMP_LENGTH_CATEGORY: ...``), which name a feature and how its bin
lost points but not the bin itself; the bin is the applicant's value, kept in the decision's stored inputs. So a reason
is read back from both, and written from a message catalog (`web/locales/*/reasons.json`), not from the code, for a
borrower, an institution and an operator alike. A feature or a value the catalog does not know is written in a
readable form of its name, never as the raw code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openice.scoring.features import REASON_LEVELS, code_of

__all__ = ["AdverseReason", "adverse_reasons", "features_of", "in_words", "plain_number"]


@dataclass(frozen=True)
class AdverseReason:
    code: str  # as the model gave it: EMP_LENGTH_CATEGORY
    feature: str  # the feature's name in lower case (emp_length), or its code's in lower case when not among the inputs
    level: str  # HIGH | LOW | MISSING | SPECIAL | CATEGORY | OTHER, "" for a code of another shape
    value: Any  # the applicant's value, None when missing or unknown
    seen: bool  # whether the feature is among the application's inputs (else its value is not known at all)


def features_of(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the model saw of a decision's stored inputs (as `assess.score_features` gives it): the bureau attributes,
    the application's own fields and the applicant's age."""
    application = inputs["application"]
    own = {k: v for k, v in application.items() if k != "bureau"}
    return {**application.get("bureau", {}), **own, "age": inputs.get("age")}


def adverse_reasons(score_reasons: Iterable[str], features: Mapping[str, Any]) -> list[AdverseReason]:
    """Each stored score reason (``CODE`` or ``CODE: text``) with its feature and the applicant's value of it."""
    by_code = {code_of(name): name for name in features}
    found = []
    for stored in score_reasons:
        code = stored.split(":", 1)[0].strip()
        stem, _, level = code.rpartition("_")
        if level not in REASON_LEVELS or not stem:
            stem, level = code, ""
        name = by_code.get(stem)
        value = None if name is None else features[name]
        if isinstance(value, float) and math.isnan(value):
            value = None
        found.append(AdverseReason(code, (name or stem).lower(), level, value, name is not None))
    return found


def plain_number(value: float) -> str:
    """A figure with thousands separators and no trailing zeros (35,000; 67.4)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _readable(name: str) -> str:
    """A name without a catalog entry, as words: emp_length -> Emp length, NEW_THING -> New thing."""
    words = " ".join(str(name).replace("_", " ").split())
    return words[:1].upper() + words[1:].lower() if words else "?"


def _as_typed(value: str) -> str:
    """A category without a catalog entry, as the applicant's record has it, its underscores as spaces (CA)."""
    return " ".join(value.replace("_", " ").split())


def in_words(reason: AdverseReason, messages: Mapping[str, str], currency: str = "") -> str:
    """The reason as a sentence of the catalog's language: "Employment length: under 1 year lowered the score".
    Figures are written as both languages write them (35,000; 67.4); an amount (a Decimal of major units, as
    `domain.as_read` gives the application's money) with its `currency` (4,000.00 CNY)."""
    feature = messages.get(f"reason.feature.{reason.feature}") or _readable(reason.feature)
    if not reason.seen:
        return messages["reason.lowered_alone"].format(feature=feature)
    if reason.value is None:
        return messages["reason.lowered_missing"].format(feature=feature)
    if isinstance(reason.value, str):
        category = reason.value.lower()
        value = messages.get(f"reason.value.{reason.feature}.{category}") or _as_typed(reason.value)
        if reason.level == "OTHER":
            value = messages["reason.level.other"].format(value=value)
    else:
        money = isinstance(reason.value, Decimal)
        figure = f"{reason.value:,} {currency}" if money else plain_number(reason.value)
        unit = messages.get(f"reason.unit.{reason.feature}")
        figure = unit.format(value=figure) if unit else figure
        level = {"HIGH": "high", "LOW": "low", "SPECIAL": "special"}.get(reason.level)
        value = messages[f"reason.level.{level}"].format(value=figure) if level else figure
    return messages["reason.lowered"].format(feature=feature, value=value)
