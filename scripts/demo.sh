#!/usr/bin/env bash
# The main job on the embedded default (SQLite + DuckDB): set up, then `openice demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/openice demo "$@"
