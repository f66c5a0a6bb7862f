#!/usr/bin/env bash
# The date-sensitive tests at the hours that used to break them, in both machine time zones: 23:30 and 00:30
# Shanghai time (either side of the service's midnight, while UTC is still on the day before) and 17:00 UTC.
# The session's clock (time.time, datetime.now) starts at that moment and runs on: `pytest --fake-now`, with
# time-machine. (libfaketime was tried first: under it Python's timed waits fail with EINVAL or hang.)
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# the suites whose answers depend on "today": clocks, reports, pages, sessions, learning weeks, the demo month
TESTS=(tests/service/deadlines tests/service/reports tests/service/tickets tests/service/web tests/service/learning
       tests/service/notify tests/service/intake tests/service/test_demo.py)
existing=()
for t in "${TESTS[@]}"; do [ -e "$t" ] && existing+=("$t"); done
status=0
for run in "UTC|2026-12-03T23:30:00+08:00" "UTC|2026-12-04T00:30:00+08:00" "UTC|2026-12-03T17:00:00+00:00" \
           "Asia/Shanghai|2026-12-03T23:30:00+08:00" "Asia/Shanghai|2026-12-04T00:30:00+08:00"; do
  zone=${run%%|*}; at=${run#*|}
  echo "== 机器时区 TZ=$zone，时钟从 $at 开始 ==" >&2
  # the browser and real-server tests run in other processes, on the real clock: they are left out here
  TZ=$zone .venv/bin/python -m pytest -p no:randomly --fake-now "$at" \
    --ignore=tests/service/web/test_browser.py "${existing[@]}" "$@" || status=1
done
exit $status
