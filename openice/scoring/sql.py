"""The scorecard as SQL: one CASE per feature, so a database can compute the package's exact points.

Points are decimal literals with two places, so DuckDB (DECIMAL) and PostgreSQL (NUMERIC) add them
exactly; split points are cast from their shortest round-trip text to DOUBLE PRECISION, so a bin edge
means the same number as in Python. Missing values get the package's missing points (own bin or the
imputed value's bin), unseen categories the "Other" bin, as in Python.
"""

from __future__ import annotations

from openice.scoring.scorecard import FeatureCard, Scorecard

__all__ = ["scorecard_sql"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _num(value: float) -> str:
    return f"CAST('{value!r}' AS DOUBLE PRECISION)"


def _pts(value: float) -> str:
    return f"{value:.2f}"


def _case(card: FeatureCard) -> str:
    col = _ident(card.name)
    lines = [f"WHEN {col} IS NULL THEN {_pts(card.points[card.missing_bin])}"]
    if card.kind == "numeric":
        if card.special_bin is not None:
            specials = ", ".join(_num(v) for v in card.special)
            lines.append(f"WHEN {col} IN ({specials}) THEN {_pts(card.points[card.special_bin])}")
        for i, split in enumerate(card.splits):
            lines.append(f"WHEN {col} < {_num(split)} THEN {_pts(card.points[i])}")
        otherwise = card.points[len(card.splits)]
    else:
        by_bin: dict[int, list[str]] = {}
        for cat, b in card.groups.items():
            by_bin.setdefault(b, []).append(cat)
        for b, cats in sorted(by_bin.items()):
            values = ", ".join(_text(c) for c in sorted(cats))
            lines.append(f"WHEN CAST({col} AS VARCHAR) IN ({values}) THEN {_pts(card.points[b])}")
        assert card.other_bin is not None, "a categorical card has an Other bin"
        otherwise = card.points[card.other_bin]
    body = "\n    ".join(lines)
    return f"CASE\n    {body}\n    ELSE {_pts(otherwise)}\n  END"


def scorecard_sql(scorecard: Scorecard, table: str = "applications") -> str:
    """A SELECT adding ``points_<feature>`` columns and their total ``scorecard_points`` to every row."""
    if not scorecard.cards:
        return f"SELECT *, 0.00 AS scorecard_points FROM {_ident(table)}"
    cols = [f"  {_case(c)} AS {_ident('points_' + c.name)}" for c in scorecard.cards]
    total = " + ".join(_ident("points_" + c.name) for c in scorecard.cards)
    return (
        f"SELECT *, {total} AS scorecard_points\nFROM (\nSELECT *,\n"
        + ",\n".join(cols)
        + f"\nFROM {_ident(table)}\n) AS scored"
    )
