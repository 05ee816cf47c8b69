"""Storage behind a small seam: SQLAlchemy Core tables, repositories and a unit of work."""
