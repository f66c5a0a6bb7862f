#!/usr/bin/env bash
# Set up (if needed) and start Hotline on SQLite with the shipped street model.
# Without HOTLINE_WEBHOOK_SECRET it starts in demo mode (well-known secret, demo users and a month of demo history),
# and prints how to log in and how to send a signed ticket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
host="${HOST:-127.0.0.1}"
port="${PORT:-8000}"
if [ -z "${HOTLINE_WEBHOOK_SECRET:-}" ]; then
  export HOTLINE_DEMO=1
  echo "未设置 HOTLINE_WEBHOOK_SECRET：以演示模式启动（仅供本机试用）" >&2
  # the address to open in a browser: a wildcard listen address is reached on loopback
  case "$host" in
    0.0.0.0 | "::" | "[::]") url_host=127.0.0.1 ;;
    *:*) url_host="[$host]" ;;
    *) url_host="$host" ;;
  esac
  .venv/bin/hotline demo --tickets "${HOTLINE_DEMO_TICKETS:-40}" --url "http://${url_host}:${port}"
  echo "服务启动中（加载模型需要一点时间），出现 “Uvicorn running” 或 “Application startup complete” 后即可访问上面的地址。" >&2
fi
exec .venv/bin/hotline serve --host "$host" --port "$port"
