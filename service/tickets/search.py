"""Text search over tickets with an index (docs/WEB.md#文字搜索): the terms of a ticket's title, content, address
and external id are stored at intake in `ticket_search` — a tsvector with a GIN index on PostgreSQL, an FTS5 table on
SQLite — and a query is cut into terms the same way and matched against all of them.

Terms: every Chinese character and every pair of adjacent ones (so "群租" finds 群租 wherever it stands, whatever
a word segmenter would make of the sentence, and never a ticket that only has 群 or 租), and each run of letters and
digits or of other symbols, lower-cased ("SH2026A", "13812345678", "_%": `%` and `_` are plain characters here).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Integer, Text, bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import Boolean, Float

# the index lives outside the models' metadata: its column types exist on one database each (created by
# migration 0015; the migration test knows to skip it)
SEARCH_TABLE = "ticket_search"
# with FTS5's shadow tables on SQLite
SEARCH_TABLES = frozenset(
    {SEARCH_TABLE, *(f"{SEARCH_TABLE}_{part}" for part in ("data", "idx", "content", "docsize", "config"))}
)

# CJK ideographs: the basic block, extension A, compatibility, and the supplementary planes (𠮷 and the rare
# characters of names and places)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_RUN = re.compile(f"[{_HAN}]+")
# letters and digits; other symbols (not punctuation a sentence is made of) stay together as one term
_WORD = re.compile(r"[0-9a-z]+")
_SYMBOLS = re.compile(rf"[^\s0-9a-z{_HAN}，。、；：？！“”‘’（）《》【】「」…—·,.;:?!\"'()\[\]{{}}<>]+")
# a telephone number (or an id card's digits): its presence is personal data (docs/PRIVACY.md)
_PHONE = re.compile(r"[0-9]{7,}")
MAX_QUERY_TERMS = 64
# a longer run is cut to this many characters, in the index and in a query alike: a word of thousands of letters
# would exceed PostgreSQL's 2 KB limit for one lexeme and refuse the whole ticket
MAX_TERM_CHARS = 64


def _normal(value: str) -> str:
    return unicodedata.normalize("NFKC", value).lower()


def _han_terms(run: str) -> list[str]:
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def terms(*texts: str | None) -> list[str]:
    """The distinct terms of a ticket's texts, in first-seen order."""
    found: dict[str, None] = {}
    for value in texts:
        plain = _normal(value or "")
        for run in _HAN_RUN.findall(plain):
            found.update(dict.fromkeys(_han_terms(run)))
        found.update(dict.fromkeys(_runs(_HAN_RUN.sub(" ", plain))))
    return list(found)


def _runs(text: str) -> list[str]:
    """Letter-and-digit runs and other symbol runs, each cut to MAX_TERM_CHARS."""
    runs = [*_WORD.findall(text), *(s for s in _SYMBOLS.findall(text) if not _WORD.fullmatch(s))]
    return [run[:MAX_TERM_CHARS] for run in runs]


def query_terms(query: str) -> list[str]:
    """What a query must all find: a run of Chinese characters its pairs (a single character itself), each other
    run itself."""
    wanted: dict[str, None] = {}
    plain = _normal(query)
    for run in _HAN_RUN.findall(plain):
        wanted.update(dict.fromkeys([run] if len(run) == 1 else _han_terms(run)[len(run) :]))
    wanted.update(dict.fromkeys(_runs(_HAN_RUN.sub(" ", plain))))
    return list(wanted)[:MAX_QUERY_TERMS]


def has_phone(wanted: Sequence[str]) -> bool:
    return any(_PHONE.fullmatch(t) for t in wanted)


# SQLite's FTS5 tokenizers would split "_%" or drop it: each term is stored and matched as hex, which every
# tokenizer keeps whole
def _hex(term: str) -> str:
    return "x" + term.encode().hex()


def sqlite_document(found: Iterable[str]) -> str:
    return " ".join(_hex(t) for t in found)


def _tsquery(wanted: Sequence[str]) -> str:
    return " & ".join(_quoted(t) for t in wanted)


def _fts_match(wanted: Sequence[str]) -> str:
    return " AND ".join(f'"{_hex(t)}"' for t in wanted)


class _Search(ColumnElement[Any]):
    inherit_cache = False

    def __init__(self, ticket_id: Any, wanted: Sequence[str]) -> None:
        self.ticket_id = ticket_id
        self.wanted = tuple(wanted)

    def parts(self, compiler: Any, kw: dict[str, Any], query: str) -> tuple[str, str]:
        """The bound query text and the ticket id column, as SQL."""
        bound = compiler.process(bindparam(None, query, type_=Text), **kw)
        return bound, compiler.process(self.ticket_id, **kw)


class matches(_Search):
    """`ticket.id` is a ticket whose terms include every wanted term (a subquery on the search index)."""

    type = Boolean()
    # the terms are bound values, but the compiled SQL is built around them: no statement cache
    inherit_cache = False


class relevance(_Search):
    """How well a ticket matches (larger is better), for ORDER BY … DESC."""

    type = Float()
    inherit_cache = False


@compiles(matches, "postgresql")
def _matches_pg(element: matches, compiler: Any, **kw: Any) -> str:
    query, column = element.parts(compiler, kw, _tsquery(element.wanted))
    return f"{column} IN (SELECT ticket_id FROM {SEARCH_TABLE} WHERE terms @@ CAST({query} AS tsquery))"


@compiles(matches, "sqlite")
def _matches_sqlite(element: matches, compiler: Any, **kw: Any) -> str:
    query, column = element.parts(compiler, kw, _fts_match(element.wanted))
    return f"{column} IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH {query})"


@compiles(relevance, "postgresql")
def _relevance_pg(element: relevance, compiler: Any, **kw: Any) -> str:
    query, column = element.parts(compiler, kw, _tsquery(element.wanted))
    return f"(SELECT ts_rank(terms, CAST({query} AS tsquery)) FROM {SEARCH_TABLE} WHERE ticket_id = {column})"


@compiles(relevance, "sqlite")
def _relevance_sqlite(element: relevance, compiler: Any, **kw: Any) -> str:
    query, column = element.parts(compiler, kw, _fts_match(element.wanted))
    # bm25 is negative, smaller is better; the title and the number weigh most, the address least
    return (
        f"(SELECT -bm25({SEARCH_TABLE}, 10.0, 2.0, 1.0) FROM {SEARCH_TABLE}"
        f" WHERE {SEARCH_TABLE} MATCH {query} AND rowid = {column})"
    )


# Writing the index ---------------------------------------------------------------------------------------------


# where a term stands weighs in its relevance: the title and the number over the text, the text over the address
_PARTS = (("A", ("title", "external_id")), ("B", ("content",)), ("C", ("address",)))
_MAX_POSITION = 16383  # PostgreSQL's limit for a tsvector position


def _quoted(term: str) -> str:
    # a quoted lexeme is taken as it is (no parsing, no stemming): ' doubled, \ escaped
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def pg_vector(row: dict[str, Any], *, terms_of: Callable[..., Iterable[str]] = terms) -> str:
    """A tsvector literal of the row's terms with a position and a weight each (taken as is: no parsing);
    `terms_of` may be a memoized `terms` where texts repeat (the scale bench's corpus)."""
    places: dict[str, list[str]] = {}
    position = 0
    for weight, fields in _PARTS:
        for term in terms_of(*(row.get(f) for f in fields)):
            position = min(position + 1, _MAX_POSITION)
            places.setdefault(term, []).append(f"{position}{weight}")
    return " ".join(f"{_quoted(t)}:{','.join(p)}" for t, p in places.items())


def index_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add (or replace) the index entries of tickets (`id`, `title`, `content`, `address`, `external_id`)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f"INSERT INTO {SEARCH_TABLE} (ticket_id, terms) VALUES (:id, CAST(:vector AS tsvector))"
                " ON CONFLICT (ticket_id) DO UPDATE SET terms = EXCLUDED.terms"
            ),
            [{"id": r["id"], "vector": pg_vector(r)} for r in rows],
        )
        return
    documents = [
        {"id": r["id"]}
        | {f"c{i}": sqlite_document(terms(*(r.get(f) for f in fields))) for i, (_, fields) in enumerate(_PARTS)}
        for r in rows
    ]
    conn.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE rowid = :id"), documents)
    conn.execute(text(f"INSERT INTO {SEARCH_TABLE} (rowid, head, body, place) VALUES (:id, :c0, :c1, :c2)"), documents)


_UNINDEXED = {
    "postgresql": f"SELECT id, title, content, address, external_id FROM ticket t WHERE id > :after AND NOT EXISTS "
    f"(SELECT 1 FROM {SEARCH_TABLE} s WHERE s.ticket_id = t.id) ORDER BY id LIMIT :n",
    "sqlite": f"SELECT id, title, content, address, external_id FROM ticket t WHERE id > :after AND NOT EXISTS "
    f"(SELECT 1 FROM {SEARCH_TABLE} s WHERE s.rowid = t.id) ORDER BY id LIMIT :n",
}


def backfill(conn: Connection, *, batch: int = 2000, progress: Any = None) -> int:
    """Index every ticket not yet indexed, a batch at a time (each batch its own statement, so a big table is
    indexed while intake goes on); `progress(done, total)` after each batch. Returns how many were indexed."""
    total = conn.execute(text("SELECT count(*) FROM ticket")).scalar_one()
    statement = text(_UNINDEXED[conn.dialect.name]).bindparams(bindparam("after", type_=Integer))
    done, after = 0, 0
    while True:
        rows = [dict(r) for r in conn.execute(statement, {"after": after, "n": batch}).mappings()]
        if not rows:
            return done
        index_rows(conn, rows)
        done += len(rows)
        after = rows[-1]["id"]
        if progress is not None:
            progress(done, total)
