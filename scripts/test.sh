#!/usr/bin/env bash
# The whole test suite, PostgreSQL included: set up, make sure PostgreSQL is up, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export OPENICE_TEST_PG_URL=${OPENICE_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable at 127.0.0.1:5432: cannot run the storage tests" >&2; exit 1; }
export OPENICE_REQUIRE_PG=1
# The browser test drives Debian's Chromium headless through Playwright; no browser is ever downloaded by Playwright.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser test"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
.venv/bin/ruff check openice tests bench
.venv/bin/ruff format --check openice tests bench
.venv/bin/mypy  # the files and strictness per package are in pyproject.toml
.venv/bin/lint-imports  # the layering contracts in pyproject.toml (docs/architecture.md)
exec .venv/bin/python -m pytest -n 2 -q "$@"
