"""the dispatcher queue in one query: each ticket keeps the instants its clocks' lights turn yellow (临期) and the
calendar they were worked out under (warn_basis); empty until the sweep job fills them, and the queue works out
the lights itself of a ticket whose warn_basis is not the current one

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("contact_warn_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolve_warn_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("warn_basis", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("warn_basis")
        batch.drop_column("resolve_warn_at")
        batch.drop_column("contact_warn_at")
