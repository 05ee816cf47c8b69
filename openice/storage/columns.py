"""The metadata every table module adds its tables to, and the column types they share.

Both SQLite (embedded) and PostgreSQL (production) hold the same schema. Dates are integer day numbers (days since
1970-01-01), so day arithmetic in set-based SQL is the same on every engine; `openice.storage.days` converts at the
edge. Money is integer minor units.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

metadata = MetaData()

Money = BigInteger
Day = Integer
Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite auto-increments only INTEGER keys
