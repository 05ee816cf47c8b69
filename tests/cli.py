"""Run the `openice` command as a user does: a subprocess of this interpreter (`python -m openice`), with the code
under test first on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def openice(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPENICE_")}
    environ |= {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **env}
    return subprocess.run(
        [sys.executable, "-m", "openice", *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=600
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The error line of a refused or failed command, after checking it is the only output."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    return result.stderr.strip()
