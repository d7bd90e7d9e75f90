"""The order-update tables: the shop's order events (``order_events``, one row per
idempotency key, saying where each went) and the orders each conversation proved are the
shopper's (``conversation_orders``).

An event is stored in the transaction that posts it (the conversation's message, or the
queued mail) with its webhook rows, so a retried event finds its first outcome and is
never posted twice, and a crash loses all of it or none.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.readonly import read_rows
from handoff.db.conversations import Change, ConversationStore, Statement

__all__ = ["CHANNELS", "OrderEventStore", "StoredOrderEvent", "order_events_between"]

#: Where an order update went: the shopper's conversation, a mail, or nowhere (no
#: conversation of theirs is recent and mail is off).
CHANNELS = ("conversation", "email", "none")


@dataclass(frozen=True)
class StoredOrderEvent:
    """An order event as first stored: what a retry of it is answered with."""

    event_key: str
    fingerprint: str
    order_id: str
    type: str
    channel: str
    conversation_id: str | None
    seq: int | None
    created_at: float


@dataclass(frozen=True)
class NewOrderEvent:
    """What is stored about one order event (its ``channel`` decided by the caller)."""

    event_key: str
    fingerprint: str
    order_id: str
    type: str
    body: dict[str, Any]
    customer_id: str | None
    channel: str
    conversation_id: str | None = None
    email: str | None = None
    mail_message_id: str | None = None


class OrderEventStore:
    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.db = store.db

    def link(self, conversation_id: str, order_id: str) -> None:
        """The conversation proved ``order_id`` is the shopper's (told by the order form)."""
        self.db.execute("INSERT OR IGNORE INTO conversation_orders (conversation_id, order_id, "
                        "verified_at) VALUES (?, ?, ?)", [conversation_id, order_id, time.time()])

    def find(self, event_key: str) -> StoredOrderEvent | None:
        rows = list(self.db.query(
            "SELECT event_key, fingerprint, order_id, type, channel, conversation_id, seq, "
            "created_at FROM order_events WHERE event_key = ?", [event_key]))
        return StoredOrderEvent(**rows[0]) if rows else None

    def recent_conversation(self, order_id: str, customer_id: str | None,
                            since: float) -> str | None:
        """The most recently active conversation since ``since`` that is verifiably the
        customer's: the storefront signed its customer, or it proved this very order."""
        # Two indexed lookups (by customer, by proved order), never a scan of every
        # conversation: a shop may send an event for each order it ships.
        row = self.db.execute(
            "SELECT id, updated_at FROM conversations WHERE customer_id = ? AND updated_at >= ? "
            "UNION ALL SELECT c.id, c.updated_at FROM conversation_orders o JOIN conversations "
            "c ON c.id = o.conversation_id WHERE o.order_id = ? AND c.updated_at >= ? "
            "ORDER BY updated_at DESC LIMIT 1",
            [customer_id, since, order_id, since]).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _row(event: NewOrderEvent) -> Statement:
        # In a conversation the event's message is appended right after this statement,
        # in the same transaction: its seq is the conversation's next.
        return ("INSERT INTO order_events (event_key, fingerprint, order_id, type, body, "
                "customer_id, channel, conversation_id, seq, email, mail_message_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "(SELECT last_seq + 1 FROM conversations WHERE id = ?), ?, ?, ?)",
                [event.event_key, event.fingerprint, event.order_id, event.type,
                 json.dumps(event.body, default=str), event.customer_id, event.channel,
                 event.conversation_id, event.conversation_id, event.email,
                 event.mail_message_id, time.time()])

    def post(self, event: NewOrderEvent, frame: dict[str, Any],
             extra: list[Statement]) -> Change | None:
        """Store the event and its message in its conversation, with ``extra`` (webhook
        rows); None when an event with its key was stored first (a retry racing it)."""
        assert event.conversation_id is not None
        try:
            return self.store.apply(event.conversation_id, [frame],
                                    updates=[self._row(event), *extra])
        except sqlite3.IntegrityError:
            return None

    def record(self, event: NewOrderEvent, extra: list[Statement]) -> bool:
        """Store an event that goes to no conversation, with ``extra`` (its queued mail,
        webhook rows); False when an event with its key was stored first."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in [self._row(event), *extra]:
                    conn.execute(sql, params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            return False
        return True


def order_events_between(gateway_db: Path, start: float, end: float
                         ) -> list[tuple[str, str]]:
    """(type, channel) of every order event stored in [start, end), for the report."""
    return [(row[0], row[1]) for row in read_rows(
        gateway_db, "SELECT type, channel FROM order_events WHERE created_at >= ? "
                    "AND created_at < ?", [start, end])]
