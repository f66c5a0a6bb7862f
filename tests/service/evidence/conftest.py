"""A real S3-compatible server for the store tests (moto's standalone server in its own process), and an AWS-free
environment, so no test here reads ~/.aws or the machine's AWS_* variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# dummy credentials: moto accepts any, and no real account is ever named
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
START_TIMEOUT_SECONDS = 30.0


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    # files that do not exist: boto3 finds no profile, region or credentials but the ones the test passes
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> str | None:
    """None once the server accepts connections; otherwise why it never will."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"进程已退出，返回码 {process.returncode}"
        if _listening(port):
            return None
        time.sleep(0.1)
    return f"{START_TIMEOUT_SECONDS:g} 秒内没有监听端口 {port}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # the server runs in its own session: the whole process group goes, any child it started included
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server started for this session."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    # the server needs no credentials; the machine's AWS settings stay out of it
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    except OSError as exc:
        pytest.skip(f"无法启动 moto S3 服务器：{exc}")
    failure = _wait_until_listening(process, port)
    if failure is not None:
        _stop(process)
        pytest.skip(f"moto S3 服务器未能启动：{failure}；日志见 {log}：{log.read_text(errors='replace')[-500:]}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
