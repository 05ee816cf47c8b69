"""The command line starts without loading the engines: each command imports what it uses when it runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "numpy",
    "pydantic",
    "pandas",
    "pyarrow",
    "duckdb",
    "lightgbm",
    "numba",
    "sklearn",
    "optbinning",
    "fastapi",
    "uvicorn",
    "matplotlib",
    "weasyprint",
    "pyspark",
    "sqlglot",
    "alembic",
    "jinja2",
    "highspy",
)


def test_openice_help_imports_no_engine() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from openice.cli import app; "
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_openice_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "openice", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"openice {version('openice')}"
