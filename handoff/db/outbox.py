"""Delivery queues: rows written in the transaction of the change they announce and worked
through by a retrying sender (:mod:`handoff.delivery`). :class:`DeliveryQueue` holds what
every such table shares (due rows, delivered, retried, given up); :class:`Outbox` is the
webhook outbox (``webhook_outbox``, one row per receiving URL), and
:class:`handoff.db.mail.MailOutbox` the mail queue."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from handoff.db.conversations import ConversationStore, Statement

__all__ = ["DeliveryQueue", "Outbox"]

#: Rows neither delivered nor given up.
_WAITING = "delivered_at IS NULL AND failed_at IS NULL"


class DeliveryQueue:
    """A table of rows to deliver with ``attempts``, ``next_at``, ``delivered_at``,
    ``failed_at`` and ``last_error`` columns."""

    #: The table (a constant of each subclass, never user input).
    table: ClassVar[str]

    def __init__(self, store: ConversationStore) -> None:
        self.db = store.db

    def due(self, now: float) -> list[dict[str, Any]]:
        return list(self.db.query(
            f"SELECT * FROM {self.table} WHERE {_WAITING} AND next_at <= ? ORDER BY id",
            [now]))

    def next_due(self) -> float | None:
        """When the next waiting row is due; None when none waits."""
        (due,) = self.db.execute(
            f"SELECT min(next_at) FROM {self.table} WHERE {_WAITING}").fetchone()
        return float(due) if due is not None else None

    def claim(self, row: dict[str, Any], until: float) -> bool:
        """Take a due row for one try: its next try moves to ``until`` unless another
        sender (another gateway process on the same database) took it first. A sender
        that dies mid-try leaves the row to be tried again after ``until``."""
        cursor = self.db.execute(
            f"UPDATE {self.table} SET next_at = ? WHERE id = ? AND next_at = ? AND {_WAITING}",
            [until, row["id"], row["next_at"]])
        return bool(cursor.rowcount)

    def delivered(self, row_id: int) -> None:
        self.db.execute(f"UPDATE {self.table} SET delivered_at = ?, attempts = attempts + 1 "
                        "WHERE id = ?", [time.time(), row_id])

    def failed(self, row_id: int, attempts: int, error: str | None) -> None:
        """Given up after ``attempts``."""
        self.db.execute(f"UPDATE {self.table} SET attempts = ?, failed_at = ?, last_error = ? "
                        "WHERE id = ?", [attempts, time.time(), error, row_id])

    def retry_at(self, row_id: int, attempts: int, when: float, error: str | None) -> None:
        self.db.execute(f"UPDATE {self.table} SET attempts = ?, next_at = ?, last_error = ? "
                        "WHERE id = ?", [attempts, when, error, row_id])


class Outbox(DeliveryQueue):
    """The webhook outbox: events waiting to be delivered, one row per receiving URL."""

    table = "webhook_outbox"

    @staticmethod
    def rows(delivery_id: str, event: str, body: str, urls: list[str]
             ) -> list[Statement]:
        """The statements that queue one event for every URL, to run in a change's
        transaction (:meth:`ConversationStore.apply`'s ``updates``)."""
        return [("INSERT INTO webhook_outbox (delivery_id, url, event, body, next_at) "
                 "VALUES (?, ?, ?, ?, ?)", [delivery_id, url, event, body, time.time()])
                for url in urls]

    def add(self, rows: list[Statement]) -> None:
        """Queue rows on their own (not part of a change)."""
        for sql, params in rows:
            self.db.execute(sql, params)
