"""The append-only log of every change the bot makes to the shop's data.

Always a local SQLite table, whichever backend holds the orders: the shop can
answer "who cancelled this order, and when" from its own records of the chat.
SQLite triggers refuse DELETE and every UPDATE but one: a shopper's erasure
request (``shopchat privacy delete``) may replace the ``detail`` of their rows
(an address they typed, the reason they gave) with :data:`REDACTED`. What was
done, to which order and when stays; the redaction is itself a new row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bot.store.models import AuditEntry

__all__ = ["AUDIT_SCHEMA", "REDACTED", "AuditLog"]

#: The only value an audit row's detail may be changed to (by a privacy request).
REDACTED = '{"redacted": "privacy request"}'

AUDIT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    conversation_id TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_conversation ON audit (conversation_id);
DROP TRIGGER IF EXISTS audit_no_update;
CREATE TRIGGER IF NOT EXISTS audit_only_redaction BEFORE UPDATE ON audit
WHEN NOT (NEW.detail = '{REDACTED}' AND NEW.id = OLD.id
          AND NEW.at = OLD.at AND NEW.action = OLD.action AND NEW.target = OLD.target
          AND NEW.conversation_id IS OLD.conversation_id)
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

    def redact(self, conversation_ids: list[str], targets: list[str]) -> int:
        """Blank the detail of rows from these conversations or about these orders/returns.

        Returns how many rows were redacted; a row saying so is appended (it
        names the rows, not the person).
        """
        if not conversation_ids and not targets:
            return 0
        clauses = []
        params: list[Any] = []
        for column, values in (("conversation_id", conversation_ids), ("target", targets)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params += values
        rows = [row[0] for row in self.conn.execute(
            f"SELECT id FROM audit WHERE ({' OR '.join(clauses)}) AND detail != ?",
            [*params, REDACTED])]
        if rows:
            marks = ",".join("?" * len(rows))
            self.conn.execute(f"UPDATE audit SET detail = ? WHERE id IN ({marks})",
                              [REDACTED, *rows])
            self.record("privacy_redaction", f"{len(rows)} rows", {"rows": rows}, None)
        return len(rows)

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
