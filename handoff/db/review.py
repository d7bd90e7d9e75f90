"""Staff verdicts on review-inbox items (``review_verdicts``): what a message should have
been read as, ``new_faq``, or ``ignore``. The inbox itself is in :mod:`bot.review`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.readonly import read_rows
from handoff.db.schema import migrate

__all__ = ["delete_verdicts", "new_faq_texts", "save_verdicts", "verdicts", "verdicts_in_order"]


def save_verdicts(gateway_db: Path, texts: dict[str, str], verdict: str, decided_by: str
                  ) -> None:
    """Record ``verdict`` for each item (id → its text); a later verdict replaces one."""
    conn = sqlite3.connect(gateway_db)
    try:
        migrate(conn)
        with conn:
            for item_id, text in texts.items():
                conn.execute(
                    "INSERT INTO review_verdicts (item_id, text, verdict, decided_by, decided_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET "
                    "verdict = excluded.verdict, decided_by = excluded.decided_by, "
                    "decided_at = excluded.decided_at",
                    [item_id, text, verdict, decided_by, time.time()])
    finally:
        conn.close()


def delete_verdicts(gateway_db: Path, item_ids: list[str]) -> int:
    """Take these verdicts back; how many there were."""
    if not item_ids or not gateway_db.exists():
        return 0
    conn = sqlite3.connect(gateway_db)
    try:
        migrate(conn)
        with conn:
            marks = ",".join("?" * len(item_ids))
            cursor = conn.execute(f"DELETE FROM review_verdicts WHERE item_id IN ({marks})",
                                  item_ids)
        return cursor.rowcount
    finally:
        conn.close()


def verdicts(gateway_db: Path) -> dict[str, str]:
    """Item id → verdict (read-only; empty before any)."""
    return dict(read_rows(gateway_db, "SELECT item_id, verdict FROM review_verdicts", []))


def verdicts_in_order(gateway_db: Path) -> list[tuple[str, str]]:
    """(text, verdict), oldest decision first."""
    return [(text, verdict) for text, verdict in read_rows(
        gateway_db, "SELECT text, verdict FROM review_verdicts ORDER BY decided_at", [])]


def new_faq_texts(gateway_db: Path, since: float) -> list[str]:
    """Messages staff marked "new FAQ needed" since ``since``."""
    return [text for (text,) in read_rows(
        gateway_db, "SELECT text FROM review_verdicts WHERE verdict = 'new_faq' "
                    "AND decided_at >= ?", [since])]
