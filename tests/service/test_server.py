"""The real thing: `hotline serve` as a process on loopback, driven over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SECRET, payload, signed_headers

HOTLINE = [sys.executable, "-m", "service.cli"]
READY_BUDGET_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        {
            "HOTLINE_DATABASE_URL": f"sqlite:///{tmp / 'server.db'}",
            "HOTLINE_WEBHOOK_SECRET": SECRET,
            "HOTLINE_RULES": str(ROOT / "rules.yaml"),
            "HOTLINE_MODEL": str(ROOT / "models" / "street"),
            "PYTHONPATH": str(ROOT),
        },
        **extra,
    )
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    yield from _serve(_env(tmp_path))


def _serve(env: dict[str, str], *args: str, log: Path | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [*HOTLINE, "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb") if log else subprocess.PIPE,
        start_new_session=True,
    )
    env = {**env, "HOTLINE_TEST_SERVER_PID": str(proc.pid)}
    base = f"http://127.0.0.1:{port}"
    # a loaded 2-core machine (the suite, PostgreSQL, a browser) can take minutes to start two model-loading workers
    deadline = time.monotonic() + READY_BUDGET_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else log.read_text() if log else ""
    else:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: uvicorn's workers and resource tracker too
        proc.wait(timeout=30)
        pytest.fail(f"server did not become ready in {READY_BUDGET_SECONDS} s")
    try:
        yield base, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _new_token(env: dict[str, str], name: str, role: str, office: str | None = None) -> str:
    """`hotline users create` as an administrator runs it; its last line is the token."""
    command = [*HOTLINE, "users", "create", "--name", name, "--role", role, *(["--office", office] if office else [])]
    created = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return created.stdout.strip().splitlines()[-1]


def test_signed_intake_and_user_token_over_real_http(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    body = json.dumps(payload(), ensure_ascii=False).encode()
    r = httpx.post(f"{base}/api/v1/hotline/tickets", content=body, headers=signed_headers(body))
    assert r.status_code == 201, r.text
    token = _new_token(env, "平安办", "office", "pingan")
    assert token.startswith("htl_")
    mine = httpx.get(f"{base}/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).json()
    assert mine["total"] == 1 and mine["items"][0]["caller_phone"] == "13812345678"
    listed = subprocess.run([*HOTLINE, "users", "list"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert "平安办" in listed.stdout and token not in listed.stdout
    subprocess.run(
        [*HOTLINE, "users", "revoke", "--name", "平安办"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    assert httpx.get(f"{base}/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_search_terms_do_not_reach_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = _env(tmp_path, HOTLINE_LOG_LEVEL="INFO")
    for base, served in _serve(env, log=log):
        headers = {"Authorization": f"Bearer {_new_token(served, '派单员', 'dispatcher')}"}
        for q in ("138 1234 5678", "张三", "13812345678"):
            r = httpx.get(f"{base}/api/v1/tickets", params={"q": q, "state": "dispatched"}, headers=headers)
            assert r.is_success
    text = log.read_text()
    assert "/api/v1/tickets?q=…&state=dispatched" in text  # the request is logged, its search term is not
    for leak in ("1234+5678", "1234 5678", "12345678", "张三", "%E5%BC%A0", "138+"):
        assert leak not in text, leak


def test_refuses_to_start_with_the_demo_secret(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.pop("HOTLINE_WEBHOOK_SECRET")
    r = subprocess.run(
        [*HOTLINE, "serve", "--port", str(_free_port())], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "HOTLINE_WEBHOOK_SECRET" in r.stderr


def test_refuses_to_start_with_a_missing_model_or_bad_rules(tmp_path: Path) -> None:
    env = _env(tmp_path, HOTLINE_MODEL=str(tmp_path / "none"))
    r = subprocess.run(
        [*HOTLINE, "serve", "--port", str(_free_port())], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "模型目录" in r.stderr
    bad = tmp_path / "rules.yaml"
    bad.write_text(
        (ROOT / "rules.yaml").read_text(encoding="utf-8").replace("office: pingan", "office: x", 1), encoding="utf-8"
    )
    r = subprocess.run(
        [*HOTLINE, "serve"],
        env=_env(tmp_path, HOTLINE_RULES=str(bad)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "第 " in r.stderr and "行" in r.stderr


@pytest.mark.parametrize("trusted", [False, True])
def test_failed_token_throttle_counts_the_real_client_behind_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    env = _env(tmp_path, **({"HOTLINE_FORWARDED_ALLOW_IPS": "127.0.0.1"} if trusted else {}))
    for base, _ in _serve(env):
        bad = {"Authorization": "Bearer htl_wrong"}
        codes = [
            httpx.get(f"{base}/api/v1/tickets", headers={**bad, "X-Forwarded-For": "10.0.0.1"}).status_code
            for _ in range(21)
        ]
        assert codes[:20] == [401] * 20 and codes[20] == 429
        other = httpx.get(f"{base}/api/v1/tickets", headers={**bad, "X-Forwarded-For": "10.0.0.2"}).status_code
        # behind a trusted load balancer each client has its own count; otherwise the header is not believed
        assert other == (401 if trusted else 429)


@pytest.mark.parametrize(
    "command", [["users", "list"], ["sweep"], ["db", "upgrade"], ["report", "--date", "2026-11-20"]]
)
def test_commands_on_an_unreachable_database_end_with_one_clear_line(tmp_path: Path, command: list[str]) -> None:
    env = _env(tmp_path, HOTLINE_DATABASE_URL="postgresql://hotline:s3cret@127.0.0.1:1/nowhere")
    r = subprocess.run([*HOTLINE, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误: 无法连接数据库"), r.stderr
    assert "Traceback" not in r.stderr and "s3cret" not in r.stderr  # no stack, no password


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_several_workers_run_the_jobs_once_in_the_supervisor(tmp_path: Path) -> None:
    from tests.service.notify.receiver import Receiver, running

    receiver = Receiver(secret=SECRET)
    with running(receiver):
        settings = _env(tmp_path, HOTLINE_CALLBACK_URL=receiver.url, HOTLINE_OUTBOX_INTERVAL_SECONDS="1")
        for base, env in _serve(settings, "--workers", "2"):
            supervisor = int(env["HOTLINE_TEST_SERVER_PID"])
            # uvicorn's process manager forks the workers: they must not start the jobs again
            workers = _children(supervisor)
            environs = [Path(f"/proc/{p}/environ").read_bytes().split(b"\0") for p in workers]
            assert len(environs) >= 2 and all(b"HOTLINE_SCHEDULER=0" in e for e in environs)
            body = json.dumps(payload(), ensure_ascii=False).encode()
            ticket = httpx.post(f"{base}/api/v1/hotline/tickets", content=body, headers=signed_headers(body)).json()
            who = {"Authorization": f"Bearer {_new_token(env, '平安办', 'office', 'pingan')}"}
            if ticket["state"] == "pending_review":
                dispatcher = {"Authorization": f"Bearer {_new_token(env, '派单员', 'dispatcher')}"}
                httpx.post(
                    f"{base}/api/v1/tickets/{ticket['id']}/confirm", json={}, headers=dispatcher
                ).raise_for_status()
            httpx.post(f"{base}/api/v1/tickets/{ticket['id']}/accept", json={}, headers=who).raise_for_status()
            deadline = time.monotonic() + 30
            while not receiver.acted and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.5)  # two more outbox rounds: a second scheduler would have had its chance
    assert [m["event"] for m in receiver.order] == ["签收"]
    assert len(receiver.keys_seen) == 1
