"""A mistake on the command line, in any command group, is one line on stderr naming the option as typed (or the
environment variable), exit code 2, and nothing on stdout, so a script reading the results never reads an error as
one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openice.cli import app
from openice.storage.engine import make_engine, migrate
from tests.conftest import START


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["schedule", "--principal", "abc", "--rate", "12%", "--tenor", "12"], "--principal"),  # servicing
        (["model", "train", "--data", "missing.csv", "--target", "y", "--out", "out"], "--data"),  # scoring
        (["metrics", "--quarter", "2026Q9"], "--quarter"),  # analytics
        (["collections", "queue", "--stage", "nonsense"], "--stage"),  # collections
        (["whatif", "--change", "missing.yaml"], "--change"),  # simulation
        (["pii", "rotate"], "OPENICE_PII_KEY"),  # decisioning
        (["api-key", "create", "--role", "bogus"], "--role"),  # the service
    ],
)
def test_a_mistake_is_one_line_on_stderr_and_exit_2(
    args: list[str], field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENICE_PII_KEY", raising=False)
    monkeypatch.setenv("OPENICE_DB", f"sqlite:///{tmp_path / 'book.db'}")
    migrate(make_engine(), START)  # a book to refuse the mistake on
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {field}: "), result.stderr
