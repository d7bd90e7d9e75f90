"""The handoff state machine, with no I/O: the states a handoff goes through and the moves
between them, each with its rule (who may make it, what the conversation's mode becomes).

    new ──enqueue──▶ queued ──assign──▶ assigned ──close──▶ closed ──rate (once)
     │                 │  ▲                │  │  └─hand_back──▶ returned
     └─unstaffed──▶ unstaffed      └─requeue──┘  └─transfer, reply (its agent only)
                       ├─leave──▶ left
                       ├─leave_message──▶ offline
                       └─offer_offline (once)

:mod:`handoff.db.desk` applies a move as one guarded transaction; a move whose
source state (or owner, or "once" column) no longer holds does nothing, which is how
two agents claiming one chat end with one winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
    "TRANSFER",
    "UNSTAFFED",
    "HandoffState",
    "Move",
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
TRANSFER = Move("transfer", HandoffState.ASSIGNED, HandoffState.ASSIGNED, owned=True)
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

#: Every move there is: the table of allowed transitions.
MOVES = (ENQUEUE, UNSTAFFED, ASSIGN, TRANSFER, REPLY, REQUEUE, CLOSE, HAND_BACK, LEAVE,
         LEAVE_FOR_MESSAGE, OFFER_OFFLINE, RATE)


def allowed(source: HandoffState, target: HandoffState) -> bool:
    """Whether any move leads from ``source`` to ``target``."""
    return any(m.source == source and m.target == target for m in MOVES)
