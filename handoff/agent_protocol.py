"""Frames an agent's console sends on ``/ws/agent`` (docs/protocol.md, "Agent socket").

Validation only, no I/O, like :mod:`handoff.protocol` whose helpers it uses.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints, TypeAdapter

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
    "Transfer",
    "Typing",
    "parse_agent_frame",
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


class AgentPing(_Frame):
    type: Literal["ping"]


AgentFrame = (
    Auth | Presence | Open | Unwatch | Claim | Reply | Typing | Transfer | Handback | Close
    | TicketDone | AgentPing
)
_adapter: TypeAdapter[AgentFrame] = TypeAdapter(
    Annotated[AgentFrame, Field(discriminator="type")]
)
_KNOWN = (
    "auth", "presence", "open", "unwatch", "claim", "message", "note", "typing", "transfer",
    "handback", "close", "ticket_done", "ping",
)


def parse_agent_frame(raw: str | bytes) -> AgentFrame:
    """Validate one frame from an agent's socket, or raise ``ProtocolError``."""
    frame: AgentFrame = parse_frame(raw, _adapter, _KNOWN)
    if isinstance(frame, Reply):
        check_text(frame.text, frame.client_id)
    return frame
