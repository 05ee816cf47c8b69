"""The deployment this database serves: SaaS (many institutions on one platform, the default when no row is
stored) or on-premise (one institution running openice alone). One row, written by `openice db init --mode`."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, String, Table, Text

from openice.storage.columns import metadata

deployment = Table(
    "deployment",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one deployment per database
    Column("mode", String(16), nullable=False),  # saas | on-premise
    Column("institution_code", Text, nullable=True),  # on-premise: the one institution
    Column("set_at", String(32), nullable=False),
    CheckConstraint("id = 1", name="ck_deployment_one_row"),
)
