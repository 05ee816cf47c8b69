"""Credit assessment: scorecard + LightGBM champion, model packages, reason codes, reports, monitoring.

Import what you need from its module (``openice.scoring.loaded_model.Scorer``): nothing loads here, so commands
that never score do not pay LightGBM's import.
"""
