"""Credit assessment: scorecard + LightGBM champion, model packages, reason codes, reports, monitoring.

The public names load on first use, so commands that never score do not pay LightGBM's import.
"""

from typing import Any

__all__ = ["Reason", "ScoreResult", "Scorer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from openice.scoring import scorer

        return getattr(scorer, name)
    raise AttributeError(name)
