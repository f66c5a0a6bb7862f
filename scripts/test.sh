#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, mypy, the dependency audit, pytest (SQLite and PostgreSQL,
# and the browser tests in Debian's chromium, which scripts/browser-deps.sh installs where apt is available), then
# the date-sensitive tests at the hours around the service's midnight (scripts/any-hour.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/browser-deps.sh
.venv/bin/ruff check .
.venv/bin/mypy classifier service
.venv/bin/lint-imports --no-cache  # the package graph points one way (contracts in pyproject.toml)
.venv/bin/python scripts/audit.py
.venv/bin/python -m pytest "$@"
# the date-sensitive suites again at 23:30 and 00:30 Shanghai time and 17:00 UTC, machine TZ UTC and Asia/Shanghai
# (SQLite only: the PostgreSQL runs above already cover the SQL)
bash scripts/any-hour.sh -q -k "not postgres"
