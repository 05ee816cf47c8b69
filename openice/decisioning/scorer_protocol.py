"""What the assessment needs from a scoring model: `openice.scoring.loaded_model.Scorer` satisfies it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ScoreLike(Protocol):
    """Read-only members, so a frozen result (`ScoreResult`) satisfies it."""

    @property
    def pd(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def grade(self) -> str: ...
    @property
    def reasons(self) -> Sequence[Any]: ...  # items with .code and .text, or plain strings


class ScorerLike(Protocol):
    @property
    def package_hash(self) -> str: ...

    def score(self, application: dict[str, Any]) -> ScoreLike: ...


def reason_text(reason: Any) -> str:
    code, text = getattr(reason, "code", None), getattr(reason, "text", None)
    return f"{code}: {text}" if code and text else str(reason)
