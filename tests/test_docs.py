"""The docs point only to files in the repository, and the analytics input the commands' help points to is listed
in full."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from openice.analytics.backends import TABLES

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# [text](target) outside code spans; a target with a scheme or only an anchor is not a file.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"`[^`]*`", "", page.read_text(encoding="utf-8"))
    return [t.split("#")[0] for t in LINK.findall(text) if "://" not in t and not t.startswith(("#", "mailto:"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_to_a_file(page: Path) -> None:
    missing = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert missing == [], missing


def test_no_page_cites_a_file_outside_the_repository() -> None:
    """DESIGN.md was the brief the project started from; it is not in the repository."""
    for page in PAGES:
        assert "DESIGN.md" not in page.read_text(encoding="utf-8"), page.name


def test_analytics_doc_lists_every_input_column() -> None:
    text = (ROOT / "docs" / "analytics.md").read_text(encoding="utf-8")
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", text, re.MULTILINE)}
    for table, columns in TABLES.items():
        assert table in rows, table
        assert re.findall(r"`(\w+)`", rows[table]) == list(columns), table


@pytest.mark.parametrize("command", [["metrics"], ["report", "quarterly"]])
def test_analytics_help_names_the_input_and_the_doc(command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "openice", *command, "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())
    assert "docs/analytics.md" in help_text and "lists every column read" in help_text
    for table in ("loans", "installments", "allocations", "journal_lines", "portfolio_snapshots", "drawdowns"):
        assert table in help_text, table
