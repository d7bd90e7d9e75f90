"""The webhook outbox (``webhook_outbox``): events waiting to be delivered, one row per
receiving URL, written in the transaction of the change they announce."""

from __future__ import annotations

import time
from typing import Any

from handoff.db.conversations import ConversationStore, Statement

__all__ = ["Outbox"]

#: Rows neither delivered nor given up.
_WAITING = "delivered_at IS NULL AND failed_at IS NULL"


class Outbox:
    def __init__(self, store: ConversationStore) -> None:
        self.db = store.db

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

    def due(self, now: float) -> list[dict[str, Any]]:
        return list(self.db.query(
            f"SELECT * FROM webhook_outbox WHERE {_WAITING} AND next_at <= ? ORDER BY id",
            [now]))

    def next_due(self) -> float | None:
        """When the next waiting row is due; None when none waits."""
        (due,) = self.db.execute(
            f"SELECT min(next_at) FROM webhook_outbox WHERE {_WAITING}").fetchone()
        return float(due) if due is not None else None

    def delivered(self, row_id: int) -> None:
        self.db.execute("UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1 "
                        "WHERE id = ?", [time.time(), row_id])

    def failed(self, row_id: int, attempts: int, error: str | None) -> None:
        """Given up after ``attempts``."""
        self.db.execute("UPDATE webhook_outbox SET attempts = ?, failed_at = ?, last_error = ? "
                        "WHERE id = ?", [attempts, time.time(), error, row_id])

    def retry_at(self, row_id: int, attempts: int, when: float, error: str | None) -> None:
        self.db.execute("UPDATE webhook_outbox SET attempts = ?, next_at = ?, last_error = ? "
                        "WHERE id = ?", [attempts, when, error, row_id])
