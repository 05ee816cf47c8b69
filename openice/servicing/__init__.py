"""Servicing: products, schedules, the double-entry ledger, loan operations and end of day."""
