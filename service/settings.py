"""The one settings object: everything comes from HOTLINE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The well-known demo secret: accepted only in demo mode, so a forgotten setting never reaches production.
DEMO_SECRET = "demo-secret-change-me"
MIN_SECRET_LENGTH = 16


class UnsafeSettingsError(RuntimeError):
    pass


class Settings(BaseSettings):
    # env_ignore_empty: an empty variable means "not set". Compose, systemd and Kubernetes pass optional settings as
    # empty strings (`${HOTLINE_NOTIFY_WEBHOOKS:-}`), which would otherwise fail to parse as JSON / int / bool.
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=None, extra="ignore", env_ignore_empty=True)

    database_url: str = "sqlite:///var/hotline.db"
    # reports and exports read here when set (a PostgreSQL streaming replica, docs/SCALING.md): leaders' Excel
    # exports never compete with intake for the primary
    report_database_url: str | None = None
    webhook_secret: SecretStr = SecretStr(DEMO_SECRET)
    demo: bool = False
    rules: Path = Path("rules.yaml")
    model: Path = Path("models/street")
    # learning from corrections: versioned model directories (<root>/<version>/), how often each API process checks
    # which version is active (0: never switch without a restart), and the optional weekly retrain with its data
    models_root: Path = Path("var/models")
    model_check_seconds: float = Field(default=5.0, ge=0, le=3600)
    retrain_weekly: bool = False
    retrain_corpus: Path = Path("models/street/corpus.jsonl")
    retrain_real: Path | None = Path("models/street/real_labels.jsonl")
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    signature_tolerance_seconds: int = Field(default=300, gt=0)
    # the most webhook deliveries stored in one transaction (group commit under load)
    intake_batch_max: int = Field(default=64, ge=1, le=1000)
    # concurrent intake transactions per process on PostgreSQL (SQLite always uses one). One is fastest next to
    # the database (a second competes for the interpreter lock and makes batches smaller); more can pay off when
    # each round trip to a remote server is long
    intake_writers: int = Field(default=1, ge=1, le=16)
    callback_url: str | None = None
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, gt=0)
    retry_after_seconds: int = Field(default=5, gt=0)
    # addresses of trusted proxies (the load balancer): only their X-Forwarded-For names the client, which the
    # failed-token throttle and the logs use; empty: the peer address is the client
    forwarded_allow_ips: str = ""
    readiness_calendar_days: int = Field(default=60, ge=0)
    # scheduling: `hotline serve` runs the jobs in-process unless this is off (then run `hotline scheduler`)
    scheduler: bool = True
    sweep_interval_seconds: int = Field(default=60, gt=0)
    outbox_interval_seconds: int = Field(default=5, gt=0)
    # the report rollup's refresh (docs/SCALING.md#报表汇总); a touched day reads live until it runs
    rollup_interval_seconds: int = Field(default=60, gt=0)
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_max_attempts: int = Field(default=12, gt=0)
    outbox_backoff_seconds: float = Field(default=30.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # Open311 GET requests: public (redacted, dispatched tickets only) or off entirely
    open311_public_reads: bool = True
    # browser sessions: ended after this long without a request, and this long after login whatever happens
    session_idle_minutes: int = Field(default=30, gt=0, le=24 * 60)
    session_max_hours: int = Field(default=12, gt=0, le=7 * 24)
    # cameras and sensors sign their events with this (not the hotline's secret); unset: the device endpoint is off
    device_secret: SecretStr | None = None
    # photo evidence: a local directory, or an S3-compatible store (MinIO, S3) with its credentials from the environment
    photo_store: Literal["local", "s3"] = "local"
    photo_dir: Path = Path("var/photos")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    # group robots: {"dispatcher": ["https://…"], "pingan": ["https://…"]} (secrets: environment only)
    notify_webhooks: dict[str, list[str]] = {}

    def check_safe(self) -> None:
        """Refuse to run with the demo secret (or a short one) unless demo mode is explicitly on."""
        secret = self.webhook_secret.get_secret_value()
        if self.demo:
            return
        if secret == DEMO_SECRET or len(secret) < MIN_SECRET_LENGTH:
            raise UnsafeSettingsError(
                "HOTLINE_WEBHOOK_SECRET 未设置或过短（至少 16 个字符）。"
                "生产环境请设置随机密钥；仅演示时可设置 HOTLINE_DEMO=1 使用默认密钥。"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
