"""Credit assessment: scorecard + LightGBM champion, model packages, reason codes, reports, monitoring."""

from openice.scoring.scorer import Reason, Scorer, ScoreResult

__all__ = ["Reason", "ScoreResult", "Scorer"]
