"""The API is a thin layer over the stages: its routers import services, query functions and view models, never
SQL or tables, so a route cannot read a row around the tenant scope."""

from __future__ import annotations

import ast
from pathlib import Path

import openice.api

API = Path(openice.api.__file__).parent


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
        rows = {n for n in names if n.startswith("openice.storage.") and ("_tables" in n or n.endswith(".direct"))}
        assert not rows, (path.name, rows)  # tables and the direct path are the repositories' (openice.access, stages)
        if "router = APIRouter" in path.read_text():
            sql = {n for n in names if n.split(".")[0] == "sqlalchemy" or n.startswith("openice.storage.")}
            assert not sql, (path.name, sql)
