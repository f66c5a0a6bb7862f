#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, mypy, pytest (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy classifier service
.venv/bin/python -m pytest "$@"
