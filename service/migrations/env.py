"""Alembic environment: migrations for the Hotline schema (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import service.areas.models
import service.auth.models
import service.evidence.models
import service.keypoints.models
import service.learning.models
import service.notify.models
import service.reports.models
import service.tickets.models

config = context.config
target_metadata = SQLModel.metadata
# imported for their side effect: the tables register on SQLModel.metadata
_ = (
    service.auth.models,
    service.learning.models,
    service.notify.models,
    service.reports.models,
    service.tickets.models,
)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
