"""The desk's decisions, called as the pure functions they are: no database, no sockets,
no clock (each takes ``now``). Storage applying them is tested in test_handoff_states.py;
the desk doing them over real sockets in test_desk.py."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from bot.settings import PROJECT_DIR
from handoff import decisions
from handoff.agent_protocol import Close, Handback
from handoff.db.agents import Agent
from handoff.exceptions import ProtocolError
from handoff.handoff_states import (
    ASSIGN,
    CLOSE,
    ENQUEUE,
    HAND_BACK,
    LEAVE_FOR_MESSAGE,
    OFFER_OFFLINE,
    TAKE_MESSAGE,
    UNSTAFFED,
    Handoff,
    HandoffState,
    Step,
    allowed,
)

CONVERSATION = "c" * 32
ANNA = Agent("a1", "anna@shop.example", "Anna", "agent", 2)
BEN = Agent("a2", "ben@shop.example", "Ben", "agent", 1)
ADMIN = Agent("a3", "root@shop.example", "Root", "admin", 3)


def handoff(state: HandoffState = HandoffState.QUEUED, **fields: Any) -> Handoff:
    base = Handoff(id=7, conversation_id=CONVERSATION, state=state, trigger="requested",
                   reason="asked", priority=0, context=None, agent_id=None, queued_at=100.0,
                   assigned_at=None, first_response_at=None, alerted_at=None,
                   offline_offered_at=None, ended_at=None, resolution=None, csat_score=None)
    return dataclasses.replace(base, **fields)


def assigned_to(agent: Agent) -> Handoff:
    return handoff(HandoffState.ASSIGNED, agent_id=agent.id, assigned_at=110.0)


def mode_of(step: Step) -> str | None:
    return next((f["mode"] for f in step.frames if f["type"] == "mode"), None)


def refused(call: Any, code: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as raised:
        call()
    assert raised.value.code == code
    return raised.value


def test_every_step_makes_a_move_the_state_machine_allows_from_the_state_it_read() -> None:
    steps = [
        decisions.open_handoff(handoff(HandoffState.NEW), {}, 5, staffed=True, page=None,
                               customer_id=None, support_email="help@shop.example", now=1.0),
        decisions.claim(ANNA, handoff(), 0, now=1.0),
        decisions.reply(ANNA, assigned_to(ANNA), "r1", "Hello", now=1.0),
        decisions.transfer(ANNA, assigned_to(ANNA), BEN, True, 0),
        decisions.end(ANNA, assigned_to(ANNA),
                      Close(type="close", conversation_id=CONVERSATION, resolution="resolved")),
        decisions.requeue(assigned_to(ANNA), ANNA.id, ANNA.name),
        decisions.leave_queue(handoff(), "l1"),
        decisions.leave_message(handoff(HandoffState.UNSTAFFED), "m1", "s@x.example", "hi"),
        decisions.rate(handoff(HandoffState.CLOSED), CONVERSATION, "r1", 5, None, now=1.0),
        decisions.offer_offline(handoff(), "long_wait", "help@shop.example", now=1.0),
    ]
    for step in steps:
        assert step.move.source == step.handoff.state, step.move.name
        assert allowed(step.move.source, step.move.target)
        assert not step.move.owned or step.agent_id == step.handoff.agent_id
        # What the move does to the conversation's mode, the shopper is told.
        assert mode_of(step) in (step.move.mode, None)


def test_a_handoff_is_queued_only_with_someone_online_else_a_message_is_offered() -> None:
    new = handoff(HandoffState.NEW)
    staffed = decisions.open_handoff(new, {"a": 1}, 20, staffed=True, page={"type": "cart"},
                                     customer_id="cus-1", support_email="h@x.example", now=5.0)
    assert staffed.move is ENQUEUE and mode_of(staffed) == "queued"
    assert staffed.values == {"context": {"a": 1}, "priority": 20}
    assert staffed.webhook is not None and staffed.webhook.event == "conversation.queued"
    assert staffed.webhook.data["staffed"] is True and staffed.webhook.data["priority"] == 20
    alone = decisions.open_handoff(new, {}, 0, staffed=False, page=None, customer_id=None,
                                   support_email="h@x.example", now=5.0)
    assert alone.move is UNSTAFFED
    assert alone.values["offline_offered_at"] == alone.values["ended_at"] == 5.0
    form = alone.frames[0]
    assert form["type"] == "offline_form" and form["reason"] == "no_agents"
    assert "h@x.example" in alone.frames[1]["text"]


def test_a_claim_needs_a_queued_chat_and_a_free_seat() -> None:
    step = decisions.claim(ANNA, handoff(), 1, now=9.0)
    assert step.move is ASSIGN and step.values == {"agent_id": ANNA.id, "assigned_at": 9.0}
    assert step.webhook is not None and step.webhook.data["agent"] == {"id": "a1",
                                                                       "name": "Anna"}
    refused(lambda: decisions.claim(ANNA, handoff(), 2, now=9.0), "at_capacity")
    refused(lambda: decisions.claim(ANNA, None, 0, now=9.0), "not_in_queue")
    refused(lambda: decisions.claim(BEN, assigned_to(ANNA), 0, now=9.0), "not_in_queue")


def test_only_the_chats_agent_acts_on_it() -> None:
    mine = assigned_to(ANNA)
    assert decisions.owned(ANNA, mine) is mine
    for agent, chat in ((BEN, mine), (ADMIN, mine), (ANNA, handoff()), (ANNA, None)):
        error = refused(lambda: decisions.reply(agent, chat, "r9", "hi", now=1.0),  # noqa: B023
                        "not_your_chat")
        assert error.client_id == "r9"  # the console matches the refusal to its message
    reply = decisions.reply(ANNA, mine, "r1", "On its way!", now=3.0)
    assert reply.client_id == "agent:a1:r1" and reply.values == {"first_response_at": 3.0}
    assert reply.frames[0]["author"] == "agent" and reply.frames[0]["text"] == "On its way!"


def test_who_may_look_at_a_chat() -> None:
    assert decisions.may_view(BEN, handoff())  # anyone may look at the queue
    assert decisions.may_view(ANNA, assigned_to(ANNA))
    assert not decisions.may_view(BEN, assigned_to(ANNA))
    assert decisions.may_view(ADMIN, assigned_to(ANNA)) and decisions.may_view(ADMIN, None)
    ended = dataclasses.replace(assigned_to(ANNA), state=HandoffState.CLOSED)
    assert decisions.may_view(ANNA, ended) and not decisions.may_view(BEN, ended)
    assert not decisions.may_view(ANNA, handoff(HandoffState.LEFT))


def test_a_transfer_goes_to_another_signed_in_agent_with_a_free_seat() -> None:
    mine = assigned_to(ANNA)
    step = decisions.transfer(ANNA, mine, BEN, True, 0)
    assert step.values == {"agent_id": BEN.id} and step.agent_id == ANNA.id
    assert "Anna passed the chat to Ben." in step.frames[1]["text"]
    refused(lambda: decisions.transfer(ANNA, mine, BEN, False, 0), "unknown_agent")
    refused(lambda: decisions.transfer(ANNA, mine, None, True, 0), "unknown_agent")
    refused(lambda: decisions.transfer(ANNA, mine, ANNA, True, 0), "unknown_agent")
    refused(lambda: decisions.transfer(ANNA, mine, BEN, True, 1), "at_capacity")
    refused(lambda: decisions.transfer(BEN, mine, ANNA, True, 0), "not_your_chat")


def test_closing_asks_for_a_rating_and_handing_back_does_not() -> None:
    close = decisions.end(ANNA, assigned_to(ANNA),
                          Close(type="close", conversation_id=CONVERSATION, resolution="resolved"))
    assert close.move is CLOSE and close.values == {"resolution": "resolved"}
    assert [f["type"] for f in close.frames] == ["mode", "message", "csat_request"]
    assert close.webhook is not None and close.webhook.data["outcome"] == "closed"
    back = decisions.end(ANNA, assigned_to(ANNA), Handback(type="handback",
                                                           conversation_id=CONVERSATION))
    assert back.move is HAND_BACK and "csat_request" not in [f["type"] for f in back.frames]
    assert back.webhook is not None and back.webhook.data["outcome"] == "returned"


def test_a_message_can_be_left_while_waiting_or_when_nobody_was_there() -> None:
    waiting = decisions.leave_message(handoff(), "m1", "sam@x.example", "call me")
    assert waiting.move is LEAVE_FOR_MESSAGE and mode_of(waiting) == "bot"
    alone = decisions.leave_message(handoff(HandoffState.UNSTAFFED), "m1", "sam@x.example",
                                    "call me")
    assert alone.move is TAKE_MESSAGE and mode_of(alone) is None
    for step in (waiting, alone):
        assert step.message is not None and step.message.email == "sam@x.example"
        assert step.webhook is not None and step.webhook.event == "ticket.created"
    for state in (HandoffState.ASSIGNED, HandoffState.CLOSED, HandoffState.NEW):
        refused(lambda: decisions.leave_message(handoff(state), "m", "s@x.example",  # noqa: B023
                                                "t"), "no_offline_form")
    refused(lambda: decisions.leave_queue(handoff(HandoffState.ASSIGNED), "l"), "not_in_queue")


def test_only_a_closed_chat_of_this_conversation_is_rated_once() -> None:
    closed = handoff(HandoffState.CLOSED)
    step = decisions.rate(closed, CONVERSATION, "r1", 4, "quick", now=8.0)
    assert step.values == {"csat_score": 4, "csat_comment": "quick", "csat_at": 8.0}
    refused(lambda: decisions.rate(closed, "other", "r1", 4, None, now=8.0),
            "csat_not_expected")
    refused(lambda: decisions.rate(dataclasses.replace(closed, csat_score=5), CONVERSATION, "r1", 4,
                                   None, now=8.0), "csat_not_expected")
    refused(lambda: decisions.rate(handoff(HandoffState.RETURNED), CONVERSATION, "r1", 4, None,
                                   now=8.0), "csat_not_expected")


def test_the_wait_shown_is_rounded_up_to_ten_seconds_and_absent_without_an_estimate() -> None:
    assert decisions.queue_position(handoff(), 2, 41.0)["wait_seconds"] == 50
    assert decisions.queue_position(handoff(), 2, 40.0)["wait_seconds"] == 40
    frame = decisions.queue_position(handoff(), 1, math.inf)
    assert frame["wait_seconds"] is None and frame["position"] == 1


def escalate(queued: list[Handoff], expected: list[float], now: float,
             nobody_online: bool = False) -> list[Any]:
    return decisions.escalations(queued, expected, now, nobody_online=nobody_online,
                                 claim_timeout=60, max_wait=300, support_email="h@x.example")


def test_a_chat_nobody_takes_alerts_every_agent_then_offers_a_message_once() -> None:
    chat = handoff(queued_at=0.0)
    assert escalate([chat], [10.0], now=59.0) == []
    (alert,) = escalate([chat], [10.0], now=60.0)
    assert isinstance(alert, decisions.Alert) and alert.kind == "unclaimed"
    assert "waited 60 s" in alert.text
    alerted = dataclasses.replace(chat, alerted_at=60.0)
    assert escalate([alerted], [10.0], now=299.0) == []
    (offer,) = escalate([alerted], [10.0], now=300.0)
    assert isinstance(offer, Step) and offer.move is OFFER_OFFLINE
    assert offer.frames[0]["reason"] == "long_wait"
    offered = dataclasses.replace(alerted, offline_offered_at=300.0)
    assert escalate([offered], [10.0], now=10_000.0) == []


def test_the_message_form_comes_early_when_the_queue_says_the_wait_is_too_long() -> None:
    first, second = handoff(id=1, queued_at=0.0), handoff(id=2, queued_at=0.0)
    (offer,) = escalate([first, second], [200.0, 400.0], now=5.0)
    assert offer.handoff.id == 2 and offer.frames[0]["reason"] == "long_wait"
    # With nobody online there is no estimate, and every waiting shopper is told so.
    offers = escalate([first, second], [math.inf, math.inf], now=5.0, nobody_online=True)
    assert [o.frames[0]["reason"] for o in offers] == ["no_agents", "no_agents"]


#: The pure core: what the desk and the sockets decide and say, with no I/O.
CORE = ["handoff/decisions.py", "handoff/handoff_states.py", "handoff/routing.py",
        "handoff/protocol.py", "handoff/agent_protocol.py", "handoff/context.py",
        "handoff/exceptions.py"]
#: What a core module may not import (except for type hints): storage, sockets, the clock.
IO = ("asyncio", "aiohttp", "websockets", "sqlite3", "socket", "time", "threading",
      "httpx", "handoff.db", "handoff.hub", "handoff.desk", "handoff.chat", "handoff.app",
      "handoff.rasa_bridge", "handoff.webhooks", "handoff.agent_socket", "handoff.http")


def runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks left out)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("module", CORE)
def test_the_core_does_no_io(module: str) -> None:
    imported = runtime_imports(PROJECT_DIR / module)
    assert imported, module
    assert not {n for n in imported if n in IO or n.startswith(tuple(f"{m}." for m in IO))}


def test_the_layer_check_sees_io() -> None:
    assert "handoff.db.desk" in runtime_imports(PROJECT_DIR / "handoff/desk.py")
    assert "asyncio" in runtime_imports(PROJECT_DIR / "handoff/desk.py")
