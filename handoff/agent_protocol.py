"""Frames an agent's console sends on ``/ws/agent`` (docs/protocol.md, "Agent socket").

Validation only, no I/O, like :mod:`handoff.protocol` whose helpers it uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, StringConstraints, TypeAdapter

from handoff.handoff_states import Handoff, Ticket
from handoff.protocol import (
    ClientId,
    ConversationId,
    RowId,
    Seq,
    _Frame,
    check_text,
    parse_frame,
)

__all__ = [
    "RESOLUTIONS",
    "AgentFrame",
    "Auth",
    "Claim",
    "Close",
    "Handback",
    "Open",
    "Presence",
    "Reply",
    "TicketDone",
    "TicketReply",
    "Transfer",
    "Typing",
    "agent_welcome_frame",
    "alert_frame",
    "assigned_frame",
    "console_state",
    "event_frame",
    "note_frame",
    "opened_frame",
    "parse_agent_frame",
    "reply_ack_frame",
    "state_frame",
    "unassigned_frame",
]

#: How an agent may close a chat (the console offers these; analytics counts them).
Resolution = Literal["resolved", "follow_up", "not_resolved", "spam"]
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)


class Auth(_Frame):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Presence(_Frame):
    type: Literal["presence"]
    status: Literal["online", "away"]


class Open(_Frame):
    """Follow a conversation: replay its events after ``last_seq``, then live."""

    type: Literal["open"]
    conversation_id: ConversationId
    last_seq: Seq = 0


class Unwatch(_Frame):
    type: Literal["unwatch"]
    conversation_id: ConversationId


class Claim(_Frame):
    type: Literal["claim"]
    conversation_id: ConversationId


class Reply(_Frame):
    """A message to the shopper (``message``) or an internal note (``note``)."""

    type: Literal["message", "note"]
    conversation_id: ConversationId
    client_id: ClientId
    text: str


class Typing(_Frame):
    type: Literal["typing"]
    conversation_id: ConversationId
    on: bool


class Transfer(_Frame):
    type: Literal["transfer"]
    conversation_id: ConversationId
    agent_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Handback(_Frame):
    type: Literal["handback"]
    conversation_id: ConversationId


class Close(_Frame):
    type: Literal["close"]
    conversation_id: ConversationId
    resolution: Resolution


class TicketDone(_Frame):
    type: Literal["ticket_done"]
    ticket_id: RowId


class TicketReply(_Frame):
    """An answer to an offline message, stored in its conversation and sent by mail."""

    type: Literal["ticket_reply"]
    ticket_id: RowId
    client_id: ClientId
    text: str


class AgentPing(_Frame):
    type: Literal["ping"]


AgentFrame = (
    Auth | Presence | Open | Unwatch | Claim | Reply | Typing | Transfer | Handback | Close
    | TicketDone | TicketReply | AgentPing
)
_adapter: TypeAdapter[AgentFrame] = TypeAdapter(
    Annotated[AgentFrame, Field(discriminator="type")]
)
_KNOWN = (
    "auth", "presence", "open", "unwatch", "claim", "message", "note", "typing", "transfer",
    "handback", "close", "ticket_done", "ticket_reply", "ping",
)


# -- frames the server sends an agent (docs/protocol.md, "Server → agent") ------------


def agent_welcome_frame(agent: dict[str, Any], presence: str, canned: list[dict[str, Any]],
                        expires_at: float) -> dict[str, Any]:
    """The first frame after a good ``auth``: who the agent is and what the console offers."""
    return {"type": "welcome", "agent": agent, "presence": presence,
            "resolutions": list(RESOLUTIONS), "canned": canned, "expires_at": expires_at}


def console_state(
    queued: Sequence[Handoff], limit: int, loads: Mapping[str, int],
    agents: Sequence[tuple[dict[str, Any], str]], tickets: Sequence[Ticket], now: float,
    mail: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What every console shows alike: the first ``limit`` queued chats (in queue order)
    with their place and wait so far, the queue's length, every agent with presence and
    load, the open tickets, and the mail not delivered yet (``pending``) or given up
    (``failed``)."""
    queue = [{**handoff.summary(), "position": position,
              "waited": round(now - handoff.queued_at, 1)}
             for position, handoff in enumerate(queued[:limit], start=1)]
    return {
        "queue": queue,
        "queue_total": len(queued),
        "agents": [{**info, "presence": presence, "load": loads.get(info["id"], 0)}
                   for info, presence in agents],
        "tickets": [{"id": t.id, "conversation_id": t.conversation_id, "email": t.email,
                     "message": t.message, "created_at": t.created_at} for t in tickets],
        "mail": [{"id": m["id"], "kind": m["kind"], "ticket_id": m["ticket_id"],
                  "conversation_id": m["conversation_id"], "to": m["recipient"],
                  "subject": m["subject"], "attempts": m["attempts"],
                  "status": "failed" if m["failed_at"] is not None else "pending",
                  "next_at": m["next_at"], "error": m["last_error"]} for m in mail],
    }


def state_frame(shared: dict[str, Any], presence: str, chats: list[dict[str, Any]]
                ) -> dict[str, Any]:
    """The desk as this agent sees it: the queue, agents and tickets (``shared``), their
    presence and their chats."""
    return {"type": "state", **shared, "presence": presence, "chats": chats}


def opened_frame(conversation_id: str, mode: str, last_seq: int, handoff: dict[str, Any] | None,
                 context: dict[str, Any] | None, notes: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to ``open``, before the conversation's events follow."""
    return {"type": "opened", "conversation_id": conversation_id, "mode": mode,
            "last_seq": last_seq, "handoff": handoff, "context": context, "notes": notes}


def event_frame(conversation_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """One of a followed conversation's events, wrapped with the conversation's id."""
    return {"type": "event", "conversation_id": conversation_id, "event": event}


def assigned_frame(conversation_id: str, handoff: dict[str, Any],
                   context: dict[str, Any] | None) -> dict[str, Any]:
    """A chat is the agent's now: its summary and the context packet."""
    return {"type": "assigned", "conversation_id": conversation_id, "handoff": handoff,
            "context": context}


def unassigned_frame(conversation_id: str, reason: str) -> dict[str, Any]:
    """A chat is not the agent's any more: ``taken`` (by someone else), ``transferred``,
    ``closed`` or ``returned``."""
    return {"type": "unassigned", "conversation_id": conversation_id, "reason": reason}


def alert_frame(kind: str, conversation_id: str, handoff_id: int | None, text: str
                ) -> dict[str, Any]:
    """Every signed-in agent is told (``handoff_id`` is null for a ticket opened by mail)."""
    return {"type": "alert", "kind": kind, "conversation_id": conversation_id,
            "handoff_id": handoff_id, "text": text}


def note_frame(note: dict[str, Any]) -> dict[str, Any]:
    return {"type": "note", "note": note}


def reply_ack_frame(conversation_id: str, client_id: str, duplicate: bool, *,
                    seq: int | None = None, note_id: int | None = None) -> dict[str, Any]:
    """An agent's message (its ``seq``) or note (its ``note_id``) is stored."""
    frame: dict[str, Any] = {"type": "ack", "conversation_id": conversation_id,
                             "client_id": client_id}
    if seq is not None:
        frame["seq"] = seq
    if note_id is not None:
        frame["note_id"] = note_id
    frame["duplicate"] = duplicate
    return frame


def parse_agent_frame(raw: str | bytes) -> AgentFrame:
    """Validate one frame from an agent's socket, or raise ``ProtocolError``."""
    frame: AgentFrame = parse_frame(raw, _adapter, _KNOWN)
    if isinstance(frame, Reply | TicketReply):
        check_text(frame.text, frame.client_id)
    return frame
