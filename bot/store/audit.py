"""The append-only log of every change the bot makes to the shop's data.

Always a local SQLite table, whichever backend holds the orders: the shop can
answer "who cancelled this order, and when" from its own records of the chat.
SQLite triggers refuse UPDATE and DELETE, so a bug cannot rewrite history.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bot.store.models import AuditEntry

__all__ = ["AUDIT_SCHEMA", "AuditLog"]

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    conversation_id TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_conversation ON audit (conversation_id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class AuditLog:
    """Audit rows on an open SQLite connection (shared with the store's own tables)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(AUDIT_SCHEMA)

    def record(self, action: str, target: str, detail: dict[str, Any],
               conversation_id: str | None) -> None:
        """Insert one row; the caller's transaction decides when it is committed."""
        self.conn.execute(
            "INSERT INTO audit (at, conversation_id, action, target, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            [time.time(), conversation_id, action, target, json.dumps(detail, default=str)],
        )

    def entries(self, conversation_id: str | None = None) -> list[AuditEntry]:
        query = "SELECT * FROM audit"
        params: list[Any] = []
        if conversation_id is not None:
            query += " WHERE conversation_id = ?"
            params.append(conversation_id)
        rows = self.conn.execute(query + " ORDER BY id", params).fetchall()
        return [
            AuditEntry(id=row[0], at=datetime.fromtimestamp(row[1], UTC), conversation_id=row[2],
                       action=row[3], target=row[4], detail=json.loads(row[5]))
            for row in rows
        ]
