"""Settlement statements as documents: each line and total as a decimal string in the statement's currency (JSON),
and the CSV table of statements. One shape for the API, the command line and the pages, so the command line does not
load the web stack to print a statement."""

from __future__ import annotations

import csv
import io
from typing import Any

from openice.money import from_minor
from openice.servicing import queries as servicing
from openice.servicing import settlement


def amount(minor: int, currency: str) -> str:
    return str(from_minor(minor, currency))


def totals(lines: dict[str, int]) -> dict[str, int]:
    """Each side of a statement and its net, in minor units."""
    return {
        "owed_to_institution": settlement.side(lines, settlement.Side.TO_INSTITUTION),
        "owed_by_institution": settlement.side(lines, settlement.Side.BY_INSTITUTION),
        "kept_by_platform": settlement.side(lines, settlement.Side.KEPT),
        "net": settlement.net(lines),
    }


def statement_document(row: servicing.StatementRow) -> dict[str, Any]:
    """A statement with its money as decimal strings in its currency (JSON and CSV alike)."""
    s = row.statement
    return {
        "id": s.id,
        "institution": s.institution,
        "currency": s.currency,
        "period": s.period.value,
        "from": s.first.isoformat(),
        "to": s.last.isoformat(),
        "lines": {name: amount(value, s.currency) for name, value in s.lines.items()},
        **{name: amount(value, s.currency) for name, value in totals(s.lines).items()},
        "status": row.status,
        "settlement_id": row.settlement_id,
        "paid_on": row.paid_on.isoformat() if row.paid_on else None,
    }


def outstanding_document(owed: servicing.Outstanding) -> dict[str, Any]:
    return {
        "institution": owed.institution,
        "currency": owed.currency,
        "lines": {name: amount(value, owed.currency) for name, value in owed.lines.items()},
        **{name: amount(value, owed.currency) for name, value in totals(owed.lines).items()},
    }


CSV_COLUMNS = (
    "id",
    "institution",
    "currency",
    "period",
    "from",
    "to",
    *settlement.LINE_NAMES,
    "owed_to_institution",
    "owed_by_institution",
    "kept_by_platform",
    "net",
    "status",
    "settlement_id",
    "paid_on",
)


def statements_csv(rows: list[servicing.StatementRow]) -> str:
    """One row per statement, one column per line: amounts as decimal strings in the row's currency."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        document = statement_document(row)
        flat = {**document, **document["lines"]}
        writer.writerow(["" if flat[c] is None else flat[c] for c in CSV_COLUMNS])
    return out.getvalue()
