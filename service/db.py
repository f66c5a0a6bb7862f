"""Database engine, sessions and migrations (SQLite by default, PostgreSQL through HOTLINE_DATABASE_URL)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, event, text
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic announces each of its plugins at INFO whenever it is imported; keep start-up output to what matters
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones; we store UTC and re-attach it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC timestamps")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def normalize_url(url: str) -> str:
    """postgresql:// → the psycopg 3 driver; everything else unchanged."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; busy_timeout makes concurrent writers wait instead of failing
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class DatabaseUnusableError(RuntimeError):
    """The database cannot be opened, migrated or written at start-up; the message is one clear line."""


class StorageProblem(StrEnum):
    """Why writes fail while reads still work: distinct from "temporarily unavailable" (nothing to wait for)."""

    read_only = "read_only"
    disk_full = "disk_full"


STORAGE_MESSAGES = {
    StorageProblem.read_only: "数据库只读，无法写入：请管理员检查数据库文件与目录的权限、所有者或磁盘挂载状态"
    "（查询不受影响；本次未写入任何数据，恢复后重试即可）",
    StorageProblem.disk_full: "数据库所在磁盘已满，无法写入：请管理员清理磁盘空间"
    "（查询不受影响；本次未写入任何数据，恢复后重试即可）",
}
# below this much free space on the SQLite file's filesystem /readyz reports the disk as full
MIN_FREE_BYTES = 1024 * 1024
_SQLITE_READONLY, _SQLITE_FULL, _SQLITE_CANTOPEN = 8, 13, 14
_PG_STATES = {"25006": StorageProblem.read_only, "53100": StorageProblem.disk_full}


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL (also `sqlite:///file:PATH?mode=ro&uri=true`); None for memory or other backends."""
    parsed = make_url(normalize_url(url)) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    database = parsed.database
    if parsed.query.get("uri") == "true" and database.startswith("file:"):
        database = database[len("file:") :]
        if parsed.query.get("mode") == "memory" or not database:
            return None
    return Path(database)


def sqlite_read_only_by_request(url: str) -> bool:
    """The URL itself asks for a read-only database (`?mode=ro&uri=true` or `immutable=1`): a deliberate mode."""
    parsed = make_url(normalize_url(url))
    return parsed.get_backend_name() == "sqlite" and (
        parsed.query.get("mode") == "ro" or parsed.query.get("immutable") == "1"
    )


def _ensure_sqlite_dir(url: str) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnusableError(
            f"无法创建 SQLite 数据库目录 {path.parent}：{exc.strerror or exc}（检查路径与权限）"
        ) from exc


def storage_problem(exc: BaseException) -> StorageProblem | None:
    """Read-only database or full disk behind a driver error (SQLite result codes, PostgreSQL SQLSTATEs)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        return (
            StorageProblem.read_only
            if primary == _SQLITE_READONLY
            else StorageProblem.disk_full
            if primary == _SQLITE_FULL
            else None
        )
    state = getattr(orig, "sqlstate", None)
    return _PG_STATES.get(state) if isinstance(state, str) else None


def probe_writes(engine: Engine) -> StorageProblem | None:
    """Whether a write would be refused right now; raises when the database cannot be reached at all.

    SQLite: an UPDATE that is rolled back (takes the write lock, writes nothing) finds a read-only file or handle,
    and the free space of the file's filesystem finds a full disk. PostgreSQL: a read-only server or database
    (hot standby, default_transaction_read_only); a full disk there shows only when a write fails."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            try:
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
            except DBAPIError as exc:
                problem = storage_problem(exc)
                if problem is None:
                    raise
                return problem
            finally:
                conn.rollback()
        path = sqlite_path(engine.url)
        if path is not None:
            stat = os.statvfs(path.parent)
            if stat.f_bavail * stat.f_frsize < MIN_FREE_BYTES:
                return StorageProblem.disk_full
        return None
    with engine.connect() as conn:
        read_only = conn.execute(text("SELECT current_setting('transaction_read_only')")).scalar()
        conn.rollback()
    return StorageProblem.read_only if read_only == "on" else None


def describe_failure(exc: BaseException, url: str) -> str:
    """One line for an operator: what is wrong with the database and where to look (no password, no traceback)."""
    where = make_url(normalize_url(url)).render_as_string(hide_password=True)
    path = sqlite_path(url)
    if isinstance(exc, DatabaseUnusableError):
        return str(exc)
    problem = storage_problem(exc)
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = " ".join(str(orig).split())[:300] or type(orig).__name__
    if problem is StorageProblem.read_only:
        return f"数据库 {path or where} 只读，无法写入：检查文件与目录的权限、所有者或磁盘挂载（{reason}）"
    if problem is StorageProblem.disk_full:
        return f"数据库 {path or where} 所在磁盘已满，无法写入：请清理磁盘空间（{reason}）"
    if path is not None:
        if getattr(orig, "sqlite_errorcode", None) == _SQLITE_CANTOPEN or isinstance(orig, OSError):
            return f"无法打开 SQLite 数据库 {path}：检查路径是否存在、是否为文件以及权限（{reason}）"
        return f"SQLite 数据库 {path} 不可用：{reason}"
    return f"无法连接数据库 {where}：{reason}"


def ensure_usable(url: str, *, migrate: bool = True) -> None:
    """Start-up check: open (and migrate) the database and make sure it takes writes; DatabaseUnusableError if not.

    A SQLite URL that asks for read-only (`?mode=ro&uri=true`) is a deliberate read-only server: not refused."""
    from alembic.util import CommandError

    try:
        make_url(normalize_url(url))
    except ArgumentError as exc:
        raise DatabaseUnusableError(f"HOTLINE_DATABASE_URL 无效：{exc}") from exc
    try:
        if migrate:
            upgrade(url)
        engine = make_engine(url, pool_size=1)
        try:
            problem = probe_writes(engine)
        finally:
            engine.dispose()
    except DatabaseUnusableError:
        raise
    except (DBAPIError, OSError, CommandError) as exc:
        raise DatabaseUnusableError(describe_failure(exc, url)) from exc
    if problem is None or (problem is StorageProblem.read_only and sqlite_read_only_by_request(url)):
        return
    where = sqlite_path(url) or make_url(normalize_url(url)).render_as_string(hide_password=True)
    if problem is StorageProblem.read_only:
        raise DatabaseUnusableError(f"数据库 {where} 只读，无法写入：检查文件与目录的权限、所有者或磁盘挂载")
    raise DatabaseUnusableError(
        f"数据库 {where} 所在磁盘剩余空间不足 {MIN_FREE_BYTES // (1024 * 1024)} MB，无法写入：请清理磁盘空间"
    )


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalize_url(url)
    _ensure_sqlite_dir(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations (the only way the schema is created)."""
    from alembic import command
    from alembic.config import Config

    _ensure_sqlite_dir(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates "%": a percent-encoded password must reach Alembic as written
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def one_of(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """`column IN (…)` for a list parameter. On PostgreSQL `= ANY(array)`: one statement text whatever the list's
    length, so the server plans it once (prepared) instead of for every batch size."""
    if postgres:
        return cast(ColumnElement[bool], column == any_(bindparam(name, type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))
