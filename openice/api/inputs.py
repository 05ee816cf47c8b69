"""What no request may carry, refused once at the edge of every `/v1` operation (its `deps.require`
dependency) before any model or query sees it: a NUL character in any text (path, query, body key or value:
PostgreSQL cannot store one, so it would fail deep in a statement, and SQLite would store it), a number JSON does
not have (`NaN`, `Infinity`, or `1e400`, which parses as infinity) and a whole number no BIGINT column holds. Each
is a 422 naming the field; the domain models then apply their own business bounds."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INT64 = 2**63 - 1  # the database's BIGINT
Location = tuple[str | int, ...]


class _NonFinite(str):
    """What the parser leaves for NaN, Infinity and -Infinity, so the walk can name the field that held it."""


def text_problem(value: str) -> str | None:
    """Why this text cannot be accepted, or None."""
    return "contains a NUL character; remove it" if "\x00" in value else None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, _NonFinite):
        return f"{value} is not a number; send a finite number"
    if isinstance(value, float) and not math.isfinite(value):
        return "is too large to be a number; send a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT64:
        return f"is beyond the largest whole number accepted ({MAX_INT64:,})"
    return None


def _walk(value: Any, where: Location, found: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            reason = text_problem(key)
            if reason is not None:
                found.append(_error(where, f"a key {reason}"))
            else:
                _walk(item, (*where, key), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*where, index), found)
    else:
        text = isinstance(value, str) and not isinstance(value, _NonFinite)
        reason = text_problem(value) if text else _number_problem(value)
        if reason is not None:
            found.append(_error(where, reason))


def _error(where: Location, reason: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": where, "msg": reason}


def body_errors(body: bytes) -> list[dict[str, Any]]:
    """The fields of a JSON body that no operation accepts. A body that is not JSON is left to the operation's
    own parsing, which refuses it as such; one nested deeper than the parser goes is refused here."""
    found: list[dict[str, Any]] = []
    try:
        _walk(json.loads(body, parse_constant=_NonFinite), ("body",), found)
    except ValueError:
        return []
    except RecursionError:
        return [_error(("body",), "is nested too deeply; no operation takes more than a few levels")]
    return found


def parameter_errors(path: dict[str, Any], query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Path and query parameters holding a NUL character (names included: they reach no query, but say so)."""
    found = [
        _error(("path", name), reason)
        for name, value in path.items()
        if isinstance(value, str) and (reason := text_problem(value)) is not None
    ]
    for name, value in query:
        reason = text_problem(name + value)
        if reason is not None:
            found.append(_error(("query", name.replace("\x00", "")), reason))
    return found
