"""The `hotline` console command: serve, database, users, demo data and the classifier commands."""

from __future__ import annotations

import datetime as dt
import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session

from classifier import cli as classifier_cli
from classifier.artifact import ModelError
from classifier.config import RulesError, load_rules
from service.settings import Settings, UnsafeSettingsError

if TYPE_CHECKING:
    from service.auth.sessions import SessionLimits

app = typer.Typer(
    help="Hotline 12345 工单服务", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="数据库迁移", no_args_is_help=True)
users_app = typer.Typer(help="用户与令牌", no_args_is_help=True)
sessions_app = typer.Typer(help="网页会话：查看、全部结束", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
classifier_cli.register(app)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"错误: {message}", err=True)
    return typer.Exit(code=2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="端口")] = 8000,
    workers: Annotated[int, typer.Option(help="工作进程数")] = 1,
    migrate: Annotated[bool, typer.Option(help="启动前执行数据库迁移")] = True,
) -> None:
    """Start the API server (applies migrations first)."""
    import uvicorn

    from service import logs
    from service.app import build_state, create_app
    from service.db import DatabaseUnusableError, ensure_usable

    settings = Settings()
    logs.configure(settings.log_level)
    # fail here, once, with one clear line, before binding the port: unsafe settings, a database that cannot be
    # opened, migrated or written (read-only file, full disk; a `?mode=ro` SQLite URL is a deliberate exception),
    # bad rules, a missing model
    try:
        settings.check_safe()
        ensure_usable(settings.database_url, migrate=migrate)
        state = build_state(settings)
    except (RulesError, ModelError, UnsafeSettingsError, DatabaseUnusableError) as exc:
        raise _fail(str(exc)) from exc
    # several workers each import service.asgi and load their own state; the jobs then run once, here
    target = create_app(state=state) if workers == 1 else "service.asgi:app"
    if workers > 1:
        engine, rules = state.engine, state.rules
        # the supervisor loaded the model only to check it: each worker holds its own, so free this copy
        del state
        gc.collect()
        if settings.scheduler:
            from service.scheduler import start_background

            os.environ["HOTLINE_SCHEDULER"] = "0"
            start_background(engine, rules, settings)
    uvicorn.run(
        target,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        server_header=False,
    )


@app.command()
def scheduler() -> None:
    """Run the scheduled jobs as their own process (start web workers with HOTLINE_SCHEDULER=0)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from service import logs
    from service.app import build_state
    from service.scheduler import add_jobs

    settings = Settings()
    logs.configure(settings.log_level)
    try:
        state = build_state(settings)
    except (RulesError, ModelError, UnsafeSettingsError) as exc:
        raise _fail(str(exc)) from exc
    blocking = BlockingScheduler(timezone="UTC")
    add_jobs(blocking, state.engine, state.rules, settings)
    typer.echo("调度进程已启动：时限巡检、预警推送、回调投递", err=True)
    blocking.start()


@app.command()
def sweep(
    at: Annotated[str | None, typer.Option("--at", help="以该时刻为“现在”（ISO 8601，带时区），用于补跑或演练")] = None,
    deliver: Annotated[bool, typer.Option(help="同时投递回调与预警")] = True,
) -> None:
    """Run the deadline sweep (and deliveries) once, by hand."""
    import datetime as dt

    from service.db import make_engine, upgrade
    from service.deadlines.sweep import sweep as run
    from service.notify.people import deliver_alerts
    from service.notify.service import deliver_due
    from service.scheduler import delivery_policy

    settings = Settings()
    rules = load_rules(settings.rules)
    now = dt.datetime.fromisoformat(at) if at else dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise _fail("--at 必须带时区，例如 2026-10-08T09:00:00+08:00")
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    done = run(engine, rules, now=now)
    typer.echo("巡检：" + "，".join(f"{k} {v}" for k, v in sorted(done.items())) if done else "巡检：无未办结工单")
    if deliver:
        sent = deliver_alerts(engine, rules, settings.notify_webhooks, now=now)
        out = deliver_due(engine, delivery_policy(settings), now=lambda: now)
        typer.echo(f"预警推送：{sent}；回调投递：{out}")


@app.command()
def report(
    date: Annotated[str, typer.Option("--date", help="日期 YYYY-MM-DD")],
    end: Annotated[str | None, typer.Option("--end", help="结束日期（含）")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json / csv / xlsx")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="输出文件（缺省打印到屏幕，xlsx 必须指定）")] = None,
) -> None:
    """Print or save the daily closure-rate report."""
    import datetime as dt
    import json
    import sys

    from service.db import make_engine, upgrade
    from service.reports.export import to_csv, to_xlsx
    from service.reports.service import load_report

    if fmt not in ("json", "csv", "xlsx"):
        raise _fail("--format 只能是 json、csv 或 xlsx")
    try:
        start = dt.date.fromisoformat(date)
        finish = dt.date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise _fail(f"日期格式应为 YYYY-MM-DD：{exc}") from exc
    from service.reports.routes import EARLIEST, LATEST

    if not all(EARLIEST <= d <= LATEST for d in (start, finish or start)) or (finish and finish < start):
        raise _fail(f"日期须在 {EARLIEST} 至 {LATEST} 之间，且结束日期不早于开始日期")
    if fmt == "xlsx" and out is None:
        raise _fail("xlsx 需要 --out 文件")
    settings = Settings()
    rules = load_rules(settings.rules)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    data = load_report(engine, rules, start, finish, None)
    payload = (
        json.dumps(data, ensure_ascii=False, indent=2).encode()
        if fmt == "json"
        else to_csv(data)
        if fmt == "csv"
        else to_xlsx(data)
    )
    if out is None:
        sys.stdout.buffer.write(payload + b"\n")
    else:
        out.write_bytes(payload)
        typer.echo(f"报表已写入 {out}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="目标版本")] = "head") -> None:
    """Apply database migrations."""
    from service.db import upgrade

    settings = Settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"数据库已迁移到 {revision}")


def _session() -> tuple[Session, Settings]:
    from service.db import make_engine, upgrade

    settings = Settings()
    upgrade(settings.database_url)
    return Session(make_engine(settings.database_url), expire_on_commit=False), settings


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Option("--name", help="用户名")],
    role: Annotated[str, typer.Option("--role", help="admin / dispatcher / office / viewer")],
    office: Annotated[str | None, typer.Option("--office", help="科室代码（office 角色必填）")] = None,
) -> None:
    """Create a user; the token is printed once, as the last line."""
    from service.auth.service import create_user
    from service.errors import DomainError

    session, settings = _session()
    try:
        rules = load_rules(settings.rules)
        user, token = create_user(session=session, rules=rules, name=name, role=role, office=office)
    except (DomainError, RulesError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        session.close()
    typer.echo(f"已创建用户 {user.name}（{user.role}{'，' + user.office if user.office else ''}）。令牌只显示这一次：")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """List users (token prefixes only)."""
    from service.auth.service import list_users

    session, _ = _session()
    with session:
        for user in list_users(session=session):
            status = "已吊销" if user.revoked_at else "有效"
            typer.echo(f"{user.id}\t{user.name}\t{user.role}\t{user.office or '-'}\t{user.token_prefix}…\t{status}")


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """Revoke a user's token."""
    from service.auth.service import revoke_user
    from service.errors import DomainError

    session, _ = _session()
    with session:
        try:
            user = revoke_user(session=session, name=name)
        except DomainError as exc:
            raise _fail(str(exc)) from exc
    typer.echo(f"已吊销用户 {user.name} 的令牌")


@users_app.command("rotate-token")
def users_rotate_token(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """Give a user a new token; the old token and every browser session end. The token is the last line."""
    from service.auth.service import rotate_token
    from service.errors import DomainError

    session, _ = _session()
    with session:
        try:
            user, token = rotate_token(session=session, name=name)
        except DomainError as exc:
            raise _fail(str(exc)) from exc
    typer.echo(f"已为用户 {user.name} 更换令牌，旧令牌和全部网页会话已失效。新令牌只显示这一次：")
    typer.echo(token)


def _limits(settings: Settings) -> SessionLimits:
    from service.auth.sessions import SessionLimits

    return SessionLimits(
        idle=dt.timedelta(minutes=settings.session_idle_minutes),
        absolute=dt.timedelta(hours=settings.session_max_hours),
    )


@sessions_app.command("list")
def sessions_list(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """List a user's active browser sessions."""
    from service.auth.service import user_by_name
    from service.auth.sessions import list_active_sessions
    from service.errors import DomainError

    session, settings = _session()
    with session:
        try:
            user = user_by_name(session=session, name=name)
        except DomainError as exc:
            raise _fail(str(exc)) from exc
        assert user.id is not None
        now = dt.datetime.now(dt.UTC)
        rows = list_active_sessions(session=session, user_id=user.id, now=now, limits=_limits(settings))
    zone = ZoneInfo(load_rules(settings.rules).timezone)
    typer.echo(f"用户 {user.name} 有 {len(rows)} 个有效网页会话")
    for row in rows:
        at = [t.astimezone(zone).strftime("%Y-%m-%d %H:%M") for t in (row.created_at, row.last_seen_at)]
        typer.echo(f"登录 {at[0]}\t最近访问 {at[1]}\t{row.client or '-'}\t{row.user_agent[:60] or '-'}")


@sessions_app.command("end")
def sessions_end(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """End every browser session of a user (the token stays valid)."""
    from service.auth.service import user_by_name
    from service.auth.sessions import end_all_sessions
    from service.errors import DomainError

    session, _ = _session()
    with session:
        try:
            user = user_by_name(session=session, name=name)
        except DomainError as exc:
            raise _fail(str(exc)) from exc
        assert user.id is not None
        count = end_all_sessions(session=session, user_id=user.id, now=dt.datetime.now(dt.UTC), reason="ended_all")
    typer.echo(f"已结束用户 {user.name} 的 {count} 个网页会话")


@app.command("check-rules")
def check_rules(path: Annotated[Path, typer.Argument(help="规则文件")] = Path("rules.yaml")) -> None:
    """Validate a rules file and report errors with line numbers."""
    try:
        rules = load_rules(path)
    except RulesError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"规则文件有效：{rules.profile}，{len(rules.categories)} 个分类，{len(rules.offices)} 个科室")


@app.command()
def demo(
    tickets: Annotated[int, typer.Option("--tickets", help="生成的演示工单数（取自街道语料）")] = 40,
    tokens_file: Annotated[Path, typer.Option("--tokens-file", help="演示用户令牌写入的文件")] = Path(
        "var/demo-tokens.txt"
    ),
) -> None:
    """Create demo users (one per role and office) and demo tickets; safe to run twice."""
    import datetime as dt
    import json
    import random

    from sqlmodel import select

    from classifier.artifact import load_model
    from classifier.decision import Classifier
    from service.auth.models import User
    from service.auth.service import create_user
    from service.deadlines.service import DeadlinePolicy
    from service.tickets.intake import intake
    from service.tickets.models import TicketCreate
    from service.tickets.service import get_by_external_id

    session, settings = _session()
    rules = load_rules(settings.rules)
    with session:
        if session.exec(select(User).where(User.name == "demo-dispatcher")).first() is None:
            lines = []
            plan = [
                ("demo-admin", "admin", None),
                ("demo-dispatcher", "dispatcher", None),
                ("demo-viewer", "viewer", None),
            ] + [(f"demo-{code}", "office", code) for code in rules.offices]
            for name, role, office in plan:
                _, token = create_user(session=session, rules=rules, name=name, role=role, office=office)
                lines.append(f"{name}\t{role}\t{office or '-'}\t{token}")
            tokens_file.parent.mkdir(parents=True, exist_ok=True)
            tokens_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tokens_file.chmod(0o600)
            typer.echo(f"演示用户令牌已写入 {tokens_file}")
        corpus = settings.model / "corpus.jsonl"
        if not corpus.is_file() or tickets <= 0:
            return
        rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        random.Random(0).shuffle(rows)
        classifier = Classifier(load_model(settings.model), rules)
        policy = DeadlinePolicy(rules)
        now = dt.datetime.now(dt.UTC)
        created = 0
        for i, row in enumerate(rows[:tickets]):
            if get_by_external_id(session=session, external_id=f"DEMO{i:05d}") is not None:
                continue
            payload = TicketCreate(
                external_id=f"DEMO{i:05d}",
                received_at=now - dt.timedelta(hours=i),
                channel="电话",
                title="",
                content=row["text"],
                address="",
                caller_name="演示来电人",
                caller_phone=f"1380000{i:04d}",
            )
            _, new = intake(session=session, payload=payload, classifier=classifier, policy=policy, rules=rules)
            created += int(new)
        typer.echo(f"演示工单：新建 {created} 条（已存在的跳过）")


def main() -> None:
    """Console entry point: a database that cannot be used ends any command with one clear line, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    from service.db import DatabaseUnusableError, describe_failure

    try:
        app()
    except (DBAPIError, DatabaseUnusableError) as exc:
        try:
            url = Settings().database_url
        except Exception:  # the settings themselves were the problem: say what we can
            url = "?"
        typer.echo(f"错误: {describe_failure(exc, url)}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
