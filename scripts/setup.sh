#!/usr/bin/env bash
# Create .venv and install Hotline. Idempotent.
#   bash scripts/setup.sh          runtime only (what `hotline serve` needs)
#   bash scripts/setup.sh --dev    plus the development tools (tests, linters, browser driver, audit)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
