"""``shopchat db copy``: a shop's gateway database moved from its SQLite file to PostgreSQL,
whole and checked.

Both ends are first brought to the newest schema (the same migrations, see
:mod:`handoff.db.pg_schema`), so they have the same tables and columns. Every table is
copied in the order the migrations created it (a table's references come before it)
inside one PostgreSQL transaction with ``COPY``: the target gets everything or nothing.
Then the identity sequences continue after the copied ids, and the copy is checked
before it commits: the rows of every table, and each conversation's ``last_seq``
against its newest event, must match the source. The target must hold no gateway data:
a copy never merges into a database in use.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg

from handoff.db.pg_schema import migrate_postgres
from handoff.db.schema import migrate

__all__ = ["CopyError", "CopyReport", "copy_to_postgres", "sqlite_path"]

#: Rows sent per COPY batch (keeps memory flat on a large shop's event log).
BATCH = 5_000


class CopyError(Exception):
    """The copy cannot be made (a bad address, a target in use, a mismatch found)."""


@dataclass(frozen=True)
class CopyReport:
    #: Rows per table, in copy order (the same at both ends, or the copy failed).
    rows: dict[str, int]
    conversations_checked: int


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///path`` address (relative paths from the current directory;
    ``sqlite:////abs/path`` for an absolute one), or a plain path."""
    if "://" not in url:
        return Path(url)
    parsed = urlparse(url)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.netloc:
        raise CopyError(f"Not a SQLite address: {url!r} (expected sqlite:///var/gateway.db)")
    return Path(parsed.path[1:])


def _check_postgres_url(url: str) -> None:
    if urlparse(url).scheme not in ("postgresql", "postgres"):
        raise CopyError(f"Not a PostgreSQL address: {url!r} "
                        "(expected postgresql://user@host:5432/database)")


def _tables(conn: sqlite3.Connection) -> list[str]:
    """The gateway's tables in the order they were created (references first)."""
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'schema_version' ORDER BY rowid")]


async def _column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1", table)
    return {row["column_name"]: row["data_type"] for row in rows}


def _converter(data_type: str) -> Any:
    """SQLite keeps what it is given (a time written as 3 is an integer); PostgreSQL's
    binary COPY wants the column's own type."""
    if data_type == "double precision":
        return lambda value: None if value is None else float(value)
    if data_type == "bigint":
        return lambda value: None if value is None else int(value)
    return lambda value: value


async def copy_to_postgres(source: Path, target_url: str) -> CopyReport:
    """Copy the gateway database at ``source`` into the empty one at ``target_url``."""
    _check_postgres_url(target_url)
    if not source.is_file():
        raise CopyError(f"No gateway database at {source}")
    sqlite = sqlite3.connect(source)
    try:
        migrate(sqlite)
        try:
            pg = await asyncpg.connect(target_url)
        except (OSError, asyncpg.PostgresError) as error:
            raise CopyError(f"Cannot connect to {urlparse(target_url).hostname}: {error}") \
                from error
        try:
            await migrate_postgres(pg)
            return await _copy(sqlite, pg)
        finally:
            await pg.close()
    finally:
        sqlite.close()


async def _copy(sqlite: sqlite3.Connection, pg: asyncpg.Connection) -> CopyReport:
    tables = _tables(sqlite)
    rows: dict[str, int] = {}
    async with pg.transaction():
        for table in tables:
            if await pg.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                raise CopyError(f"The target already holds gateway data (table {table}); "
                                "copy only into an empty database.")
        for table in tables:
            types = await _column_types(pg, table)
            cursor = sqlite.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            missing = [c for c in columns if c not in types]
            if missing:
                raise CopyError(f"The target's {table} lacks columns {missing}; "
                                "is it a newer shopchat's database?")
            convert = [_converter(types[c]) for c in columns]
            count = 0
            while batch := cursor.fetchmany(BATCH):
                await pg.copy_records_to_table(
                    table, columns=columns,
                    records=[tuple(f(v) for f, v in zip(convert, row, strict=True))
                             for row in batch])
                count += len(batch)
            rows[table] = count
            await _continue_identity(pg, table)
        checked = await _verify(sqlite, pg, rows)
    return CopyReport(rows, checked)


async def _continue_identity(pg: asyncpg.Connection, table: str) -> None:
    """New rows get ids after the copied ones (COPY does not move an identity's sequence)."""
    for row in await pg.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = $1 AND is_identity = 'YES'", table):
        column = row["column_name"]
        await pg.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)")


async def _verify(sqlite: sqlite3.Connection, pg: asyncpg.Connection,
                  rows: dict[str, int]) -> int:
    """Row counts per table and every conversation's seqs, compared with the source."""
    for table, count in rows.items():
        copied = await pg.fetchval(f"SELECT count(*) FROM {table}")
        if copied != count:
            raise CopyError(f"{table}: {count} rows in the source, {copied} copied")
    query = ("SELECT c.id, c.last_seq, coalesce(max(e.seq), 0), count(e.seq) FROM conversations c "
             "LEFT JOIN events e ON e.conversation_id = c.id GROUP BY c.id, c.last_seq")
    source = {row[0]: tuple(row[1:]) for row in sqlite.execute(query)}
    target = {row[0]: (row[1], row[2], row[3]) for row in await pg.fetch(query)}
    if source != target:
        differing = sorted(k for k in source.keys() | target.keys()
                           if source.get(k) != target.get(k))
        raise CopyError(f"{len(differing)} conversations differ after the copy, e.g. "
                        f"{differing[0]}")
    return len(source)
