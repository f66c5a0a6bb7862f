"""The `hotline` console command: serve, database, users, demo data and the classifier commands."""

from __future__ import annotations

import datetime as dt
import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session

from classifier import cli as classifier_cli
from classifier.artifact import ModelError
from classifier.config import RulesError
from service.clock import utcnow
from service.rules import load_rules
from service.settings import Settings, UnsafeSettingsError

if TYPE_CHECKING:
    from service.learning.registry import ModelStore

T = TypeVar("T")

app = typer.Typer(
    help="Hotline 12345 工单服务", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="数据库迁移", no_args_is_help=True)
users_app = typer.Typer(help="用户与令牌", no_args_is_help=True)
sessions_app = typer.Typer(help="网页会话：查看、全部结束", no_args_is_help=True)
model_app = typer.Typer(help="模型版本：列出、启用、回退", no_args_is_help=True)
areas_app = typer.Typer(help="区域（片区 → 居民区 → 网格）：导入、查看", no_args_is_help=True)
keypoints_app = typer.Typer(help="五违四必库内重点点位：导入、查看、违建台账", no_args_is_help=True)
calendar_app = typer.Typer(help="工作日日历：补充节假日后重算未办结工单的时限", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(model_app, name="model")
app.add_typer(calendar_app, name="calendar")
app.add_typer(areas_app, name="areas")
app.add_typer(keypoints_app, name="keypoints")
search_app = typer.Typer(help="文字搜索索引：补建、重建", no_args_is_help=True)
app.add_typer(search_app, name="search")
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
    weekly = "、每周重新训练" if settings.retrain_weekly else ""
    typer.echo(f"调度进程已启动：时限巡检、预警推送、回调投递{weekly}", err=True)
    blocking.start()


@app.command()
def sweep(
    at: Annotated[str | None, typer.Option("--at", help="以该时刻为“现在”（ISO 8601，带时区），用于补跑或演练")] = None,
    deliver: Annotated[bool, typer.Option(help="同时投递回调与预警")] = True,
) -> None:
    """Run the deadline sweep (and deliveries) once, by hand."""

    from service.db import make_engine, upgrade
    from service.flows.sweep import sweep as run
    from service.notify.people import deliver_alerts
    from service.notify.service import deliver_due
    from service.scheduler import delivery_policy

    settings = Settings()
    rules = load_rules(settings.rules)
    now = dt.datetime.fromisoformat(at) if at else utcnow()
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


@calendar_app.command("recompute")
def calendar_recompute(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出会改变的工单，不写入")] = False,
) -> None:
    """Recompute open tickets' deadlines under the rules' calendar (after adding a year's holidays)."""
    from service.db import make_engine
    from service.flows.recalendar import recompute_open

    settings = Settings()
    rules = load_rules(settings.rules)
    zone = ZoneInfo(rules.timezone)
    engine = make_engine(settings.database_url)
    changes = recompute_open(engine, rules, now=utcnow(), dry_run=dry_run)
    for change in changes:
        moved = "；".join(
            f"{_DUE_NAMES[name]} {a.astimezone(zone):%Y-%m-%d %H:%M} → {b.astimezone(zone):%Y-%m-%d %H:%M}"
            for name, (a, b) in change.moved.items()
            if a is not None
        )
        flag = "，仍按周一至周五估算" if change.estimated else ""
        typer.echo(f"工单 {change.external_id}：{moved or '时限不变'}{flag}")
    verb, tail = ("将重算", "（未写入）") if dry_run else ("已重算", "")
    typer.echo(f"{verb} {len(changes)} 件未办结工单的时限{tail}")


def _unreadable(path: Path, exc: Exception) -> typer.Exit:
    """A table file that could not be read, or every problem in it (nothing was imported)."""
    problems = getattr(exc, "problems", None)
    if problems is None:
        return _fail(f"无法读取 {path}：{exc}")
    for problem in problems:
        typer.echo(problem, err=True)
    return _fail(f"{path} 有 {len(problems)} 处错误，未导入任何内容")


@areas_app.command("import")
def areas_import(
    path: Annotated[Path, typer.Argument(help="区域表 CSV 或 XLSX（模板见 examples/areas.csv）")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查文件，不写入")] = False,
) -> None:
    """Import the area registry (replaces the stored one) and place open tickets again."""
    from service.areas.models import LEVEL_LABELS
    from service.areas.registry import RegistryError, parse, read_rows
    from service.areas.service import import_registry
    from service.routing.service import grid_for

    settings = Settings()
    rules = load_rules(settings.rules)
    try:
        registry = parse(read_rows(path), zones=rules.places.grids or None)
    except (OSError, UnicodeDecodeError, RegistryError) as exc:
        raise _unreadable(path, exc) from exc
    counts = "、".join(f"{registry.count(level)} 个{label}" for level, label in LEVEL_LABELS.items())
    if dry_run:
        typer.echo(f"检查通过：{counts}（未写入）")
        return
    session, _ = _session()
    with session:
        done = import_registry(session=session, registry=registry, zone_of=lambda a: grid_for(a, rules), now=utcnow())
    typer.echo(f"已导入 {counts}，地址规则 {done.patterns} 条；停用 {done.retired} 个区域")
    typer.echo(f"重新定位未办结工单 {done.replaced} 件")


@areas_app.command("list")
def areas_list() -> None:
    """Print the registry as a tree with each area's leader and address patterns."""
    from service.areas.service import area_tree

    session, _ = _session()
    with session:
        roots = area_tree(session=session)
    if not roots:
        typer.echo("尚未导入区域表（hotline areas import FILE）")

    def show(nodes: list[Any], depth: int) -> None:
        for node in nodes:
            where = "；".join(_pattern_text(p) for p in node.patterns)
            leader = f"  负责人 {node.leader}" if node.leader else ""
            typer.echo(f"{'  ' * depth}{node.name}（#{node.id}）{leader}{'  ' + where if where else ''}")
            show(node.children, depth + 1)

    show(roots, 0)


def _pattern_text(p: Any) -> str:
    if p.lo is None:
        return str(p.name)
    side = {"odd": "单号", "even": "双号"}.get(p.parity, "")
    return f"{p.name} {p.lo}–{p.hi}{side}"


@keypoints_app.command("import")
def keypoints_import(
    path: Annotated[Path, typer.Argument(help="点位表 CSV 或 XLSX（模板见 examples/keypoints.csv）")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只检查文件，不写入")] = False,
) -> None:
    """Import key points (upsert by 编号), each placed in the area registry: import the areas first."""
    from service.keypoints.registry import RegistryError, parse, read_rows
    from service.keypoints.service import import_key_points
    from service.routing.service import grid_for

    settings = Settings()
    rules = load_rules(settings.rules)
    types = {code: rules.categories[code].name for code in rules.key_points.types}
    try:
        points = parse(read_rows(path), types=types, construction=rules.key_points.construction_type)
    except (OSError, UnicodeDecodeError, RegistryError) as exc:
        raise _unreadable(path, exc) from exc
    for spec in points.unlinked():
        typer.echo(f"提示：第 {spec.row} 行 地址「{spec.address}」识别不出楼栋，工单不会自动关联到点位 {spec.code}")
    if dry_run:
        typer.echo(f"检查通过：{len(points.points)} 个点位（未写入）")
        return
    session, _ = _session()
    with session:
        done = import_key_points(
            session=session,
            points=points,
            zone_of=lambda a: grid_for(a, rules),
            zone=ZoneInfo(rules.timezone),
            now=utcnow(),
        )
    typer.echo(f"已导入点位：新增 {done.created} 个，更新 {done.updated} 个")
    if done.unplaced:
        typer.echo(f"未定位到网格的点位（先导入区域表？）：{'、'.join(done.unplaced)}")


@keypoints_app.command("list")
def keypoints_list() -> None:
    """Print every key point: number, address, grid, type, m² and status."""
    from service.keypoints.service import key_point_view, list_key_points

    rules = load_rules(Settings().rules)
    session, _ = _session()
    with session:
        points = [key_point_view(p) for p in list_key_points(session=session)]
    if not points:
        typer.echo("尚未导入点位（hotline keypoints import FILE）")
    for p in points:
        kind = rules.categories[p.category].name if p.category in rules.categories else p.category
        where = " / ".join(x or "—" for x in (p.zone, p.community, p.cell))
        due = f"  期限 {p.target_date}" if p.target_date else ""
        done = f"  已拆 {p.demolished_m2:g} ㎡" if p.demolished_m2 is not None else ""
        typer.echo(
            f"{p.code}\t{p.address}\t{where}\t{kind}（{p.kind_label}）\t{p.area_m2:g} ㎡\t{p.status_label}{due}{done}"
        )


@keypoints_app.command("ledger")
def keypoints_ledger(
    year: Annotated[int | None, typer.Option("--year", help="年份（缺省今年，按规则文件时区）")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text / json")] = "text",
) -> None:
    """Print the 违建 ledger for a year: m² demolished against the target, new 违建, open and overdue points."""
    import json

    from service.keypoints.service import ledger

    if fmt not in ("text", "json"):
        raise _fail("--format 只能是 text 或 json")
    if year is not None and not 2000 <= year <= 2099:
        raise _fail("--year 须在 2000–2099 之间")
    rules = load_rules(Settings().rules)
    zone, now = ZoneInfo(rules.timezone), utcnow()
    session, _ = _session()
    with session:
        data = ledger(
            session=session, rules=rules.key_points, zone=zone, year=year or now.astimezone(zone).year, now=now
        )
    if fmt == "json":
        typer.echo(json.dumps(data.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    progress = f"{data.progress:.1%}" if data.progress is not None else "未设目标"
    typer.echo(f"{data.year} 年违建台账")
    typer.echo(
        f"拆除存量违建 {data.demolished_m2:g} / {data.target_m2:g} ㎡（{progress}）；"
        f"拆除新增违建 {data.new_demolished_m2:g} ㎡"
    )
    typer.echo(f"新增违建点位 {data.new_found} 个（目标为零）；新增违建线索（不在点位上的违建工单）{data.new_clues} 件")
    typer.echo(f"本年整治完成 {data.cleared} 个点位，未完成 {data.open} 个")
    for p in data.overdue:
        typer.echo(f"  超期 {p.days_overdue} 天：{p.code} {p.address}（期限 {p.target_date}，{p.status_label}）")


_DUE_NAMES = {"first_contact_due": "先行联系时限", "resolve_due": "办结时限", "supervise_due": "督办时限"}


report_app = typer.Typer(help="日报：打印或保存；汇总表：重建、核对", invoke_without_command=True)
app.add_typer(report_app, name="report")


@report_app.callback()
def report(
    ctx: typer.Context,
    date: Annotated[str | None, typer.Option("--date", help="日期 YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--end", help="结束日期（含）")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json / csv / xlsx")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="输出文件（缺省打印到屏幕，xlsx 必须指定）")] = None,
    by: Annotated[str, typer.Option("--by", help="按 科室 / 片区 / 居民区 / 网格 分行")] = "科室",
) -> None:
    """Print or save the daily closure-rate report (hotline report --date …), or work on its rollup."""
    import json
    import sys

    if ctx.invoked_subcommand is not None:
        return
    if date is None:
        raise _fail("缺少 --date（日期 YYYY-MM-DD），或给出子命令 rollup / verify")

    from service.db import make_engine, upgrade
    from service.reports.export import to_csv, to_xlsx
    from service.reports.service import BREAKDOWN_LABELS, BREAKDOWNS, load_report

    if fmt not in ("json", "csv", "xlsx"):
        raise _fail("--format 只能是 json、csv 或 xlsx")
    choices = {
        "科室": "office",
        **{label: code for code, label in BREAKDOWN_LABELS.items()},
        **{c: c for c in BREAKDOWNS},
    }
    if by not in choices:
        raise _fail("--by 只能是 科室、片区、居民区 或 网格")
    by = choices[by]
    try:
        start = dt.date.fromisoformat(date)
        finish = dt.date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise _fail(f"日期格式应为 YYYY-MM-DD：{exc}") from exc
    from service.errors import InvalidInputError
    from service.reports.period import check_period

    try:
        check_period(start, finish, start_field="--date", end_field="--end")
    except InvalidInputError as exc:
        raise _fail(f"{exc.field}：{exc.message}") from exc
    if fmt == "xlsx" and out is None:
        raise _fail("xlsx 需要 --out 文件")
    settings = Settings()
    rules = load_rules(settings.rules)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    data = load_report(engine, rules, start, finish, None, by=by)
    payload = (
        json.dumps(data.model_dump(), ensure_ascii=False, indent=2).encode()
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


def _dates(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    try:
        return (dt.date.fromisoformat(start) if start else None, dt.date.fromisoformat(end) if end else None)
    except ValueError as exc:
        raise _fail(f"日期格式应为 YYYY-MM-DD：{exc}") from exc


def _rollup_span(engine: Any, rules: Any, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days asked for; by default from the first ticket's day to today (local time)."""
    from sqlalchemy import func, select

    from service.tickets.models import Ticket

    zone = ZoneInfo(rules.timezone)
    if start is None:
        with engine.connect() as conn:
            first = conn.execute(select(func.min(Ticket.__table__.c.received_at))).scalar()  # type: ignore[attr-defined]
        start = first.astimezone(zone).date() if first is not None else utcnow().astimezone(zone).date()
    end = end or utcnow().astimezone(zone).date()
    if end < start:
        raise _fail("--to 不能早于 --from")
    return start, end


_FROM = typer.Option("--from", help="开始日期 YYYY-MM-DD（缺省：最早工单的日期）")
_TO = typer.Option("--to", help="结束日期（含；缺省：今天）")


def _rollup_target(start: str | None, end: str | None) -> tuple[Any, Any, dt.date, dt.date]:
    """The migrated database, the rules and the days a rollup command works on."""
    from service.db import make_engine, upgrade

    first, last = _dates(start, end)
    settings = Settings()
    rules = load_rules(settings.rules)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    return engine, rules, *_rollup_span(engine, rules, first, last)


@report_app.command("rollup")
def report_rollup(start: Annotated[str | None, _FROM] = None, end: Annotated[str | None, _TO] = None) -> None:
    """Build the report rollup's days afresh (after a bulk load or a repair), showing progress."""
    from service.reports.rollup import rebuild
    from service.scheduler import job_lock

    engine, rules, first, last = _rollup_target(start, end)
    total = (last - first).days + 1

    def progress(day: dt.date, rows: int) -> None:
        done = (day - first).days + 1
        if done == total or done % 30 == 0:
            typer.echo(f"已汇总 {done}/{total} 天（{day}，{rows} 行）")

    with job_lock(engine, "rollup") as mine:
        if not mine:
            raise _fail("另一个进程正在刷新报表汇总，请稍后再试")
        built = rebuild(engine, rules, first, last, now=utcnow(), progress=progress)
    typer.echo(f"完成：{first} 至 {last} 共 {built} 天")


@report_app.command("verify")
def report_verify(start: Annotated[str | None, _FROM] = None, end: Annotated[str | None, _TO] = None) -> None:
    """Check the report rollup against a full recount, day by day; exit status 1 on any difference."""
    from service.reports.rollup import refresh, verify
    from service.scheduler import job_lock

    engine, rules, first, last = _rollup_target(start, end)
    with job_lock(engine, "rollup") as mine:
        if mine:  # days touched since their build are rebuilt first: only a wrong build is a difference
            refresh(engine, rules, now=utcnow(), backfill=0)
        with engine.connect() as conn:
            result = verify(conn, rules, first, last)
    typer.echo(f"核对 {first} 至 {last}：已汇总 {result.days} 天，未汇总 {len(result.unbuilt)} 天")
    if result.unbuilt:
        typer.echo(f"  未汇总的日期按明细实时计算；可运行 hotline report rollup 补建（首个：{result.unbuilt[0]}）")
    for d in result.differences[:50]:
        where = f"{d.day} {d.office or '—'} {d.category or '—'} {d.grid or '—'}"
        typer.echo(f"  不一致：{where} {d.metric} 汇总 {d.stored:g}，重算 {d.recounted:g}")
    if result.differences:
        hint = "可运行 hotline report rollup --from … --to … 重建"
        typer.echo(f"错误: 发现 {len(result.differences)} 处不一致；{hint}", err=True)
        raise typer.Exit(1)
    typer.echo("一致：汇总与全量重算没有差异")


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


@app.command("archive")
def archive_command(
    directory: Annotated[Path, typer.Option("--dir", help="归档文件目录（按月的 .jsonl.gz）")] = Path("var/archive"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只统计，不写文件、不删除")] = False,
) -> None:
    """Archive long-finished timelines and delivered callbacks to monthly files, then remove them (retention rules)."""
    from service.db import make_engine, upgrade
    from service.ops.retention import archive

    settings = Settings()
    rules = load_rules(settings.rules)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        done = archive(engine=engine, rules=rules.retention, directory=directory, now=utcnow(), dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "可归档" if dry_run else "已归档并删除"
    typer.echo(f"{verb}：{done.tickets} 件工单的流转记录 {done.events} 条，已送达回调 {done.outbox} 条")
    for path in done.files:
        typer.echo(f"  {path}")


@search_app.command("reindex")
def search_reindex(
    rebuild: Annotated[bool, typer.Option("--all", help="清空后全部重建（默认只补建缺少索引的工单）")] = False,
    batch: Annotated[int, typer.Option("--batch", min=100, max=100_000, help="每批工单数")] = 2000,
) -> None:
    """Index the tickets the search index lacks (e.g. loaded in bulk), a batch at a time, showing progress."""
    from sqlalchemy import text

    from service.tickets.search import SEARCH_TABLE, backfill

    session, _ = _session()
    with session, session.bind.connect() as conn:  # type: ignore[union-attr]
        if rebuild:
            conn.execute(text(f"DELETE FROM {SEARCH_TABLE}"))
            conn.commit()

        def progress(done: int, total: int) -> None:
            # each batch is committed on its own: intake goes on, and an interrupted run resumes where it stopped
            conn.commit()
            typer.echo(f"已建索引 {done} 件（共 {total} 件工单）")

        done = backfill(conn, batch=batch, progress=progress)
        conn.commit()
    typer.echo(f"完成：本次新建索引 {done} 件")


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Option("--name", help="用户名")],
    role: Annotated[str, typer.Option("--role", help="admin / dispatcher / office / viewer / patrol")],
    office: Annotated[str | None, typer.Option("--office", help="科室代码（office 角色必填）")] = None,
    area: Annotated[str | None, typer.Option("--area", help="负责的网格、居民区或片区（patrol 角色必填）")] = None,
) -> None:
    """Create a user; the token is printed once, as the last line."""
    from service.auth.service import create_user
    from service.errors import DomainError

    session, settings = _session()
    try:
        rules = load_rules(settings.rules)
        user, token = create_user(session=session, rules=rules, name=name, role=role, office=office, area=area)
    except (DomainError, RulesError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        session.close()
    where = user.office or (area.strip() if user.area_id and area else "")
    typer.echo(f"已创建用户 {user.name}（{user.role}{'，' + where if where else ''}）。令牌只显示这一次：")
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


def _call(action: Callable[..., T], **kwargs: Any) -> T:
    """A data-access function on a fresh session; a domain error ends the command with one clear line."""
    from service.errors import DomainError

    session, _ = _session()
    with session:
        try:
            return action(session=session, **kwargs)
        except DomainError as exc:
            raise _fail(str(exc)) from exc


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """Revoke a user's token (their browser sessions end too)."""
    from service.auth.service import revoke_user

    user = _call(revoke_user, name=name)
    typer.echo(f"已吊销用户 {user.name} 的令牌")


@users_app.command("rotate-token")
def users_rotate_token(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """Give a user a new token; the old token and every browser session end. The token is the last line."""
    from service.auth.service import rotate_token

    user, token = _call(rotate_token, name=name)
    typer.echo(f"已为用户 {user.name} 更换令牌，旧令牌和全部网页会话已失效。新令牌只显示这一次：")
    typer.echo(token)


@sessions_app.command("list")
def sessions_list(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """List a user's active browser sessions."""
    from service.auth.service import sessions_of
    from service.auth.sessions import SessionLimits

    settings = Settings()
    user, rows = _call(sessions_of, name=name, limits=SessionLimits.of(settings))
    zone = ZoneInfo(load_rules(settings.rules).timezone)
    typer.echo(f"用户 {user.name} 有 {len(rows)} 个有效网页会话")
    for row in rows:
        at = [t.astimezone(zone).strftime("%Y-%m-%d %H:%M") for t in (row.created_at, row.last_seen_at)]
        typer.echo(f"登录 {at[0]}\t最近访问 {at[1]}\t{row.client or '-'}\t{row.user_agent[:60] or '-'}")


@sessions_app.command("end")
def sessions_end(name: Annotated[str, typer.Option("--name", help="用户名")]) -> None:
    """End every browser session of a user (the token stays valid)."""
    from service.auth.service import end_sessions_of

    user, count = _call(end_sessions_of, name=name)
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
    url: Annotated[str, typer.Option("--url", help="服务地址（用于打印登录与发送示例）")] = "http://127.0.0.1:8000",
    seed: Annotated[int, typer.Option("--seed", help="随机种子（同一种子生成同样的演示历史）")] = 0,
) -> None:
    """Create demo users (one per role and office) and about a month of demo ticket history; safe to run twice.

    The history is made by the service's own intake, actions and deadline sweep on a simulated clock."""
    import json
    import random

    from sqlmodel import select

    from classifier.twolevel import load_classifier
    from service import demo as demo_data
    from service.auth.models import User
    from service.auth.service import create_user, user_for_token
    from service.db import make_engine
    from service.deadlines.service import DeadlinePolicy
    from service.settings import DEMO_SECRET

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
        dispatcher_token = demo_data.read_token(
            tokens_file, "demo-dispatcher", lambda token: user_for_token(session=session, token=token) is not None
        )
    corpus = settings.model / "corpus.jsonl"
    engine = make_engine(settings.database_url)
    if corpus.is_file() and tickets > 0:
        rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        random.Random(0).shuffle(rows)
        result = demo_data.generate(
            engine=engine,
            rules=rules,
            classifier=lambda: load_classifier(settings.model, rules),
            policy=DeadlinePolicy(rules),
            texts=rows,
            count=tickets,
            misroute_reasons=rules.learning.misroute_reasons,
            seed=seed,
        )
        typer.echo(
            f"演示工单：新建 {result.created} 条，已存在跳过 {result.skipped} 条"
            + (
                f"（按近 {demo_data.DAYS} 天模拟受理、派单、办结、回访与巡检，用时 {result.seconds:.1f} 秒，"
                f"另加载模型 {result.model_seconds:.1f} 秒）"
                if result.created
                else ""
            )
        )
        if result.refused:
            typer.echo(f"有 {len(result.refused)} 个模拟操作被拒绝（工单停在当时状态）：{result.refused[0]}")
        typer.echo("演示工单状态：" + demo_data.state_text(demo_data.demo_counts(engine)))
        typer.echo("近 30 天日报：" + demo_data.report_text(demo_data.month_report(engine, rules)))
    engine.dispose()
    # the secret is printed only when it is the well-known demo secret; a real one is read from the environment
    secret = settings.webhook_secret.get_secret_value()
    if not settings.demo:
        dispatcher_token = None
    if dispatcher_token is None and settings.demo:
        typer.echo(
            f"（{tokens_file} 中没有可用的 demo-dispatcher 令牌；"
            "可用 hotline users rotate-token --name demo-dispatcher 重新生成）"
        )
    typer.echo(
        demo_data.guide(
            url=url,
            tokens_file=str(tokens_file),
            dispatcher_token=dispatcher_token,
            secret=secret if secret == DEMO_SECRET else None,
        )
    )


@app.command("send-demo-ticket")
def send_demo_ticket(
    url: Annotated[str, typer.Option("--url", help="服务地址")] = "http://127.0.0.1:8000",
    text: Annotated[str, typer.Option("--text", help="工单内容")] = "",
) -> None:
    """Sign a demo work order as the webhook expects (HOTLINE_WEBHOOK_SECRET, else the demo secret) and send it."""
    import httpx

    from service import demo as demo_data

    settings = Settings()
    try:
        rules = load_rules(settings.rules)
    except RulesError:
        rules = None
    secret = settings.webhook_secret.get_secret_value()
    try:
        status, data = demo_data.send(url, secret, text.strip() or demo_data.SAMPLE_TEXT)
    except httpx.HTTPError as exc:
        raise _fail(f"无法连接 {url}：{exc}（服务是否已启动？）") from exc
    message = demo_data.describe_response(status, data, rules)
    if status not in (200, 201):
        if status == 401:
            message += "\n提示：本命令用 HOTLINE_WEBHOOK_SECRET（未设置时为演示密钥）签名，须与服务端一致"
        raise _fail(message)
    typer.echo(message)


# Models -------------------------------------------------------------------------------------------------------


def _models() -> tuple[Session, Settings, ModelStore]:
    from service.learning.registry import ModelStore

    session, settings = _session()
    return session, settings, ModelStore(settings.models_root, settings.model)


def _score_text(card: dict[str, Any]) -> str:
    """The card's test metrics (held-out real test split) or, for a model trained without them, its CV scores."""
    metrics = card.get("metrics") or {}
    test = metrics.get("real_test")
    if test and test.get("n"):
        return f"真实测试集 宏F1 {test['macro_f1']:.4f} 准确率 {test['accuracy']:.4f}"
    cv = (metrics.get("cv") or {}).get("decision")
    return f"交叉验证 宏F1 {cv['macro_f1']:.4f} 准确率 {cv['accuracy']:.4f}" if cv else "无指标"


@model_app.command("list")
def model_list() -> None:
    """List model versions: the active one, earlier ones, and challengers never activated."""
    from service.learning.registry import current_version, history

    session, settings, store = _models()
    with session:
        try:
            active = current_version(session=session, store=store)
        except ModelError as exc:
            raise _fail(str(exc)) from exc
        used = {row.version: row for row in history(session=session)}
    models = {m.version: m for m in store.models()}
    if active not in models:
        from service.learning.registry import StoredModel, _read_card

        card = _read_card(settings.model) or {}
        models[active] = StoredModel(active, settings.model, card)
    typer.echo(f"模型目录 {store.root}；当前启用 {active}")
    for version, model in models.items():
        status = "当前启用" if version == active else "曾启用" if version in used else "未启用"
        trained = str(model.card.get("trained_at", "—"))[:19]
        typer.echo(
            f"{'*' if version == active else ' '} {version}\t{status}\t训练于 {trained}\t{_score_text(model.card)}"
        )


@model_app.command("promote")
def model_promote(
    version: Annotated[str, typer.Argument(help="模型版本（hotline model list 中的名称）")],
    actor: Annotated[str, typer.Option("--by", help="操作人（记入历史）")] = "admin",
) -> None:
    """Make a model version active in every API process (checked to load first)."""
    from service.errors import DomainError
    from service.learning.registry import promote

    session, settings, store = _models()
    with session:
        try:
            row = promote(
                session=session,
                store=store,
                rules=load_rules(settings.rules),
                version=version,
                actor=actor,
                now=utcnow(),
            )
        except (DomainError, ModelError, RulesError) as exc:
            raise _fail(getattr(exc, "message", str(exc))) from exc
    typer.echo(f"已启用模型 {row.version}；各服务进程将在 {settings.model_check_seconds:g} 秒内切换，无需重启")


@model_app.command("rollback")
def model_rollback(actor: Annotated[str, typer.Option("--by", help="操作人（记入历史）")] = "admin") -> None:
    """Return every API process to the model that was active before the current one."""
    from service.errors import DomainError
    from service.learning.registry import rollback

    session, settings, store = _models()
    with session:
        try:
            row = rollback(session=session, store=store, rules=load_rules(settings.rules), actor=actor, now=utcnow())
        except (DomainError, ModelError, RulesError) as exc:
            raise _fail(getattr(exc, "message", str(exc))) from exc
    typer.echo(f"已回退到模型 {row.version}（{row.note}）；各服务进程将在 {settings.model_check_seconds:g} 秒内切换")


@app.command()
def retrain(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只训练和比较，不启用")] = False,
    folds: Annotated[int, typer.Option("--cv", help="交叉验证折数")] = 5,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="手写语料（缺省 HOTLINE_RETRAIN_CORPUS）")] = None,
    real: Annotated[Path | None, typer.Option("--real", help="真实标注（缺省 HOTLINE_RETRAIN_REAL）")] = None,
) -> None:
    """Train a challenger with the stored corrections; promote it only if it beats the active model."""
    from classifier.data import DataError
    from service.db import make_engine
    from service.errors import DomainError
    from service.learning.retrain import retrain as run

    session, settings, store = _models()
    session.close()
    try:
        rules = load_rules(settings.rules)
        result = run(
            engine=make_engine(settings.database_url),
            rules=rules,
            learning=rules.learning,
            store=store,
            corpus_path=corpus or settings.retrain_corpus,
            real_path=real or settings.retrain_real,
            now=utcnow(),
            folds=folds,
            dry_run=dry_run,
        )
    except (DomainError, ModelError, RulesError, DataError) as exc:
        raise _fail(getattr(exc, "message", str(exc))) from exc
    typer.echo(
        f"冠军 {result.champion_version}，挑战者 {result.challenger_version}；"
        f"纠错样本用于训练 {result.corrections_used} 条，留作评估 {result.corrections_held_out} 条\n"
    )
    typer.echo(result.table)
    if dry_run:
        typer.echo("试运行（--dry-run）：未保存、未启用")
    elif result.promoted:
        typer.echo(f"已启用挑战者 {result.challenger_version}；回退用 hotline model rollback")
    else:
        typer.echo(f"挑战者 {result.challenger_version} 已保存但未启用")


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
