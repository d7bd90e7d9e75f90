"""The conversation store: seq allocation, de-duplication, replay, pending turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.persistence import ConversationStore


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
