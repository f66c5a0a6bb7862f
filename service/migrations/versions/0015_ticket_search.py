"""text search with an index: ticket_search holds each ticket's terms (a tsvector with a GIN index on PostgreSQL, an
FTS5 table on SQLite), weighted by where a term stands (title and number, text, address); existing tickets are
indexed here a batch at a time, with progress in the log

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 20:00:00
"""

import logging
from collections.abc import Sequence

from alembic import op

from service.tickets.search import SEARCH_TABLE, backfill

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute(
            f"CREATE TABLE {SEARCH_TABLE}"
            " (ticket_id INTEGER PRIMARY KEY REFERENCES ticket (id), terms TSVECTOR NOT NULL)"
        )
    else:
        # the terms are hex words (service/tickets/search.py): the ascii tokenizer keeps each whole
        op.execute(f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(head, body, place, tokenize = 'ascii')")
    done = backfill(conn, progress=lambda n, total: log.info("search index: %d / %d tickets", n, total))
    log.info("search index: %d tickets indexed", done)
    if conn.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_{SEARCH_TABLE}_terms ON {SEARCH_TABLE} USING gin (terms)")


def downgrade() -> None:
    op.execute(f"DROP TABLE {SEARCH_TABLE}")
