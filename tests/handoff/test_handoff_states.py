"""The handoff state machine (pure) and how the desk's storage applies its moves: one
guarded transaction each, the webhook rows included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.settings import Settings
from handoff.db.conversations import ConversationStore
from handoff.db.desk import DeskStore
from handoff.handoff_states import (
    CLOSE,
    MOVES,
    OPEN_STATES,
    RATE,
    REPLY,
    Handoff,
    HandoffState,
    allowed,
)
from handoff.webhooks import Webhooks
from tests.handoff.test_persistence import handed_to, shopper


def test_every_move_leads_somewhere_the_table_allows() -> None:
    names = [m.name for m in MOVES]
    assert len(names) == len(set(names))
    for move in MOVES:
        assert allowed(move.source, move.target)
        # A move that gives the chat back to the bot puts the conversation in bot mode.
        assert not move.ends or move.mode == "bot"


@pytest.mark.parametrize(("source", "target"), [
    (HandoffState.CLOSED, HandoffState.ASSIGNED),
    (HandoffState.LEFT, HandoffState.QUEUED),
    (HandoffState.NEW, HandoffState.ASSIGNED),
    (HandoffState.RETURNED, HandoffState.CLOSED),
    (HandoffState.OFFLINE, HandoffState.QUEUED),
])
def test_what_the_table_does_not_list_is_not_allowed(
    source: HandoffState, target: HandoffState
) -> None:
    assert not allowed(source, target)


def test_only_open_states_lead_to_a_person_and_ended_ones_only_to_a_rating() -> None:
    for move in MOVES:
        if move.source not in OPEN_STATES:
            assert move is RATE or move.source == HandoffState.UNSTAFFED
    assert {m.source for m in MOVES if m.owned} == {HandoffState.ASSIGNED}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = ConversationStore(tmp_path / "gateway.db")
    yield opened
    opened.close()


def outbox_events(store: ConversationStore) -> list[str]:
    return [row["event"] for row in store.db.query("SELECT event FROM webhook_outbox")]


@dataclass
class Assigned:
    """A chat assigned to agent-1, the desk's storage, and webhooks to one (unused) URL."""

    desk: DeskStore
    webhooks: Webhooks
    conversation_id: str
    handoff: Handoff


@pytest.fixture
def assigned(store: ConversationStore, tmp_path: Path) -> Assigned:
    webhooks = Webhooks(store, Settings(var_dir=tmp_path, webhook_urls=["http://127.0.0.1:9/a"],
                                        webhook_secret=SecretStr("s" * 32)))
    conversation_id, handoff = handed_to(store, "agent-1")
    return Assigned(DeskStore(store), webhooks, conversation_id, handoff)


def test_an_owned_move_needs_the_agent_and_only_its_agent_may_make_it(
    store: ConversationStore,
) -> None:
    _, handoff = handed_to(store, "agent-1")
    desk = DeskStore(store)
    with pytest.raises(ValueError, match="agent_id"):
        desk.move(handoff, CLOSE, [])
    assert desk.move(handoff, CLOSE, [], agent_id="agent-2") is None
    assert desk.move(handoff, CLOSE, [], agent_id="agent-1") is not None
    closed = desk.get(handoff.id)
    assert closed is not None and closed.state == HandoffState.CLOSED
    assert closed.ended_at is not None


def test_a_move_sets_only_handoff_columns(store: ConversationStore) -> None:
    _, handoff = handed_to(store, "agent-1")
    with pytest.raises(ValueError, match="not handoff columns"):
        DeskStore(store).move(handoff, CLOSE, [], agent_id="agent-1",
                              values={"state = 'x'; --": 1})


def test_the_webhook_row_is_written_with_the_change_or_not_at_all(
    store: ConversationStore, assigned: Assigned,
) -> None:
    desk, webhooks, handoff = assigned.desk, assigned.webhooks, assigned.handoff
    # The guard fails (another agent's chat): no change, and no event announcing one.
    assert desk.move(handoff, CLOSE, [], agent_id="agent-2",
                     outbox=webhooks.rows("conversation.closed", {})) is None
    assert outbox_events(store) == []
    # The change fails half-way (a frame that cannot be stored): nothing of it stays.
    with pytest.raises(TypeError):
        desk.move(handoff, CLOSE, [{"type": "x", "bad": object()}], agent_id="agent-1",
                  outbox=webhooks.rows("conversation.closed", {}))
    assert outbox_events(store) == []
    still = desk.get(handoff.id)
    assert still is not None and still.state == HandoffState.ASSIGNED
    # The change is stored: so is its event, in the same transaction.
    change = desk.move(handoff, CLOSE, [{"type": "mode", "mode": "bot"}], agent_id="agent-1",
                       outbox=webhooks.rows("conversation.closed",
                                            {"conversation_id": assigned.conversation_id}))
    assert change is not None and change.new
    assert outbox_events(store) == ["conversation.closed"]


def test_a_repeated_rating_stores_neither_a_second_rating_nor_a_second_event(
    store: ConversationStore, assigned: Assigned,
) -> None:
    desk, webhooks, handoff = assigned.desk, assigned.webhooks, assigned.handoff
    desk.move(handoff, CLOSE, [], agent_id="agent-1")
    closed: Handoff | None = desk.get(handoff.id)
    assert closed is not None
    for client_id, score in (("r1", 5), ("r1", 5), ("r2", 1)):
        desk.move(closed, RATE, [{"type": "csat_received", "score": score}],
                  client_id=client_id, values={"csat_score": score},
                  outbox=webhooks.rows("csat.received", {"score": score}))
    rated = desk.get(handoff.id)
    assert rated is not None and rated.csat_score == 5
    assert outbox_events(store) == ["csat.received"]


def test_the_first_reply_time_stays_the_first(store: ConversationStore) -> None:
    desk = DeskStore(store)
    _, handoff = handed_to(store, "agent-1")
    for n in range(3):
        desk.move(handoff, REPLY, [{"type": "message", "author": "agent", "text": f"reply {n}"}],
                  agent_id="agent-1", client_id=f"a{n}", values={"first_response_at": n + 1.0})
    first = desk.get(handoff.id)
    assert first is not None and first.first_response_at == 1.0
    desk.move(handoff, REPLY, [shopper("later")], agent_id="agent-1", client_id="a9",
              values={"first_response_at": 99.0})
    again = desk.get(handoff.id)
    assert again is not None and again.first_response_at == first.first_response_at
