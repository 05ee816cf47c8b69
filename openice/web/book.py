"""A book by delinquency bucket as the console and the portal show it: live loans per currency and bucket (each
caller's own, through its scope), for the chart, the table and the CSV download."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.responses import Response

from openice.servicing import queries as servicing
from openice.servicing.buckets import BUCKETS
from openice.web.visit import Visit


def by_bucket(tx: Visit) -> dict[str, Any]:
    """Every bucket of every currency the caller holds, empty buckets as zeros, in ladder order."""
    rows = servicing.book_by_bucket(tx.scope)
    by = {(r.currency, r.bucket): r for r in rows}
    table = [
        {
            "currency": currency,
            "buckets": [
                {
                    "bucket": b,
                    "loans": by[currency, b].loans if (currency, b) in by else 0,
                    "principal": int(by[currency, b].principal) if (currency, b) in by else 0,
                }
                for b in BUCKETS
            ],
        }
        for currency in sorted({r.currency for r in rows})
    ]
    return {"table": table, "buckets": list(BUCKETS)}


def csv_response(tx: Visit) -> Response:
    """The bucket table as CSV, money in major units."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["currency", "bucket", "loans", "principal"])
    for block in by_bucket(tx)["table"]:
        for cell in block["buckets"]:
            writer.writerow(
                [
                    block["currency"],
                    cell["bucket"],
                    cell["loans"],
                    tx.words.amount(cell["principal"], block["currency"]),
                ]
            )
    return Response(
        out.getvalue(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="book.csv"'}
    )
