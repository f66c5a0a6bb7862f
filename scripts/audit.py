"""Dependency audit for CI: pip-audit, completed with PyPI's own advisories where pip-audit cannot look.

pip-audit asks PyPI for each installed release (/pypi/<name>/<version>/json). Some mirrors answer only the project
document (/pypi/<name>/json), which carries PyPI's advisories for the newest release; pip-audit then skips the
package and still reports "no known vulnerabilities". This script runs pip-audit, and for every package it skipped
whose installed version is the newest release, reads those advisories itself. It fails on any known vulnerability
and names every package it could not audit, so a silent pass is impossible.

    .venv/bin/python scripts/audit.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

PYPI = "https://pypi.org/pypi/{name}/json"
OURSELVES = "hotline"  # the project itself, installed editable
# advisories judged not to apply, each with the reason (none so far)
IGNORED: dict[str, str] = {}


def pip_audit() -> dict[str, Any]:
    audit = Path(sys.executable).with_name("pip-audit")
    command = [str(audit), "--skip-editable", "--progress-spinner", "off", "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"pip-audit 运行失败：{done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def newest_release_advisories(name: str, version: str) -> list[dict[str, Any]] | None:
    """PyPI's advisories for the installed release if it is the newest one; None when that cannot be told."""
    try:
        with urllib.request.urlopen(PYPI.format(name=name), timeout=30) as response:
            project = json.load(response)
    except OSError:
        return None
    if project.get("info", {}).get("version") != version:
        return None
    return [v for v in project.get("vulnerabilities", []) if not v.get("withdrawn")]


def main() -> int:
    report = pip_audit()
    deps: list[dict[str, Any]] = report["dependencies"]
    found = [(d["name"], d["version"], v["id"]) for d in deps if "vulns" in d for v in d["vulns"]]
    audited = sum(1 for d in deps if "vulns" in d)
    skipped = [str(d["name"]) for d in deps if "skip_reason" in d and d["name"] != OURSELVES]
    versions = {str(n): metadata.version(str(n)) for n in skipped}
    with ThreadPoolExecutor(max_workers=8) as pool:
        looked_up = pool.map(lambda n: newest_release_advisories(n, versions[n]), skipped)
        advisories = dict(zip(skipped, looked_up, strict=True))
    unaudited = sorted(n for n, a in advisories.items() if a is None)
    for name, items in advisories.items():
        for item in items or []:
            found.append((name, versions[name], str(item.get("id"))))
    audited += len(skipped) - len(unaudited)
    found = [f for f in found if f[2] not in IGNORED]
    print(f"依赖审计：已审计 {audited} 个包，其中 {len(skipped) - len(unaudited)} 个按 PyPI 最新版公告核对")
    if unaudited:
        print(f"无法审计（镜像不提供该版本的公告，且已装版本不是最新版）：{', '.join(unaudited)}")
    for name, version, vuln in found:
        print(f"✗ {name} {version}: {vuln}")
    if not audited:
        print("✗ 一个包也没有审计到：漏洞数据源不可达")
        return 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
