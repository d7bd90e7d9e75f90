"""Read-only questions other code asks of the gateway database (the support figures, the
review inbox), each on a connection of its own opened read-only: safe from a worker
thread or a CLI process while the gateway runs, and empty before the gateway ever has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.readonly import read_rows

__all__ = [
    "conversation_languages", "conversations_with_messages", "handoffs_between", "queued_since",
    "tickets_between",
]


def conversations_with_messages(gateway_db: Path, start: float, end: float
                                ) -> dict[str, float]:
    """Conversation id → creation time, for those begun in [start, end) with a message."""
    return {row[0]: row[1] for row in read_rows(
        gateway_db,
        "SELECT c.id, c.created_at FROM conversations c WHERE c.created_at >= ? "
        "AND c.created_at < ? AND EXISTS (SELECT 1 FROM client_messages m "
        "WHERE m.conversation_id = c.id)", [start, end])}


def conversation_languages(gateway_db: Path, start: float, end: float) -> dict[str, str]:
    """Conversation id → language, for those begun in [start, end)."""
    return {row[0]: row[1] for row in read_rows(
        gateway_db, "SELECT id, lang FROM conversations WHERE created_at >= ? "
        "AND created_at < ?", [start, end])}


def handoffs_between(gateway_db: Path, start: float, end: float) -> list[tuple[Any, ...]]:
    """Handoffs queued in [start, end): conversation, trigger, queued, assigned, first
    response, resolution, CSAT score, the agent's name (or id), ended."""
    return read_rows(
        gateway_db,
        "SELECT h.conversation_id, h.trigger, h.queued_at, h.assigned_at, h.first_response_at, "
        "h.resolution, h.csat_score, coalesce(a.name, h.agent_id), h.ended_at "
        "FROM handoffs h LEFT JOIN agents a ON a.id = h.agent_id "
        "WHERE h.queued_at >= ? AND h.queued_at < ?", [start, end])


def tickets_between(gateway_db: Path, start: float, end: float) -> int:
    rows = read_rows(gateway_db, "SELECT count(*) FROM tickets WHERE created_at >= ? "
                                 "AND created_at < ?", [start, end])
    return int(rows[0][0]) if rows else 0


def queued_since(gateway_db: Path, since: float) -> list[tuple[str, float]]:
    """(conversation id, queued at) of every handoff queued since ``since``."""
    return [(cid, at) for cid, at in read_rows(
        gateway_db, "SELECT conversation_id, queued_at FROM handoffs WHERE queued_at >= ?",
        [since])]
