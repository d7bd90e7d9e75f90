"""The handoff state machine, with no I/O: the states a handoff goes through and the moves
between them, each with its rule (who may make it, what the conversation's mode becomes),
the records a handoff leaves, and :class:`Step`, the change a decision of
:mod:`handoff.decisions` asks storage to make.

    new ──enqueue──▶ queued ──assign──▶ assigned ──close──▶ closed ──rate (once)
     │                 │  ▲                │  │  └─hand_back──▶ returned
     └─unstaffed──▶ unstaffed      └─requeue──┘  └─transfer, reply (its agent only)
                       ├─leave──▶ left       └─take_message (any number)
                       ├─leave_message──▶ offline
                       └─offer_offline (once)

:mod:`handoff.db.desk` applies a move as one guarded transaction; a move whose
source state (or owner, or "once" column) no longer holds does nothing, which is how
two agents claiming one chat end with one winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ASSIGN",
    "CLOSE",
    "ENQUEUE",
    "HAND_BACK",
    "LEAVE",
    "LEAVE_FOR_MESSAGE",
    "MOVES",
    "OFFER_OFFLINE",
    "OPEN_STATES",
    "RATE",
    "REPLY",
    "REQUEUE",
    "TAKE_MESSAGE",
    "TRANSFER",
    "UNSTAFFED",
    "Handoff",
    "HandoffState",
    "Move",
    "Note",
    "OfflineMessage",
    "Step",
    "Ticket",
    "Webhook",
    "allowed",
]


class HandoffState(StrEnum):
    NEW = "new"  # the bot asked for a person; the agent's context is being built
    QUEUED = "queued"  # waiting for an agent
    ASSIGNED = "assigned"  # an agent has the chat
    UNSTAFFED = "unstaffed"  # nobody was online: the bot kept the chat, a message may be left
    CLOSED = "closed"  # the agent closed the chat (it may be rated)
    RETURNED = "returned"  # the agent handed the chat back to the bot
    LEFT = "left"  # the shopper stopped waiting
    OFFLINE = "offline"  # the shopper left a message instead of waiting


#: States in which a person is, or will be, responsible for the chat.
OPEN_STATES = frozenset({HandoffState.NEW, HandoffState.QUEUED, HandoffState.ASSIGNED})


@dataclass(frozen=True)
class Move:
    """One edge of the state machine and the rule that comes with it."""

    name: str
    source: HandoffState
    target: HandoffState
    #: The conversation's mode afterwards (``bot``, ``queued``, ``agent``), if it changes.
    mode: str | None = None
    #: Only the agent the chat is assigned to may make it.
    owned: bool = False
    #: A column that must still be empty: the move happens once per handoff.
    once: str | None = None
    #: The bot has the chat again: the handoff ends (``ended_at``), and what the shopper
    #: sent meanwhile was for a person, so none of it is left pending for the bot.
    ends: bool = False


ENQUEUE = Move("enqueue", HandoffState.NEW, HandoffState.QUEUED, mode="queued")
UNSTAFFED = Move("unstaffed", HandoffState.NEW, HandoffState.UNSTAFFED, mode="bot")
ASSIGN = Move("assign", HandoffState.QUEUED, HandoffState.ASSIGNED, mode="agent")
TRANSFER = Move("transfer", HandoffState.ASSIGNED, HandoffState.ASSIGNED, mode="agent",
                owned=True)
REPLY = Move("reply", HandoffState.ASSIGNED, HandoffState.ASSIGNED, owned=True)
REQUEUE = Move("requeue", HandoffState.ASSIGNED, HandoffState.QUEUED, mode="queued",
               owned=True)
CLOSE = Move("close", HandoffState.ASSIGNED, HandoffState.CLOSED, mode="bot", owned=True,
             ends=True)
HAND_BACK = Move("hand_back", HandoffState.ASSIGNED, HandoffState.RETURNED, mode="bot",
                 owned=True, ends=True)
LEAVE = Move("leave", HandoffState.QUEUED, HandoffState.LEFT, mode="bot", ends=True)
LEAVE_FOR_MESSAGE = Move("leave_message", HandoffState.QUEUED, HandoffState.OFFLINE,
                         mode="bot", ends=True)
OFFER_OFFLINE = Move("offer_offline", HandoffState.QUEUED, HandoffState.QUEUED,
                     once="offline_offered_at")
RATE = Move("rate", HandoffState.CLOSED, HandoffState.CLOSED, once="csat_score")
#: A shopper nobody could serve leaves a message (the bot keeps the chat).
TAKE_MESSAGE = Move("take_message", HandoffState.UNSTAFFED, HandoffState.UNSTAFFED)

#: Every move there is: the table of allowed transitions.
MOVES = (ENQUEUE, UNSTAFFED, ASSIGN, TRANSFER, REPLY, REQUEUE, CLOSE, HAND_BACK, LEAVE,
         LEAVE_FOR_MESSAGE, OFFER_OFFLINE, RATE, TAKE_MESSAGE)


def allowed(source: HandoffState, target: HandoffState) -> bool:
    """Whether any move leads from ``source`` to ``target``."""
    return any(m.source == source and m.target == target for m in MOVES)


@dataclass(frozen=True)
class Handoff:
    """One request for a person, from the bot's turn that made it to the shopper's rating."""

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
    #: The conversation's language (what the gateway says to the shopper is in it).
    lang: str = "en"

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
            "lang": self.lang,
            "alerted": self.alerted_at is not None,
        }


@dataclass(frozen=True)
class Ticket:
    """A message left for the team when nobody could take the chat."""

    id: int
    conversation_id: str
    handoff_id: int | None
    email: str
    message: str
    status: str
    created_at: float


@dataclass(frozen=True)
class Note:
    """An agent's internal note on a conversation (never shown to the shopper)."""

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


@dataclass(frozen=True)
class Webhook:
    """An event for the shop's systems (``conversation.assigned`` …) and its data."""

    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class OfflineMessage:
    """What a shopper left for the team: stored as a ticket with the move."""

    email: str
    text: str


@dataclass(frozen=True)
class Step:
    """A decided change to one handoff, for storage to make in one transaction or not at
    all: the move, the handoff columns it sets, the frames the shopper is told (stored
    events), what the shop's systems hear, and the ticket a message leaves."""

    handoff: Handoff
    move: Move
    frames: list[dict[str, Any]]
    #: The agent making an owned move (the guard checks the chat is still theirs).
    agent_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    #: The client frame this answers: a resent frame gets the first answer back.
    client_id: str | None = None
    webhook: Webhook | None = None
    message: OfflineMessage | None = None
