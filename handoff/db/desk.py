"""The desk's tables: handoffs (queue and assignments), offline tickets, notes.

Each state change is a move of :mod:`handoff.handoff_states`, applied by
:meth:`DeskStore.move` as one :meth:`ConversationStore.apply` call: the row update,
the conversation's mode, the events that tell the shopper and the webhook rows that
tell the shop's systems all commit together, and the move's guard makes racing
changes (two agents claiming one chat) fail cleanly instead of both winning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handoff.db.conversations import Change, ConversationStore, Statement, skip_all_pending
from handoff.handoff_states import (
    ASSIGN,
    CLOSE,
    ENQUEUE,
    HAND_BACK,
    LEAVE,
    LEAVE_FOR_MESSAGE,
    OFFER_OFFLINE,
    RATE,
    REPLY,
    REQUEUE,
    TRANSFER,
    UNSTAFFED,
    HandoffState,
    Move,
)
from handoff.routing import queue_order

__all__ = ["DeskStore", "Handoff", "Note", "Ticket"]

#: The handoff columns a move may set (every other column is written once, at creation).
_SETTABLE = frozenset({
    "state", "context", "priority", "agent_id", "assigned_at", "first_response_at",
    "offline_offered_at", "ended_at", "resolution", "csat_score", "csat_comment", "csat_at",
})
#: Columns a move sets only when they are still empty (the first reply stays the first).
_KEEP_FIRST = frozenset({"first_response_at"})


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    state: str
    trigger: str
    reason: str
    priority: int
    context: dict[str, Any] | None
    agent_id: str | None
    queued_at: float
    assigned_at: float | None
    first_response_at: float | None
    alerted_at: float | None
    offline_offered_at: float | None
    ended_at: float | None
    resolution: str | None
    csat_score: int | None

    def summary(self) -> dict[str, Any]:
        """What the queue list and the agent's chat list show."""
        context = self.context or {}
        return {
            "handoff_id": self.id,
            "conversation_id": self.conversation_id,
            "state": self.state,
            "reason": self.reason,
            "trigger": self.trigger,
            "priority": self.priority,
            "queued_at": self.queued_at,
            "assigned_at": self.assigned_at,
            "agent_id": self.agent_id,
            "shopper": (context.get("shopper") or {}).get("name"),
            "page_type": (context.get("page") or {}).get("type"),
            "alerted": self.alerted_at is not None,
        }


@dataclass(frozen=True)
class Ticket:
    id: int
    conversation_id: str
    handoff_id: int | None
    email: str
    message: str
    status: str
    created_at: float


@dataclass(frozen=True)
class Note:
    id: int
    conversation_id: str
    agent_id: str
    agent_name: str
    text: str
    created_at: float

    def frame(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": {"id": self.agent_id, "name": self.agent_name},
            "text": self.text,
            "ts": round(self.created_at, 3),
        }


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
    )


class DeskStore:
    """Queries and guarded state changes for the live-agent desk."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.db = store.db

    # -- reading --------------------------------------------------------

    def _handoffs(self, where: str, params: list[Any], order: str = "id") -> list[Handoff]:
        rows = self.db.query(f"SELECT * FROM handoffs WHERE {where} ORDER BY {order}", params)
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

    def enqueue(
        self, handoff: Handoff, context: dict[str, Any], priority: int,
        frames: list[dict[str, Any]], outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """``new`` → ``queued``: the context is built, agents may take the chat."""
        return self.move(handoff, ENQUEUE, frames, outbox=outbox,
                         values={"context": json.dumps(context), "priority": priority})

    def unstaffed(
        self, handoff: Handoff, context: dict[str, Any], priority: int,
        frames: list[dict[str, Any]], outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """``new`` → ``unstaffed``: nobody is online; the bot stays with the shopper."""
        now = time.time()
        return self.move(handoff, UNSTAFFED, frames, outbox=outbox, values={
            "context": json.dumps(context), "priority": priority,
            "offline_offered_at": now, "ended_at": now,
        })

    def assign(
        self, handoff: Handoff, agent_id: str, frames: list[dict[str, Any]],
        outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """``queued`` → ``assigned`` to ``agent_id``; fails if someone else got it first."""
        return self.move(handoff, ASSIGN, frames, outbox=outbox,
                         values={"agent_id": agent_id, "assigned_at": time.time()})

    def transfer(
        self, handoff: Handoff, from_agent: str, to_agent: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        return self.move(handoff, TRANSFER, frames, agent_id=from_agent,
                         values={"agent_id": to_agent})

    def requeue(
        self, handoff: Handoff, agent_id: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``assigned`` → ``queued`` again, keeping the chat's place: its agent went away."""
        return self.move(handoff, REQUEUE, frames, agent_id=agent_id,
                         values={"agent_id": None, "assigned_at": None})

    def end(
        self,
        handoff: Handoff,
        agent_id: str,
        state: str,
        resolution: str | None,
        frames: list[dict[str, Any]],
        outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """``assigned`` → ``closed`` or ``returned``: the bot has the chat again,
        starting from the shopper's next message (nothing left pending is its)."""
        move = CLOSE if state == HandoffState.CLOSED else HAND_BACK
        return self.move(handoff, move, frames, agent_id=agent_id, outbox=outbox,
                         values={"resolution": resolution})

    def leave(
        self, handoff: Handoff, client_id: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``queued`` → ``left``: the shopper stopped waiting."""
        return self.move(handoff, LEAVE, frames, client_id=client_id)

    def offer_offline(self, handoff: Handoff, frames: list[dict[str, Any]]) -> Change | None:
        """Tell a queued shopper they may leave a message instead (once per handoff)."""
        return self.move(handoff, OFFER_OFFLINE, frames,
                         values={"offline_offered_at": time.time()})

    def mark_alerted(self, handoff_id: int) -> None:
        self.db.execute(
            "UPDATE handoffs SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL",
            [time.time(), handoff_id],
        )

    def agent_reply(
        self, handoff: Handoff, agent_id: str, client_id: str, frame: dict[str, Any]
    ) -> Change | None:
        """An agent's message to the shopper, once per ``client_id``, only from the chat's owner."""
        return self.move(handoff, REPLY, [frame], agent_id=agent_id, client_id=client_id,
                         values={"first_response_at": time.time()})

    def leave_message(
        self,
        conversation_id: str,
        handoff: Handoff | None,
        client_id: str,
        email: str,
        message: str,
        frames: list[dict[str, Any]],
        outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """Store an offline ticket; a shopper still in the queue leaves it (``offline``)."""
        ticket = (
            "INSERT INTO tickets (conversation_id, handoff_id, email, message, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [conversation_id, handoff.id if handoff else None, email, message, time.time()],
        )
        if handoff is not None and handoff.state == HandoffState.QUEUED:
            return self.move(handoff, LEAVE_FOR_MESSAGE, frames, client_id=client_id,
                             outbox=[ticket, *outbox])
        return self.store.apply(conversation_id, frames, client_id=client_id,
                                updates=[ticket, *outbox])

    def rate(
        self,
        handoff: Handoff,
        client_id: str,
        score: int,
        comment: str | None,
        frames: list[dict[str, Any]],
        outbox: Sequence[Statement] = (),
    ) -> Change | None:
        """Store the shopper's CSAT for a closed chat, once."""
        return self.move(handoff, RATE, frames, client_id=client_id, outbox=outbox, values={
            "csat_score": score, "csat_comment": comment, "csat_at": time.time()})

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
