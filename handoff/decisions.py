"""What the desk decides, with no I/O: every change to a handoff, as a :class:`Step`.

Each function takes the state it needs (the handoff as stored, the agent, their load,
the clock) and returns the step to make, or raises :class:`ProtocolError` with the
reason the agent or shopper sees. A step says which move of
:mod:`handoff.handoff_states` to make, which columns it sets, what the shopper is told
(the frames stored as events) and what the shop's systems hear (a webhook event).
The desk (:mod:`handoff.desk`) reads state, stores steps (:mod:`handoff.db.desk`),
sends frames and runs the timers; keeping the decisions here lets every rule be
tested by calling it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot import i18n
from handoff.agent_protocol import Close, Handback
from handoff.exceptions import ProtocolError
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
    TAKE_MESSAGE,
    TRANSFER,
    UNSTAFFED,
    Handoff,
    HandoffState,
    OfflineMessage,
    Step,
    Ticket,
    Webhook,
)
from handoff.protocol import (
    OfflineReason,
    agent_message,
    csat_received_frame,
    csat_request_frame,
    mode_frame,
    offline_form_frame,
    offline_received_frame,
    queue_frame,
    system_message,
)

if TYPE_CHECKING:  # a record type only: the core does not reach the agents' table
    from handoff.db.agents import Agent

__all__ = [
    "Alert",
    "TicketAnswer",
    "answer_ticket",
    "assign",
    "claim",
    "end",
    "escalations",
    "leave_message",
    "leave_queue",
    "may_view",
    "offer_offline",
    "offline_offer_frames",
    "open_handoff",
    "owned",
    "queue_position",
    "rate",
    "reply",
    "requeue",
    "transfer",
]

NOT_YOURS = "This chat is not assigned to you (any more)."


def _agent(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name}


# -- handoffs from the bot ---------------------------------------------------------


def open_handoff(
    handoff: Handoff, context: dict[str, Any], priority: int, *, staffed: bool,
    page: dict[str, Any] | None, customer_id: str | None, support_email: str, now: float,
) -> Step:
    """A bot turn asked for a person and the context is built: queue the chat when
    someone is online, else keep the shopper with the bot and offer to take a message."""
    webhook = Webhook("conversation.queued", {
        "conversation_id": handoff.conversation_id, "handoff_id": handoff.id,
        "trigger": handoff.trigger, "reason": handoff.reason, "priority": priority,
        "staffed": staffed, "page": page, "customer_id": customer_id})
    if staffed:
        return Step(handoff, ENQUEUE, [
            mode_frame("queued", handoff_id=handoff.id),
            system_message(i18n.text("handoff.connecting", handoff.lang)),
        ], values={"context": context, "priority": priority}, webhook=webhook)
    return Step(handoff, UNSTAFFED,
                offline_offer_frames(handoff, "no_agents", support_email),
                values={"context": context, "priority": priority,
                        "offline_offered_at": now, "ended_at": now},
                webhook=webhook)


def offline_offer_frames(
    handoff: Handoff, reason: OfflineReason, support_email: str
) -> list[dict[str, Any]]:
    """The message form, and why it is offered."""
    said = (i18n.text("handoff.no_agents", handoff.lang, support_email=support_email)
            if reason == "no_agents" else i18n.text("handoff.long_wait", handoff.lang))
    return [offline_form_frame(handoff.id, reason), system_message(said)]


# -- routing and what agents do --------------------------------------------------


def assign(handoff: Handoff, agent: Agent, now: float) -> Step:
    """Give a queued chat to ``agent`` (the router's choice, or their claim)."""
    return Step(handoff, ASSIGN, [
        mode_frame("agent", agent_name=agent.name),
        system_message(i18n.text("handoff.joined", handoff.lang, agent=agent.name)),
    ], values={"agent_id": agent.id, "assigned_at": now},
        webhook=Webhook("conversation.assigned", {
            "conversation_id": handoff.conversation_id, "handoff_id": handoff.id,
            "agent": _agent(agent)}))


def claim(agent: Agent, handoff: Handoff | None, load: int, now: float) -> Step:
    """An agent takes a chat from the queue themselves, if they have a free seat."""
    if handoff is None or handoff.state != HandoffState.QUEUED:
        raise ProtocolError("not_in_queue", "This chat is not waiting any more: someone took "
                            "it, or the shopper left.")
    if load >= agent.capacity:
        raise ProtocolError("at_capacity",
                            f"You already have {agent.capacity} chats; close one first.")
    return assign(handoff, agent, now)


def may_view(agent: Agent, handoff: Handoff | None, *, open_ticket: bool = False) -> bool:
    """Admins see every chat; agents the queue, their own chats, the ones they ended, and
    conversations with an open offline message (to answer it)."""
    if agent.role == "admin" or open_ticket:
        return True
    if handoff is None:
        return False
    return handoff.state == HandoffState.QUEUED or (
        handoff.agent_id == agent.id and handoff.state in (
            HandoffState.ASSIGNED, HandoffState.CLOSED, HandoffState.RETURNED)
    )


def owned(agent: Agent, handoff: Handoff | None, client_id: str | None = None) -> Handoff:
    """The handoff, if it is assigned to ``agent`` now: only they may act on it."""
    if (handoff is None or handoff.state != HandoffState.ASSIGNED
            or handoff.agent_id != agent.id):
        raise ProtocolError("not_your_chat", NOT_YOURS, client_id)
    return handoff


def reply(agent: Agent, handoff: Handoff | None, client_id: str, text: str, now: float
          ) -> Step:
    """The chat's agent writes to the shopper (once per ``client_id``)."""
    return Step(owned(agent, handoff, client_id), REPLY, [agent_message(agent.name, text)],
                agent_id=agent.id, client_id=f"agent:{agent.id}:{client_id}",
                values={"first_response_at": now})


def transfer(agent: Agent, handoff: Handoff | None, target: Agent | None,
             target_signed_in: bool, target_load: int) -> Step:
    """Pass a chat to another signed-in agent who has a free seat."""
    mine = owned(agent, handoff)
    if target is None or not target_signed_in or target.id == agent.id:
        raise ProtocolError("unknown_agent",
                            "Transfer to an agent who is signed in (online or away).")
    if target_load >= target.capacity:
        raise ProtocolError("at_capacity", f"{target.name} has no free seat right now.")
    return Step(mine, TRANSFER, [
        mode_frame("agent", agent_name=target.name),
        system_message(i18n.text("handoff.transferred", mine.lang, agent=agent.name,
                            target=target.name)),
    ], agent_id=agent.id, values={"agent_id": target.id})


def end(agent: Agent, handoff: Handoff | None, command: Handback | Close) -> Step:
    """Close the chat (with a resolution and a rating question) or hand it back to the bot."""
    mine = owned(agent, handoff)
    if isinstance(command, Close):
        move, resolution = CLOSE, command.resolution
        frames = [
            mode_frame("bot"),
            system_message(i18n.text("handoff.closed", mine.lang, agent=agent.name)),
            csat_request_frame(mine.id, agent.name,
                               i18n.text("handoff.rate", mine.lang, agent=agent.name)),
        ]
    else:
        move, resolution = HAND_BACK, None
        frames = [
            mode_frame("bot"),
            system_message(i18n.text("handoff.handed_back", mine.lang, agent=agent.name)),
        ]
    return Step(mine, move, frames, agent_id=agent.id, values={"resolution": resolution},
                webhook=Webhook("conversation.closed", {
                    "conversation_id": mine.conversation_id, "handoff_id": mine.id,
                    "outcome": move.target, "resolution": resolution,
                    "agent": _agent(agent)}))


def requeue(handoff: Handoff, agent_id: str, agent_name: str) -> Step:
    """The chat's agent went away: back to the queue, keeping its place."""
    return Step(handoff, REQUEUE, [
        mode_frame("queued", handoff_id=handoff.id),
        system_message(i18n.text("handoff.requeued", handoff.lang, agent=agent_name)),
    ], agent_id=agent_id, values={"agent_id": None, "assigned_at": None})


@dataclass(frozen=True)
class TicketAnswer:
    """An agent's answer to an offline message: the events stored in the ticket's
    conversation (the shopper reads it there too when they come back) and the mail."""

    ticket: Ticket
    frames: list[dict[str, Any]]
    #: The agent's frame, so that a resent answer is stored and mailed once.
    client_id: str
    agent_name: str
    text: str


def answer_ticket(agent: Agent, ticket: Ticket | None, client_id: str, text: str, *,
                  mail_on: bool) -> TicketAnswer:
    """Any agent may answer an open offline message by mail, once per ``client_id``."""
    if not mail_on:
        raise ProtocolError("mail_off", "Email is not set up on this gateway "
                            "(SHOPCHAT_SMTP_HOST): answer from your own mail client.", client_id)
    if ticket is None or ticket.status != "open":
        raise ProtocolError("unknown_ticket", "That ticket is already done or unknown.",
                            client_id)
    frame = {**agent_message(agent.name, text), "via": "email"}
    return TicketAnswer(ticket, [frame], f"agent:{agent.id}:{client_id}", agent.name, text)


# -- what shoppers do around a handoff --------------------------------------------


def leave_queue(handoff: Handoff | None, client_id: str) -> Step:
    """A waiting shopper goes back to the bot."""
    if handoff is None or handoff.state != HandoffState.QUEUED:
        raise ProtocolError("not_in_queue", "You are not waiting for a person.", client_id)
    return Step(handoff, LEAVE, [
        mode_frame("bot"),
        system_message(i18n.text("handoff.left_queue", handoff.lang)),
    ], client_id=client_id)


def leave_message(handoff: Handoff | None, client_id: str, email: str, text: str) -> Step:
    """A shopper nobody can serve (yet) leaves a message: a ticket for the team; one
    still in the queue stops waiting."""
    if handoff is None or handoff.state not in (HandoffState.QUEUED, HandoffState.UNSTAFFED):
        raise ProtocolError(
            "no_offline_form",
            "Leaving a message is offered when nobody from the team can take the chat.",
            client_id,
        )
    frames = [
        offline_received_frame(handoff.id, email),
        system_message(i18n.text("handoff.message_received", handoff.lang, email=email)),
    ]
    move = TAKE_MESSAGE
    if handoff.state == HandoffState.QUEUED:
        move, frames = LEAVE_FOR_MESSAGE, [mode_frame("bot"), *frames]
    return Step(handoff, move, frames, client_id=client_id,
                message=OfflineMessage(email, text),
                webhook=Webhook("ticket.created", {
                    "conversation_id": handoff.conversation_id, "handoff_id": handoff.id,
                    "email": email, "message": text}))


def rate(handoff: Handoff | None, conversation_id: str, client_id: str, score: int,
         comment: str | None, now: float) -> Step:
    """The shopper rates a chat an agent closed, once."""
    if (handoff is None or handoff.conversation_id != conversation_id
            or handoff.state != HandoffState.CLOSED or handoff.csat_score is not None):
        raise ProtocolError("csat_not_expected", "This chat was not closed by an agent, or it "
                            "is rated already.", client_id)
    return Step(handoff, RATE, [
        csat_received_frame(handoff.id, score),
        system_message(i18n.text("handoff.rated", handoff.lang)),
    ], client_id=client_id,
        values={"csat_score": score, "csat_comment": comment, "csat_at": now},
        webhook=Webhook("csat.received", {
            "conversation_id": conversation_id, "handoff_id": handoff.id, "score": score,
            "comment": comment}))


def queue_position(handoff: Handoff, position: int, expected_seconds: float
                   ) -> dict[str, Any]:
    """The ``queue`` frame a waiting shopper sees: their place, and the wait rounded up
    to ten seconds (none when nobody is online to estimate from)."""
    wait = None if math.isinf(expected_seconds) else int(math.ceil(expected_seconds / 10) * 10)
    return queue_frame(handoff.id, position, wait)


# -- timers ----------------------------------------------------------------------


def offer_offline(handoff: Handoff, reason: OfflineReason, support_email: str, now: float
                  ) -> Step:
    """Tell a queued shopper they may leave a message instead of waiting (once)."""
    return Step(handoff, OFFER_OFFLINE, offline_offer_frames(handoff, reason, support_email),
                values={"offline_offered_at": now})


@dataclass(frozen=True)
class Alert:
    """Every signed-in agent is told: the console beeps and notifies."""

    kind: str
    handoff: Handoff
    text: str


def escalations(
    queued: Sequence[Handoff], expected: Sequence[float], now: float, *, nobody_online: bool,
    claim_timeout: float, max_wait: float, support_email: str,
) -> list[Alert | Step]:
    """What the queue's timers do now, for chats nobody takes: alert every agent once a
    chat has waited ``claim_timeout``; offer the message form once the shopper has waited
    ``max_wait``, or the queue says they will (``expected``, per position), or nobody is
    online at all. ``queued`` is in queue order."""
    actions: list[Alert | Step] = []
    for handoff, expected_wait in zip(queued, expected, strict=True):
        waited = now - handoff.queued_at
        if handoff.alerted_at is None and waited >= claim_timeout:
            actions.append(Alert("unclaimed", handoff, f"A shopper has waited {int(waited)} s "
                                 "and nobody took the chat."))
        # With nobody online there is no estimate: that case is the first one.
        if handoff.offline_offered_at is None and (
            nobody_online or waited >= max_wait
            or (math.isfinite(expected_wait) and expected_wait >= max_wait)
        ):
            reason: OfflineReason = "no_agents" if nobody_online else "long_wait"
            actions.append(offer_offline(handoff, reason, support_email, now))
    return actions
