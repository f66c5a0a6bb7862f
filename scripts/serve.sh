#!/usr/bin/env bash
# Set up (if needed) and start Hotline on SQLite with the shipped street model.
# Without HOTLINE_WEBHOOK_SECRET it starts in demo mode (well-known secret, demo users and tickets).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${HOTLINE_WEBHOOK_SECRET:-}" ]; then
  export HOTLINE_DEMO=1
  echo "未设置 HOTLINE_WEBHOOK_SECRET：以演示模式启动（仅供本机试用）" >&2
  .venv/bin/hotline demo --tickets "${HOTLINE_DEMO_TICKETS:-40}"
fi
exec .venv/bin/hotline serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
