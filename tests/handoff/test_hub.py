"""The hub's decisions: which unanswered messages the bot takes on, and that every
follower gets a conversation's events in seq order without a gap."""

from __future__ import annotations

from pathlib import Path

from handoff.db.conversations import ConversationStore, StoredEvent
from handoff.hub import BACKLOG_LIMIT, Hub, split_backlog


def pending(n: int) -> list[StoredEvent]:
    return [StoredEvent(seq, {"type": "message", "author": "shopper", "text": f"q{seq}"})
            for seq in range(1, n + 1)]


def test_a_short_backlog_is_answered_message_by_message() -> None:
    for n in range(BACKLOG_LIMIT + 1):
        assert split_backlog(pending(n)) == (pending(n), 0)


def test_a_long_backlog_is_answered_by_its_newest_message_alone() -> None:
    answer, skipped = split_backlog(pending(300))
    assert [m.seq for m in answer] == [300] and skipped == 299
    answer, skipped = split_backlog(pending(BACKLOG_LIMIT + 1))
    assert [m.seq for m in answer] == [BACKLOG_LIMIT + 1] and skipped == BACKLOG_LIMIT


class Recorder:
    """A follower that keeps what it is sent (the Subscriber's rule: each seq once)."""

    role = "agent"

    def __init__(self, sent_seq: int) -> None:
        self.sent_seq = sent_seq
        self.seqs: list[int] = []

    def push_event(self, event: StoredEvent) -> None:
        if event.seq > self.sent_seq:
            self.sent_seq = event.seq
            self.seqs.append(event.seq)

    def push_control(self, frame: dict[str, object]) -> None:
        pass


def test_a_follower_never_skips_a_gap_it_is_filled_from_the_store(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, _ = store.create_conversation(None)
    events = [store.append(conversation.id, {"type": "message", "author": "bot", "text": str(n)})
              for n in range(4)]
    hub = Hub(store, None)  # type: ignore[arg-type]  # no bot turns here
    follower = Recorder(sent_seq=events[0].seq)
    hub._subscribers[conversation.id].add(follower)
    # Announced out of order (another process stored seq 2 and 3 and has not told us yet).
    hub.publish(conversation.id, [events[3]])
    assert follower.seqs == [events[1].seq, events[2].seq, events[3].seq]
    hub.publish(conversation.id, events[1:3])  # the late announcement changes nothing
    assert follower.seqs == [e.seq for e in events[1:]]
    store.close()


def test_an_event_published_before_the_replay_reaches_it_is_not_lost(tmp_path: Path) -> None:
    """Subscribing registers first: an event announced before the replay ran (another
    process's, say) leaves no hole, whatever the order."""
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, _ = store.create_conversation(None)
    events = [store.append(conversation.id, {"type": "message", "author": "bot", "text": str(n)})
              for n in range(3)]
    hub = Hub(store, None)  # type: ignore[arg-type]
    follower = Recorder(sent_seq=0)
    hub._subscribers[conversation.id].add(follower)
    hub.publish(conversation.id, [events[2]])  # live, ahead of the replay
    hub.subscribe(conversation.id, follower, 0)
    assert follower.seqs == [e.seq for e in events]
    store.close()
