#!/usr/bin/env bash
# Make .venv with openice and everything its commands and tests need. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=.venv/.openice-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  # Pinned to the versions the tests and benchmarks ran with: an unpinned upstream release moved the figures before.
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[${OPENICE_EXTRAS:-ml,decision,api,pdf,dev,spark}]"
  touch "$stamp"
fi
