"""Credit assessment: scorecard + LightGBM champion, model packages, reason codes, reports, monitoring."""

from openice.scoring.scorer import Reason, ScoreResult, Scorer

__all__ = ["Reason", "ScoreResult", "Scorer"]
