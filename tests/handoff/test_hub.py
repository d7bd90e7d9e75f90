"""The hub's pure decisions: which unanswered messages the bot takes on."""

from __future__ import annotations

from handoff.hub import BACKLOG_LIMIT, split_backlog
from handoff.persistence import StoredEvent


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
