#!/usr/bin/env bash
# Debian's chromium and a CJK font for the browser tests (Playwright drives it through executable_path; it never
# downloads a browser). Installs with apt where it can; otherwise says what to install and carries on.
set -uo pipefail
font=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
if command -v chromium >/dev/null 2>&1 && [ -f "$font" ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "安装浏览器测试依赖：chromium、fonts-wqy-microhei（apt）" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null \
    && exit 0
fi
echo "注意：未能安装 chromium 与中文字体，浏览器测试将跳过。请以 root 运行或手动执行：" >&2
echo "  sudo apt-get install chromium fonts-wqy-microhei" >&2
exit 0
