"""The gateway database's schema: one place defines it, migrations are recorded, and a
database of any age ends up with the same tables as a new one."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from handoff.db import schema
from handoff.db.conversations import ConversationStore
from handoff.db.schema import MIGRATIONS, Migration, migrate, version

#: A gateway database as the code wrote it before migrations were recorded (and before
#: verified customers): some tables, no schema_version, no customer_id.
LEGACY = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'bot', page TEXT, last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE events (conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq));
CREATE TABLE api_tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, revoked_at REAL);
INSERT INTO conversations VALUES ('c1', 'h', 'bot', NULL, 0, 1, 1);
"""


def columns(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {table: [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in tables if table != "sqlite_sequence"}


def test_a_new_database_gets_every_migration_recorded(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "gateway.db")
    assert migrate(conn) == MIGRATIONS[-1].version == version(conn)
    recorded = conn.execute("SELECT version, name FROM schema_version ORDER BY version")
    assert [tuple(r) for r in recorded] == [(m.version, m.name) for m in MIGRATIONS]
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert migrate(conn) == MIGRATIONS[-1].version  # nothing left to do, nothing redone


def test_a_database_from_before_migrations_ends_up_like_a_new_one(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript(LEGACY)
    migrate(old)
    new = sqlite3.connect(tmp_path / "new.db")
    migrate(new)
    assert columns(old) == columns(new)
    assert old.execute("SELECT id, customer_id FROM conversations").fetchall() == [("c1", None)]


def test_a_failing_migration_changes_nothing_and_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = sqlite3.connect(tmp_path / "gateway.db")
    migrate(conn)
    broken = Migration(len(MIGRATIONS) + 1, "broken", (
        "CREATE TABLE half_done (id INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn)
    assert version(conn) == MIGRATIONS[-1].version
    assert "half_done" not in columns(conn)


def test_processes_opening_one_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            ConversationStore(path).close()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (len(MIGRATIONS),)


def test_no_gateway_table_is_created_anywhere_else() -> None:
    """handoff/db/schema.py defines the gateway database; other code only opens it."""
    tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)",
                            (PROJECT_DIR / "handoff" / "db" / "schema.py").read_text()))
    assert {"conversations", "handoffs", "webhook_outbox", "review_verdicts"} <= tables
    offenders = []
    for path in [*PROJECT_DIR.glob("handoff/**/*.py"), *PROJECT_DIR.glob("bot/**/*.py"),
                 *PROJECT_DIR.glob("shopchat/**/*.py")]:
        if path.parent.name == "db":
            continue
        for table in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", path.read_text()):
            if table in tables:
                offenders.append(f"{path.relative_to(PROJECT_DIR)}: {table}")
    assert not offenders, offenders


#: Code outside handoff/db that reads or writes gateway tables itself: none (the privacy
#: tools, which work across every store, reach the gateway's through handoff/db/privacy.py).
SQL_ELSEWHERE: set[str] = set()


def test_no_code_outside_the_database_package_has_sql_for_gateway_tables() -> None:
    tables = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)",
                            (PROJECT_DIR / "handoff" / "db" / "schema.py").read_text()))
    # Rasa's tracker store has an `events` table too (analytics and the review inbox
    # read it): the name alone cannot tell them apart.
    tables.discard("events")
    pattern = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(" + "|".join(sorted(tables)) + r")\b")
    found = set()
    for path in [*PROJECT_DIR.glob("handoff/**/*.py"), *PROJECT_DIR.glob("bot/**/*.py"),
                 *PROJECT_DIR.glob("shopchat/**/*.py"), *PROJECT_DIR.glob("actions/**/*.py")]:
        relative = str(path.relative_to(PROJECT_DIR))
        if not relative.startswith("handoff/db/") and pattern.search(path.read_text()):
            found.add(relative)
    assert found == SQL_ELSEWHERE, found - SQL_ELSEWHERE or SQL_ELSEWHERE - found
