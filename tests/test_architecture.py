"""The package graph points one way: the import-linter contracts in pyproject.toml hold, and they do catch an
upward import (checked on a copy of the source with one added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter 未安装（scripts/test.sh 会安装开发工具）")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _copy(tmp_path: Path) -> Path:
    for name in ("service", "classifier"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("service/tickets/service.py", "from service.tickets.routes import router"),  # a service imports its router
        ("service/notify/models.py", "from service.notify.service import enqueue"),  # a table imports logic
        ("service/signing.py", "from service.tickets.models import Ticket"),  # a primitive imports the domain
        ("classifier/decision.py", "from service.labels import zh"),  # the pure library imports the service
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, upward: str) -> None:
    copy = _copy(tmp_path)
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{upward}  # noqa\n", encoding="utf-8")
    done = _lint(copy)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout + done.stderr
