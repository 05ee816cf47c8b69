"""What the assessment needs from a scoring model: `openice.scoring.loaded_model.Scorer` satisfies it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ScoreLike(Protocol):
    pd: float
    score: float
    grade: str
    reasons: Sequence[Any]  # items with .code and .text, or plain strings


class ScorerLike(Protocol):
    package_hash: str

    def score(self, application: dict[str, Any]) -> ScoreLike: ...


def reason_text(reason: Any) -> str:
    code, text = getattr(reason, "code", None), getattr(reason, "text", None)
    return f"{code}: {text}" if code and text else str(reason)
