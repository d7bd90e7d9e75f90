"""The conversation store: seq allocation, de-duplication, replay, pending turns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from handoff.db.conversations import DONE, SKIPPED, ConversationStore
from handoff.db.desk import DeskStore
from handoff.handoff_states import ASSIGN, CLOSE, ENQUEUE, HAND_BACK, Handoff


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "gateway.db")


def shopper(text: str) -> dict[str, object]:
    return {"type": "message", "author": "shopper", "text": text}


def test_seq_counts_up_per_conversation(store: ConversationStore) -> None:
    a, _ = store.create_conversation(None)
    b, _ = store.create_conversation(None)
    assert [store.append(a.id, {"type": "message", "author": "bot", "text": t}).seq
            for t in "xyz"] == [1, 2, 3]
    assert store.append(b.id, {"type": "message", "author": "bot", "text": "b"}).seq == 1


def test_same_client_id_is_stored_once(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    first, new = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    again, new_again = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    assert new and not new_again
    assert again.seq == first.seq == 1
    assert [e.seq for e in store.events_after(conversation.id, 0)] == [1]


def test_events_after_returns_only_what_was_missed_in_order(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    for i in range(5):
        store.append_shopper_message(conversation.id, f"m{i}", shopper(str(i)))
    missed = store.events_after(conversation.id, 2)
    assert [e.seq for e in missed] == [3, 4, 5]
    assert [e.frame["text"] for e in missed] == ["2", "3", "4"]


def test_resume_token_is_checked(store: ConversationStore) -> None:
    conversation, token = store.create_conversation({"type": "product"})
    assert store.authenticate(conversation.id, token) is not None
    assert store.authenticate(conversation.id, token + "x") is None
    assert store.authenticate("0" * 32, token) is None


def test_answering_marks_the_message_done_and_stores_replies(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    message, _ = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    assert [m.seq for m in store.pending_messages(conversation.id)] == [1]
    replies = store.answer(conversation.id, message.seq,
                           [{"type": "message", "author": "bot", "text": "hello"}])
    assert [r.seq for r in replies] == [2]
    assert store.pending_messages(conversation.id) == []


def test_events_survive_reopening_the_file(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, token = store.create_conversation(None)
    store.append_shopper_message(conversation.id, "m1", shopper("still here?"))
    store.close()
    reopened = ConversationStore(tmp_path / "gateway.db")
    assert reopened.authenticate(conversation.id, token) is not None
    assert [e.frame["text"] for e in reopened.events_after(conversation.id, 0)] == ["still here?"]
    assert len(reopened.pending_messages(conversation.id)) == 1


def test_recent_buttons_lists_only_bot_offers(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    store.append(conversation.id, {"type": "message", "author": "bot", "text": "?",
                                   "buttons": [{"title": "Person", "payload": "/human_handoff"}]})
    store.append_shopper_message(conversation.id, "m1", {**shopper("x"), "buttons": [
        {"title": "evil", "payload": "/evil"}]})
    assert store.recent_buttons(conversation.id) == {"/human_handoff"}


def handed_to(store: ConversationStore, agent_id: str) -> tuple[str, Handoff]:
    """A conversation whose handoff (opened by a bot turn) is assigned to ``agent_id``."""
    desk = DeskStore(store)
    conversation, _ = store.create_conversation(None)
    asked, _ = store.append_shopper_message(conversation.id, "ask", shopper("a person please"))
    store.answer(conversation.id, asked.seq, [
        {"type": "handoff", "reply_to": asked.seq, "trigger": "requested", "reason": "asked"}])
    (new,) = desk.new()
    desk.move(new, ENQUEUE, [{"type": "mode", "mode": "queued"}],
              values={"context": {}, "priority": 0})
    queued = desk.get(new.id)
    assert queued is not None
    desk.move(queued, ASSIGN, [{"type": "mode", "mode": "agent"}],
              values={"agent_id": agent_id, "assigned_at": time.time()})
    assigned = desk.get(new.id)
    assert assigned is not None and assigned.state == "assigned"
    return conversation.id, assigned


def bot_states(store: ConversationStore, conversation_id: str) -> list[str]:
    return [state for (state,) in store.db.execute(
        "SELECT bot_state FROM client_messages WHERE conversation_id = ? ORDER BY seq",
        [conversation_id])]


def test_a_message_stored_while_a_person_has_the_chat_is_never_the_bots(
    store: ConversationStore,
) -> None:
    conversation_id, handoff = handed_to(store, "agent-1")
    for i in range(5):
        store.append_shopper_message(conversation_id, f"m{i}", shopper(f"to the agent {i}"))
    assert store.pending_messages(conversation_id) == []
    # Closing the chat gives the bot nothing to answer from before.
    DeskStore(store).move(handoff, CLOSE, [{"type": "mode", "mode": "bot"}], agent_id="agent-1",
                          values={"resolution": "resolved"})
    assert store.pending_messages(conversation_id) == []
    assert bot_states(store, conversation_id) == [DONE] + [SKIPPED] * 5


def test_closing_a_chat_lets_an_old_backlog_go(store: ConversationStore) -> None:
    """Rows a database from before storage-time decisions holds as pending."""
    conversation_id, handoff = handed_to(store, "agent-1")
    for i in range(300):
        store.append_shopper_message(conversation_id, f"m{i}", shopper(f"old {i}"))
    store.db.execute("UPDATE client_messages SET bot_state = 'pending' WHERE client_id LIKE 'm%'")
    assert len(store.pending_messages(conversation_id)) == 300
    DeskStore(store).move(handoff, HAND_BACK, [{"type": "mode", "mode": "bot"}],
                          agent_id="agent-1")
    assert store.pending_messages(conversation_id) == []
    after, _ = store.append_shopper_message(conversation_id, "next", shopper("back to the bot"))
    assert [m.seq for m in store.pending_messages(conversation_id)] == [after.seq]


def test_answering_the_newest_of_a_backlog_lets_the_older_ones_go(
    store: ConversationStore,
) -> None:
    conversation, _ = store.create_conversation(None)
    for i in range(300):
        store.append_shopper_message(conversation.id, f"m{i}", shopper(f"question {i}"))
    newest = store.pending_messages(conversation.id)[-1]
    replies = store.answer(conversation.id, newest.seq, [
        {"type": "message", "author": "system", "text": "missed 299"},
        {"type": "message", "author": "bot", "text": "hello", "reply_to": newest.seq},
    ], skip_older=True)
    assert [r.frame["text"] for r in replies] == ["missed 299", "hello"]
    assert store.pending_messages(conversation.id) == []
    assert bot_states(store, conversation.id) == [SKIPPED] * 299 + [DONE]


def test_a_message_no_longer_pending_is_not_answered(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    message, _ = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    store.skip_pending(conversation.id, message.seq)
    assert store.answer(conversation.id, message.seq,
                        [{"type": "message", "author": "bot", "text": "late"}]) == []
    assert [e.frame["text"] for e in store.events_after(conversation.id, 0)] == ["hi"]


def test_a_bot_turn_is_one_owners_until_its_lease_runs_out(store: ConversationStore) -> None:
    """Of several gateway processes only one sends a message to Rasa: the first to claim
    its turn. Another may take it over only once that lease has run out, and then the
    first one's late answer is not stored (the message is answered once)."""
    conversation, _ = store.create_conversation(None)
    message, _ = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    assert store.claim_turn(conversation.id, message.seq, "gateway-a", 30).granted
    refused = store.claim_turn(conversation.id, message.seq, "gateway-b", 30)
    assert not refused.granted and 29 < refused.retry_in <= 30
    assert store.claim_turn(conversation.id, message.seq, "gateway-a", 0.05).granted  # renewed
    time.sleep(0.1)  # gateway A died holding it
    assert store.claim_turn(conversation.id, message.seq, "gateway-b", 30).granted
    reply = {"type": "message", "author": "bot", "text": "Hello!"}
    assert store.answer(conversation.id, message.seq, [reply], owner="gateway-a") == []
    assert store.bot_state(conversation.id, message.seq) != DONE  # still B's to answer
    assert [e.seq for e in store.answer(conversation.id, message.seq, [reply],
                                        owner="gateway-b")] == [2]
    assert store.bot_state(conversation.id, message.seq) == DONE
    # An answered message's turn is nobody's to take.
    assert not store.claim_turn(conversation.id, message.seq, "gateway-c", 30).granted


def test_a_gateway_starting_on_its_file_takes_the_turns_the_last_run_left(
    store: ConversationStore,
) -> None:
    conversation, _ = store.create_conversation(None)
    message, _ = store.append_shopper_message(conversation.id, "m1", shopper("hi"))
    assert store.claim_turn(conversation.id, message.seq, "the-run-that-died", 45).granted
    assert store.release_turns() == 1
    assert store.claim_turn(conversation.id, message.seq, "this-run", 45).granted
