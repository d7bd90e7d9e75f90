"""A shopper's data on request (GDPR access and erasure), and retention.

Everything shopchat stores about a shopper hangs off their conversations. A
shopper is found by email in every store: offline tickets, what they typed
(the transcript, the agent's context packet), mail to or from them (the mail
queue, the threads of tickets answered by mail, the shop's order updates posted or
mailed to them), Rasa's tracker, and the shop
customer with that email (whose verified chats carry their customer id).
``export`` returns all of it as JSON; ``delete`` removes the conversations
from the gateway database, the knowledge-base log and Rasa's tracker store,
drops undelivered webhooks that carry them, and pseudonymises the customer in
the built-in shop store (orders stay: they are the shop's accounting
records, now without the email and name). The shop's audit log keeps its rows
(what the bot did to which order, and when) with their details (addresses,
reasons) redacted. Each request is logged with a hash
of the email, never the email.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.settings import Settings
from bot.store.audit import AuditLog
from handoff.db import privacy as gateway
from handoff.db.schema import migrate

__all__ = ["conversations_of", "delete", "export", "purge_older_than"]


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection | None]:
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        [table]).fetchone() is not None


def _customer_ids(settings: Settings, email: str) -> list[str]:
    with _open(settings.shop_db) as conn:
        if conn is None or not _has_table(conn, "customers"):
            return []
        return [row["id"] for row in conn.execute(
            "SELECT id FROM customers WHERE lower(email) = lower(?)", [email])]


def conversations_of(settings: Settings, email: str) -> list[str]:
    """Every conversation that belongs to, or mentions, ``email``."""
    found: set[str] = set()
    with _open(settings.gateway_db) as conn:
        if conn is not None:
            found |= gateway.conversations_by_email(conn, email, _customer_ids(settings, email))
    with _open(settings.tracker_db) as conn:
        if conn is not None and _has_table(conn, "events"):
            found.update(row[0] for row in conn.execute(
                "SELECT DISTINCT sender_id FROM events WHERE data LIKE ? ESCAPE '\\'",
                [gateway.like(email)]))
    return sorted(found)


def _rows(conn: sqlite3.Connection | None, table: str, column: str,
          ids: list[str]) -> list[dict[str, Any]]:
    if conn is None or not ids or not _has_table(conn, table):
        return []
    marks = ",".join("?" * len(ids))
    return [dict(row) for row in conn.execute(
        f"SELECT * FROM {table} WHERE {column} IN ({marks})", ids)]


def export(settings: Settings, email: str) -> dict[str, Any]:
    """Everything stored about ``email``, as JSON-ready data."""
    ids = conversations_of(settings, email)
    result: dict[str, Any] = {"email": email, "conversations": ids, "gateway": {},
                              "knowledge_base": {}, "rasa_tracker": [], "shop": {}}
    with _open(settings.gateway_db) as conn:
        if conn is None:
            result["gateway"] = {table: [] for table in gateway.GATEWAY_TABLES}
        else:
            result["gateway"] = gateway.rows_of(conn, ids)
            # Mail to the address, and order updates mailed to it or about the customer's
            # orders, that reached no conversation are theirs too.
            for table, rows in gateway.unattached_rows(
                    conn, email, _customer_ids(settings, email)).items():
                result["gateway"][table] += rows
    with _open(settings.kb_log_db) as conn:
        for table in ("kb_answers", "kb_feedback"):
            result["knowledge_base"][table] = _rows(conn, table, "conversation_id", ids)
    with _open(settings.tracker_db) as conn:
        result["rasa_tracker"] = _rows(conn, "events", "sender_id", ids)
    customers = _customer_ids(settings, email)
    with _open(settings.shop_db) as conn:
        result["shop"] = {
            "customers": _rows(conn, "customers", "id", customers),
            "orders": _rows(conn, "orders", "customer_id", customers),
            "audit": _rows(conn, "audit", "conversation_id", ids),
        }
    _log(settings, "export", email, {"conversations": len(ids)})
    return result


def _delete_conversations(settings: Settings, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not ids:
        return counts
    marks = ",".join("?" * len(ids))
    with _open(settings.gateway_db) as conn:
        if conn is not None:
            counts |= gateway.delete_conversations(conn, ids)
    with _open(settings.kb_log_db) as conn:
        if conn is not None:
            for table in ("kb_answers", "kb_feedback"):
                if _has_table(conn, table):
                    counts[table] = conn.execute(
                        f"DELETE FROM {table} WHERE conversation_id IN ({marks})", ids).rowcount
    with _open(settings.tracker_db) as conn:
        if conn is not None and _has_table(conn, "events"):
            counts["rasa_events"] = conn.execute(
                f"DELETE FROM events WHERE sender_id IN ({marks})", ids).rowcount
    for path in (settings.gateway_db, settings.kb_log_db, settings.tracker_db):
        _compact(path)
    return counts


def _compact(path: Path) -> None:
    """Deleted rows must not linger in free pages or in the write-ahead log."""
    with _open(path) as conn:
        if conn is not None:
            conn.commit()
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def delete(settings: Settings, email: str) -> dict[str, int]:
    """Erase ``email``'s conversations everywhere and pseudonymise the shop customer."""
    ids = conversations_of(settings, email)
    unattached: dict[str, int] = {}
    with _open(settings.gateway_db) as conn:
        if conn is not None:
            unattached = gateway.delete_unattached(conn, email, _customer_ids(settings, email))
    counts = _delete_conversations(settings, ids)
    for table, deleted in unattached.items():
        if deleted:
            counts[table] = counts.get(table, 0) + deleted
    subject = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    placeholder = f"deleted-{subject[:12]}@invalid"
    customers = _customer_ids(settings, email)
    with _open(settings.shop_db) as conn:
        # Opened first: AuditLog's schema script commits, so the changes below are one transaction.
        audit = AuditLog(conn) if conn is not None and _has_table(conn, "audit") else None
        if conn is not None and customers:
            for customer_id in customers:
                row = conn.execute("SELECT data FROM customers WHERE id = ?",
                                   [customer_id]).fetchone()
                data = json.loads(row["data"])
                data.update(email=placeholder, first_name="Deleted", last_name="Customer")
                conn.execute("UPDATE customers SET email = ?, data = ? WHERE id = ?",
                             [placeholder, json.dumps(data), customer_id])
                for order in conn.execute("SELECT id, data FROM orders WHERE customer_id = ?",
                                          [customer_id]).fetchall():
                    order_data = json.loads(order["data"])
                    order_data["email"] = placeholder
                    conn.execute("UPDATE orders SET data = ? WHERE id = ?",
                                 [json.dumps(order_data), order["id"]])
            counts["shop_customers_pseudonymised"] = len(customers)
        if conn is not None and audit is not None:
            counts["shop_audit_rows_redacted"] = audit.redact(
                ids, _orders_and_returns(conn, customers))
    if customers or counts.get("shop_audit_rows_redacted"):
        _compact(settings.shop_db)
    _log(settings, "delete", email, {"conversations": len(ids), **counts})
    return {"conversations": len(ids), **counts}


def _orders_and_returns(conn: sqlite3.Connection, customers: list[str]) -> list[str]:
    """The ids of these customers' orders and of the returns on them (audit targets)."""
    if not customers or not _has_table(conn, "orders"):
        return []
    marks = ",".join("?" * len(customers))
    orders = [row[0] for row in conn.execute(
        f"SELECT id FROM orders WHERE customer_id IN ({marks})", customers)]
    if not orders or not _has_table(conn, "returns"):
        return orders
    marks = ",".join("?" * len(orders))
    return orders + [row[0] for row in conn.execute(
        f"SELECT rma FROM returns WHERE order_id IN ({marks})", orders)]


def purge_older_than(settings: Settings, days: float, now: float | None = None) -> int:
    """Retention: delete every conversation last active more than ``days`` ago."""
    cutoff = (time.time() if now is None else now) - days * 86400
    with _open(settings.gateway_db) as conn:
        ids = [] if conn is None else gateway.inactive_since(conn, cutoff)
    counts = _delete_conversations(settings, ids)
    _log(settings, "purge", None, {"days": days, "conversations": len(ids), **counts})
    return len(ids)


def _log(settings: Settings, action: str, email: str | None, detail: dict[str, Any]) -> None:
    settings.gateway_db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.gateway_db)
    try:
        migrate(conn)
        subject = hashlib.sha256(email.strip().lower().encode()).hexdigest() if email else None
        gateway.log_request(conn, action, subject, detail)
        conn.commit()
    finally:
        conn.close()
