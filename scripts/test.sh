#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, mypy, the dependency audit, pytest (SQLite and PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy classifier service
.venv/bin/python scripts/audit.py
.venv/bin/python -m pytest "$@"
