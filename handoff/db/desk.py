"""The desk's tables: handoffs (queue and assignments), offline tickets, notes.

Each state change is a :class:`~handoff.handoff_states.Step` that
:mod:`handoff.decisions` decided (a move of the state machine), applied by
:meth:`DeskStore.apply` as one :meth:`ConversationStore.apply` call: the row update,
the conversation's mode, the events that tell the shopper and the webhook rows that
tell the shop's systems all commit together, and the move's guard makes racing
changes (two agents claiming one chat) fail cleanly instead of both winning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from handoff.db.conversations import Change, ConversationStore, Statement, skip_all_pending
from handoff.handoff_states import Handoff, HandoffState, Move, Note, Step, Ticket
from handoff.routing import queue_order

__all__ = ["DeskStore"]

#: The handoff columns a move may set (every other column is written once, at creation).
_SETTABLE = frozenset({
    "state", "context", "priority", "agent_id", "assigned_at", "first_response_at",
    "offline_offered_at", "ended_at", "resolution", "csat_score", "csat_comment", "csat_at",
})
#: Columns a move sets only when they are still empty (the first reply stays the first).
_KEEP_FIRST = frozenset({"first_response_at"})


def _handoff(row: dict[str, Any]) -> Handoff:
    return Handoff(
        id=row["id"],
        conversation_id=row["conversation_id"],
        state=row["state"],
        trigger=row["trigger"],
        reason=row["reason"],
        priority=row["priority"],
        context=json.loads(row["context"]) if row["context"] else None,
        agent_id=row["agent_id"],
        queued_at=row["queued_at"],
        assigned_at=row["assigned_at"],
        first_response_at=row["first_response_at"],
        alerted_at=row["alerted_at"],
        offline_offered_at=row["offline_offered_at"],
        ended_at=row["ended_at"],
        resolution=row["resolution"],
        csat_score=row["csat_score"],
        lang=row["lang"] or "en",
    )


class DeskStore:
    """Queries and guarded state changes for the live-agent desk."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.db = store.db

    # -- reading --------------------------------------------------------

    def _handoffs(self, where: str, params: list[Any], order: str = "id") -> list[Handoff]:
        rows = self.db.query(
            "SELECT *, (SELECT lang FROM conversations c WHERE c.id = handoffs.conversation_id) "
            f"AS lang FROM handoffs WHERE {where} ORDER BY {order}", params)
        return [_handoff(row) for row in rows]

    def get(self, handoff_id: int) -> Handoff | None:
        found = self._handoffs("id = ?", [handoff_id])
        return found[0] if found else None

    def current(self, conversation_id: str) -> Handoff | None:
        """The conversation's latest handoff, whatever its state."""
        found = self._handoffs("conversation_id = ?", [conversation_id], "id DESC LIMIT 1")
        return found[0] if found else None

    def new(self) -> list[Handoff]:
        return self._handoffs("state = ?", [HandoffState.NEW.value])

    def queued(self) -> list[Handoff]:
        """Waiting chats, in the order they leave the queue."""
        return queue_order(self._handoffs("state = ?", [HandoffState.QUEUED.value]))

    def assigned(self, agent_id: str | None = None) -> list[Handoff]:
        if agent_id is None:
            return self._handoffs("state = ?", [HandoffState.ASSIGNED.value])
        return self._handoffs("state = ? AND agent_id = ?",
                              [HandoffState.ASSIGNED.value, agent_id], "assigned_at")

    def loads(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT agent_id, COUNT(*) FROM handoffs WHERE state = ? GROUP BY agent_id",
            [HandoffState.ASSIGNED.value],
        ).fetchall()
        return {agent_id: count for agent_id, count in rows}

    def handle_times(self, limit: int = 50) -> list[float]:
        """How long recent agent chats lasted, from assignment to the end."""
        rows = self.db.execute(
            "SELECT ended_at - assigned_at FROM handoffs WHERE state IN ('closed', 'returned') "
            "AND assigned_at IS NOT NULL ORDER BY ended_at DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [float(d) for (d,) in rows]

    def tickets(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Tickets, newest first; only those with ``status`` (open, done) if given."""
        sql, params = "SELECT * FROM tickets", []
        if status:
            sql, params = sql + " WHERE status = ?", [status]
        return list(self.db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]))

    def open_tickets(self) -> list[Ticket]:
        rows = self.db.query("SELECT * FROM tickets WHERE status = 'open' ORDER BY id")
        return [Ticket(**row) for row in rows]

    def notes(self, conversation_id: str) -> list[Note]:
        rows = self.db.query(
            "SELECT id, conversation_id, agent_id, agent_name, text, created_at FROM notes "
            "WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
        return [Note(**row) for row in rows]

    # -- changes ----------------------------------------------------------

    def move(
        self,
        handoff: Handoff,
        move: Move,
        frames: list[dict[str, Any]],
        *,
        agent_id: str | None = None,
        values: dict[str, Any] | None = None,
        client_id: str | None = None,
        outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """Make ``move`` on ``handoff``: set ``values`` (handoff columns), switch the
        conversation's mode, store ``frames`` and write ``outbox`` (webhook rows), all in
        one transaction, or nothing when the move's rule no longer holds (another agent
        was first; it is not ``agent_id``'s chat; a once-only move was made)."""
        if move.owned and agent_id is None:
            raise ValueError(f"{move.name} is only for the chat's agent: give agent_id")
        changes: dict[str, Any] = {"state": move.target.value, **(values or {})}
        if isinstance(changes.get("context"), dict):
            changes["context"] = json.dumps(changes["context"])
        if move.ends:
            changes.setdefault("ended_at", time.time())
        if unknown := set(changes) - _SETTABLE:
            raise ValueError(f"{move.name}: not handoff columns: {sorted(unknown)}")
        guard = "SELECT 1 FROM handoffs WHERE id = ? AND state = ?"
        params: list[Any] = [handoff.id, move.source.value]
        if move.owned:
            guard, params = guard + " AND agent_id = ?", [*params, agent_id]
        if move.once is not None:
            guard += f" AND {move.once} IS NULL"
        assignments = ", ".join(
            f"{column} = COALESCE({column}, ?)" if column in _KEEP_FIRST else f"{column} = ?"
            for column in changes
        )
        updates = [(f"UPDATE handoffs SET {assignments} WHERE id = ?",
                     [*changes.values(), handoff.id])]
        if move.ends:
            updates.append(skip_all_pending(handoff.conversation_id))
        return self.store.apply(
            handoff.conversation_id, frames, guard=(guard, params),
            updates=[*updates, *outbox], mode=move.mode, client_id=client_id,
        )

    def apply(self, step: Step, outbox: Sequence[Statement] = ()) -> Change | None:
        """Make a decided :class:`Step`; a message it carries becomes an open ticket."""
        extra = list(outbox)
        if step.message is not None:
            extra.insert(0, (
                "INSERT INTO tickets (conversation_id, handoff_id, email, message, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [step.handoff.conversation_id, step.handoff.id, step.message.email,
                 step.message.text, time.time()],
            ))
        return self.move(step.handoff, step.move, step.frames, agent_id=step.agent_id,
                         values=step.values, client_id=step.client_id, outbox=extra)

    def mark_alerted(self, handoff_id: int) -> None:
        self.db.execute(
            "UPDATE handoffs SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL",
            [time.time(), handoff_id],
        )

    def close_ticket(self, ticket_id: int) -> bool:
        cursor = self.db.execute(
            "UPDATE tickets SET status = 'done' WHERE id = ? AND status = 'open'", [ticket_id]
        )
        return bool(cursor.rowcount)

    def add_note(
        self, conversation_id: str, agent_id: str, agent_name: str, client_id: str, text: str
    ) -> tuple[Note, bool]:
        """Store an internal note once per ``client_id``."""
        existing = list(self.db.query(
            "SELECT id, conversation_id, agent_id, agent_name, text, created_at FROM notes "
            "WHERE conversation_id = ? AND client_id = ?",
            [conversation_id, client_id],
        ))
        if existing:
            return Note(**existing[0]), False
        now = time.time()
        cursor = self.db.execute(
            "INSERT INTO notes (conversation_id, agent_id, agent_name, client_id, text, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [conversation_id, agent_id, agent_name, client_id, text, now],
        )
        note_id = cursor.lastrowid
        assert note_id is not None
        return Note(note_id, conversation_id, agent_id, agent_name, text, now), True
