"""The API is a thin layer over the stages: its routers import services, query functions and view models, never
SQL or tables, so a route cannot read a row around the tenant scope."""

from __future__ import annotations

import ast
from pathlib import Path

import openice.api

API = Path(openice.api.__file__).parent
# The API's own stores over its own tables: the keys it authenticates, the idempotent requests and the audit trail.
OWN_STORES = {"keys.py", "records.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_api_imports_no_tables_and_its_routers_no_sql() -> None:
    for path in sorted(API.glob("*.py")):
        names = imports(path)
        if path.name not in OWN_STORES:
            tables = {n for n in names if n.startswith("openice.storage.") and n.endswith("_tables")}
            assert not tables, (path.name, tables)
        if "router = APIRouter" in path.read_text():
            sql = {n for n in names if n.split(".")[0] == "sqlalchemy" or n.startswith("openice.storage.")}
            assert not sql, (path.name, sql)
