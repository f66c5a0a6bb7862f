#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, mypy, the dependency audit, pytest (SQLite and PostgreSQL,
# and the browser tests in Debian's chromium, which scripts/browser-deps.sh installs where apt is available).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/browser-deps.sh
.venv/bin/ruff check .
.venv/bin/mypy classifier service
.venv/bin/python scripts/audit.py
.venv/bin/python -m pytest "$@"
