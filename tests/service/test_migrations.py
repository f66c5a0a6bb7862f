"""The committed Alembic migrations build exactly the schema the models describe, and go down and up again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import service.auth.models
import service.learning.models
import service.notify.models
import service.reports.models
import service.tickets.models
from service.db import MIGRATIONS, normalize_url, upgrade

_ = (
    service.auth.models,
    service.learning.models,
    service.notify.models,
    service.reports.models,
    service.tickets.models,
)


def _diff(url: str) -> list[object]:
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    return list(diff)


def test_migrations_match_models_and_downgrade(db_url: str, tmp_path: Path) -> None:
    assert _diff(db_url) == []
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(db_url))
    command.downgrade(config, "base")
    upgrade(db_url)
    assert _diff(db_url) == []
