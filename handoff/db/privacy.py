"""The gateway database's part of a shopper's data requests (:mod:`handoff.privacy` runs them
across every store): finding a shopper's conversations by email, reading their rows,
deleting them, and the privacy log. Each function works on an open connection to
``gateway.db``, inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

__all__ = [
    "GATEWAY_TABLES",
    "conversations_by_email",
    "delete_conversations",
    "delete_unattached",
    "inactive_since",
    "log_request",
    "rows_of",
    "unattached_rows",
]

#: Gateway tables keyed by conversation id, children before parents.
GATEWAY_TABLES = ("order_events", "conversation_orders", "mail_outbox", "mail_threads",
                  "notes", "tickets", "handoffs", "client_messages", "events", "conversations")


def like(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere in a column (with ``ESCAPE '\\'``)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        [table]).fetchone() is not None


def _key(table: str) -> str:
    return "id" if table == "conversations" else "conversation_id"


def conversations_by_email(conn: sqlite3.Connection, email: str,
                           customers: list[str]) -> set[str]:
    """Conversations that belong to ``email`` or mention it: its tickets, mail threads and
    mail, what was typed (the transcript, an agent's context packet), and the chats of
    the shop ``customers`` with that email."""
    if not _has_table(conn, "conversations"):
        return set()
    pattern = like(email)
    queries: list[tuple[str, list[Any]]] = [
        ("SELECT conversation_id FROM tickets WHERE lower(email) = lower(?)", [email]),
        ("SELECT conversation_id FROM mail_threads WHERE lower(email) = lower(?)", [email]),
        ("SELECT conversation_id FROM mail_outbox WHERE lower(recipient) = lower(?) "
         "AND conversation_id IS NOT NULL", [email]),
        ("SELECT DISTINCT conversation_id FROM events WHERE body LIKE ? ESCAPE '\\'",
         [pattern]),
        ("SELECT DISTINCT conversation_id FROM handoffs WHERE context LIKE ? ESCAPE '\\'",
         [pattern]),
    ]
    if customers:
        marks = ",".join("?" * len(customers))
        queries.append((f"SELECT id FROM conversations WHERE customer_id IN ({marks})",
                        customers))
    found: set[str] = set()
    for query, params in queries:
        found.update(row[0] for row in conn.execute(query, params))
    return found


def rows_of(conn: sqlite3.Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every gateway row of these conversations, by table."""
    conn.row_factory = sqlite3.Row
    found: dict[str, list[dict[str, Any]]] = {}
    marks = ",".join("?" * len(ids))
    for table in GATEWAY_TABLES:
        found[table] = [] if not ids or not _has_table(conn, table) else [
            dict(row) for row in conn.execute(
                f"SELECT * FROM {table} WHERE {_key(table)} IN ({marks})", ids)]
    return found


def _unattached(email: str, customers: list[str]) -> list[tuple[str, str, list[Any]]]:
    """(table, ``FROM … WHERE …``, params) of ``email``'s rows that belong to no
    conversation: mail to the address, and order updates mailed to it or about an order
    of the shop customers with it."""
    marks = ",".join("?" * len(customers)) or "NULL"
    return [
        ("mail_outbox", "FROM mail_outbox WHERE conversation_id IS NULL "
                        "AND lower(recipient) = lower(?)", [email]),
        ("order_events", "FROM order_events WHERE conversation_id IS NULL AND "
                         f"(lower(email) = lower(?) OR customer_id IN ({marks}))",
         [email, *customers]),
    ]


def unattached_rows(conn: sqlite3.Connection, email: str,
                    customers: list[str]) -> dict[str, list[dict[str, Any]]]:
    conn.row_factory = sqlite3.Row
    return {table: [dict(row) for row in conn.execute(f"SELECT * {query}", params)]
            for table, query, params in _unattached(email, customers)
            if _has_table(conn, table)}


def delete_unattached(conn: sqlite3.Connection, email: str,
                      customers: list[str]) -> dict[str, int]:
    return {table: conn.execute(f"DELETE {query}", params).rowcount
            for table, query, params in _unattached(email, customers)
            if _has_table(conn, table)}


def delete_conversations(conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
    """Delete the conversations and everything of theirs, and undelivered webhooks that
    name them; rows deleted, by table."""
    counts: dict[str, int] = {}
    if not ids:
        return counts
    marks = ",".join("?" * len(ids))
    for table in GATEWAY_TABLES:
        if _has_table(conn, table):
            counts[table] = conn.execute(
                f"DELETE FROM {table} WHERE {_key(table)} IN ({marks})", ids).rowcount
    if _has_table(conn, "webhook_outbox"):
        counts["webhook_outbox"] = sum(
            conn.execute("DELETE FROM webhook_outbox WHERE body LIKE ? ESCAPE '\\'",
                         [like(conversation_id)]).rowcount for conversation_id in ids)
    return counts


def inactive_since(conn: sqlite3.Connection, cutoff: float) -> list[str]:
    """Conversations last active before ``cutoff`` (Unix time)."""
    if not _has_table(conn, "conversations"):
        return []
    return [row[0] for row in conn.execute(
        "SELECT id FROM conversations WHERE updated_at < ?", [cutoff])]


def log_request(conn: sqlite3.Connection, action: str, subject_sha256: str | None,
                detail: dict[str, Any]) -> None:
    """One line in the privacy log: what was done, for whom (a hash), how much."""
    conn.execute("INSERT INTO privacy_log (at, action, subject_sha256, detail) "
                 "VALUES (?, ?, ?, ?)", [time.time(), action, subject_sha256, json.dumps(detail)])
