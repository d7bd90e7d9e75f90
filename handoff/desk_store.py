"""The desk's tables: handoffs (queue and assignments), offline tickets, notes.

Each state change is one :meth:`ConversationStore.apply` call: the row update,
the conversation's mode and the events that tell the shopper all commit
together, and a guard makes racing changes (two agents claiming one chat)
fail cleanly instead of both winning.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from handoff.persistence import (
    AGENT,
    BOT,
    QUEUED,
    Change,
    ConversationStore,
    skip_all_pending,
)
from handoff.routing import queue_order

__all__ = ["DeskStore", "Handoff", "Note", "Ticket"]

#: Handoff states in which a person is (or will be) responsible for the chat.
OPEN_STATES = ("new", "queued", "assigned")


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
        return self._handoffs("state = 'new'", [])

    def queued(self) -> list[Handoff]:
        """Waiting chats, in the order they leave the queue."""
        return queue_order(self._handoffs("state = 'queued'", []))

    def assigned(self, agent_id: str | None = None) -> list[Handoff]:
        if agent_id is None:
            return self._handoffs("state = 'assigned'", [])
        return self._handoffs("state = 'assigned' AND agent_id = ?", [agent_id], "assigned_at")

    def loads(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT agent_id, COUNT(*) FROM handoffs WHERE state = 'assigned' GROUP BY agent_id"
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

    def _guard(
        self, handoff_id: int, state: str, agent_id: str | None = None
    ) -> tuple[str, list[Any]]:
        if agent_id is None:
            return "SELECT 1 FROM handoffs WHERE id = ? AND state = ?", [handoff_id, state]
        return (
            "SELECT 1 FROM handoffs WHERE id = ? AND state = ? AND agent_id = ?",
            [handoff_id, state, agent_id],
        )

    def enqueue(
        self, handoff: Handoff, context: dict[str, Any], priority: int, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``new`` → ``queued``: the context is built, agents may take the chat."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "new"),
            updates=[(
                "UPDATE handoffs SET state = 'queued', context = ?, priority = ? WHERE id = ?",
                [json.dumps(context), priority, handoff.id],
            )],
            mode=QUEUED,
        )

    def unstaffed(
        self, handoff: Handoff, context: dict[str, Any], priority: int, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``new`` → ``unstaffed``: nobody is online; the bot stays with the shopper."""
        now = time.time()
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "new"),
            updates=[(
                "UPDATE handoffs SET state = 'unstaffed', context = ?, priority = ?, "
                "offline_offered_at = ?, ended_at = ? WHERE id = ?",
                [json.dumps(context), priority, now, now, handoff.id],
            )],
            mode=BOT,
        )

    def assign(
        self, handoff: Handoff, agent_id: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``queued`` → ``assigned`` to ``agent_id``; fails if someone else got it first."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "queued"),
            updates=[(
                "UPDATE handoffs SET state = 'assigned', agent_id = ?, assigned_at = ? "
                "WHERE id = ?",
                [agent_id, time.time(), handoff.id],
            )],
            mode=AGENT,
        )

    def transfer(
        self, handoff: Handoff, from_agent: str, to_agent: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "assigned", from_agent),
            updates=[("UPDATE handoffs SET agent_id = ? WHERE id = ?", [to_agent, handoff.id])],
        )

    def requeue(
        self, handoff: Handoff, agent_id: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``assigned`` → ``queued`` again, keeping the chat's place: its agent went away."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "assigned", agent_id),
            updates=[(
                "UPDATE handoffs SET state = 'queued', agent_id = NULL, assigned_at = NULL "
                "WHERE id = ?",
                [handoff.id],
            )],
            mode=QUEUED,
        )

    def end(
        self,
        handoff: Handoff,
        agent_id: str,
        state: str,
        resolution: str | None,
        frames: list[dict[str, Any]],
    ) -> Change | None:
        """``assigned`` → ``closed`` or ``returned``: the bot has the chat again,
        starting from the shopper's next message (nothing left pending is its)."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=self._guard(handoff.id, "assigned", agent_id),
            updates=[(
                "UPDATE handoffs SET state = ?, resolution = ?, ended_at = ? WHERE id = ?",
                [state, resolution, time.time(), handoff.id],
            ), skip_all_pending(handoff.conversation_id)],
            mode=BOT,
        )

    def leave(
        self, handoff: Handoff, client_id: str, frames: list[dict[str, Any]]
    ) -> Change | None:
        """``queued`` → ``left``: the shopper stopped waiting (what they typed
        meanwhile was for a person, so nothing pending goes to the bot)."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            client_id=client_id,
            guard=self._guard(handoff.id, "queued"),
            updates=[(
                "UPDATE handoffs SET state = 'left', ended_at = ? WHERE id = ?",
                [time.time(), handoff.id],
            ), skip_all_pending(handoff.conversation_id)],
            mode=BOT,
        )

    def offer_offline(self, handoff: Handoff, frames: list[dict[str, Any]]) -> Change | None:
        """Tell a queued shopper they may leave a message instead (once per handoff)."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            guard=(
                "SELECT 1 FROM handoffs WHERE id = ? AND state = 'queued' "
                "AND offline_offered_at IS NULL",
                [handoff.id],
            ),
            updates=[(
                "UPDATE handoffs SET offline_offered_at = ? WHERE id = ?",
                [time.time(), handoff.id],
            )],
        )

    def mark_alerted(self, handoff_id: int) -> None:
        self.db.execute(
            "UPDATE handoffs SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL",
            [time.time(), handoff_id],
        )

    def agent_reply(
        self, handoff: Handoff, agent_id: str, client_id: str, frame: dict[str, Any]
    ) -> Change | None:
        """An agent's message to the shopper, once per ``client_id``, only from the chat's owner."""
        return self.store.apply(
            handoff.conversation_id,
            [frame],
            client_id=client_id,
            guard=self._guard(handoff.id, "assigned", agent_id),
            updates=[(
                "UPDATE handoffs SET first_response_at = COALESCE(first_response_at, ?) "
                "WHERE id = ?",
                [time.time(), handoff.id],
            )],
        )

    def leave_message(
        self,
        conversation_id: str,
        handoff: Handoff | None,
        client_id: str,
        email: str,
        message: str,
        frames: list[dict[str, Any]],
    ) -> Change | None:
        """Store an offline ticket; a shopper still in the queue leaves it."""
        now = time.time()
        updates: list[tuple[str, list[Any]]] = [(
            "INSERT INTO tickets (conversation_id, handoff_id, email, message, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [conversation_id, handoff.id if handoff else None, email, message, now],
        )]
        leaving = handoff is not None and handoff.state == "queued"
        if leaving:
            assert handoff is not None
            updates += [(
                "UPDATE handoffs SET state = 'offline', ended_at = ? WHERE id = ? "
                "AND state = 'queued'",
                [now, handoff.id],
            ), skip_all_pending(conversation_id)]
        return self.store.apply(
            conversation_id, frames, client_id=client_id, updates=updates,
            mode=BOT if leaving else None,
        )

    def rate(
        self,
        handoff: Handoff,
        client_id: str,
        score: int,
        comment: str | None,
        frames: list[dict[str, Any]],
    ) -> Change | None:
        """Store the shopper's CSAT for a closed chat, once."""
        return self.store.apply(
            handoff.conversation_id,
            frames,
            client_id=client_id,
            guard=(
                "SELECT 1 FROM handoffs WHERE id = ? AND state = 'closed' AND csat_score IS NULL",
                [handoff.id],
            ),
            updates=[(
                "UPDATE handoffs SET csat_score = ?, csat_comment = ?, csat_at = ? WHERE id = ?",
                [score, comment, time.time(), handoff.id],
            )],
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
