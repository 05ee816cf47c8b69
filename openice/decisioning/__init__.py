"""Preliminary credit assessment: registration, identity and fraud checks, score, policy, credit line."""
