"""Funding: asset-backed securities over the platform's own book (the deal, its waterfall, projections)."""
