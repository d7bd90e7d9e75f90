"""The hub's decisions: which unanswered messages the bot takes on, and that every
follower gets a conversation's events in seq order without a gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from handoff.db.conversations import ConversationStore, SqliteConversations, StoredEvent
from handoff.fanout import LocalBus
from handoff.hub import BACKLOG_LIMIT, Hub, split_backlog
from tests.conftest import ChatClient


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
        self.controls: list[dict[str, object]] = []

    def push_event(self, event: StoredEvent) -> None:
        if event.seq > self.sent_seq:
            self.sent_seq = event.seq
            self.seqs.append(event.seq)

    def push_control(self, frame: dict[str, object]) -> None:
        self.controls.append(frame)


def bot_events(store: ConversationStore, conversation_id: str, n: int) -> list[StoredEvent]:
    return [store.append(conversation_id, {"type": "message", "author": "bot", "text": str(i)})
            for i in range(n)]


async def settled(hub: Hub) -> None:
    """Let the hub's background catch-ups finish."""
    while hub._tasks:
        await asyncio.gather(*hub._tasks)


async def test_a_follower_never_skips_a_gap_it_is_filled_from_the_store(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, _ = store.create_conversation(None)
    events = bot_events(store, conversation.id, 4)
    hub = Hub(store, None)  # type: ignore[arg-type]  # no bot turns here
    follower = Recorder(sent_seq=0)
    await hub.subscribe(conversation.id, follower, events[0].seq)
    # Announced out of order (another process stored seq 2 and 3 and has not told us yet).
    hub.publish(conversation.id, [events[3]])
    await settled(hub)
    assert follower.seqs == [events[1].seq, events[2].seq, events[3].seq]
    hub.publish(conversation.id, events[1:3])  # the late announcement changes nothing
    await settled(hub)
    assert follower.seqs == [e.seq for e in events[1:]]
    store.close()


class SlowLog:
    """The store's log, answering after other tasks had their turn (as a networked one
    would), so that events are published while a replay is being read."""

    def __init__(self, store: ConversationStore, during_read: list[StoredEvent],
                 hub: list[Hub]) -> None:
        self.store = store
        self.during_read = during_read
        self.hub = hub

    async def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]:
        answer = self.store.events_after(conversation_id, seq)
        for _ in range(3):
            await asyncio.sleep(0)
        while self.during_read:  # stored and published after the read was answered
            event = self.store.append(conversation_id, self.during_read.pop(0).frame)
            self.hub[0].publish(conversation_id, [event])
        return answer


async def test_events_published_while_the_replay_is_read_follow_it_in_order(
    tmp_path: Path,
) -> None:
    """Subscribing registers first, replays, then flushes what came meanwhile: the events
    published during the (awaited) replay read arrive after it, none lost, none twice."""
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, _ = store.create_conversation(None)
    before = bot_events(store, conversation.id, 3)
    later = [StoredEvent(0, {"type": "message", "author": "bot", "text": t}) for t in "xyz"]
    hubs: list[Hub] = []
    hub = Hub(store, None, event_log=SlowLog(store, later, hubs))  # type: ignore[arg-type]
    hubs.append(hub)
    follower = Recorder(sent_seq=0)
    await hub.subscribe(conversation.id, follower, 1)
    await settled(hub)
    assert follower.seqs == list(range(before[1].seq, before[0].seq + 6))
    assert hub._catching_up == {}
    store.close()


async def test_two_gateways_on_one_log_and_one_bus_deliver_each_others_events(
    tmp_path: Path,
) -> None:
    """Two hubs (two gateway processes) on one database file and one bus: a follower on
    either sees every event in seq order whichever hub stored it, and signals cross."""
    path = tmp_path / "gateway.db"
    bus = LocalBus()
    store_a, store_b = ConversationStore(path), ConversationStore(path)
    conversation, _ = store_a.create_conversation(None)
    hub_a = Hub(store_a, None, fanout=bus)  # type: ignore[arg-type]
    hub_b = Hub(store_b, None, fanout=bus)  # type: ignore[arg-type]
    on_a, on_b = Recorder(sent_seq=0), Recorder(sent_seq=0)
    await hub_a.subscribe(conversation.id, on_a, 0)
    await hub_b.subscribe(conversation.id, on_b, 0)
    stored = []
    for n in range(6):
        store, hub = (store_a, hub_a) if n % 2 else (store_b, hub_b)
        event = store.append(conversation.id, {"type": "message", "author": "bot",
                                               "text": str(n)})
        stored.append(event.seq)
        hub.publish(conversation.id, [event])
    await settled(hub_a)
    await settled(hub_b)
    assert on_a.seqs == stored and on_b.seqs == stored
    hub_a.signal(conversation.id, {"type": "typing", "on": True}, "agent")
    assert on_a.controls == on_b.controls == [{"type": "typing", "on": True}]
    await hub_a.close()
    await hub_b.close()
    hub_a.signal(conversation.id, {"type": "typing", "on": False})
    assert len(on_b.controls) == 1  # a closed hub no longer listens to the bus
    store_a.close()
    store_b.close()


async def test_a_notice_from_another_process_makes_a_follower_read_the_log(
    tmp_path: Path,
) -> None:
    """A notice carries no events: the hub reads what its followers lack; a notice ahead
    of what the log holds yet costs a read and nothing else."""
    store = ConversationStore(tmp_path / "gateway.db")
    conversation, _ = store.create_conversation(None)
    hub = Hub(store, None)  # type: ignore[arg-type]
    follower = Recorder(sent_seq=0)
    await hub.subscribe(conversation.id, follower, 0)
    events = bot_events(store, conversation.id, 2)  # stored "elsewhere": no publish here
    hub.stored(conversation.id, events[-1].seq + 5)
    await settled(hub)
    assert follower.seqs == [e.seq for e in events] and hub._catching_up == {}
    later = bot_events(store, conversation.id, 1)
    hub.publish(conversation.id, later)
    assert follower.seqs == [e.seq for e in events + later]
    store.close()


class YieldingConversations(SqliteConversations):
    """The gateway database, but every call lets other tasks run first, as a networked
    database would: the sockets and bot turns must not rely on "no await in between"."""


def _yielding(name: str) -> Callable[..., Any]:
    inner = getattr(SqliteConversations, name)

    async def call(self: SqliteConversations, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.001)
        return await inner(self, *args, **kwargs)
    return call


for _name in [n for n in vars(SqliteConversations) if not n.startswith("_")]:
    setattr(YieldingConversations, _name, _yielding(_name))


async def test_a_store_that_awaits_keeps_every_socket_in_order_and_loses_nothing(
    make_scripted_gateway: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two tabs of one conversation, the second joining while the first sends a burst:
    each sees every event once and in seq order (ChatClient checks), every message is
    answered once or let go with a notice."""
    monkeypatch.setattr("handoff.hub.SqliteConversations", YieldingConversations)
    async with make_scripted_gateway() as gateway, connect(gateway.url) as ws1:
        first = ChatClient(ws1)
        await first.hello()
        for n in range(6):
            await first.say(f"hello {n}")
        async with connect(gateway.url) as ws2:
            second = ChatClient(ws2)
            await second.hello(conversation_id=first.conversation_id,
                               resume_token=first.resume_token, last_seq=0)
            for n in range(6, 10):
                await second.say(f"hello {n}")

            def shopper_seqs(frames: list[dict[str, Any]]) -> list[int]:
                return [f["seq"] for f in frames
                        if f["type"] == "message" and f["author"] == "shopper"]

            def answered(frames: list[dict[str, Any]]) -> list[int]:
                return [f["reply_to"] for f in frames if f.get("reply_to") is not None]

            def done(frames: list[dict[str, Any]]) -> bool:
                said = shopper_seqs(frames)
                return len(said) == 10 and max(said) in answered(frames)

            seen: dict[str, list[dict[str, Any]]] = {"first": [], "second": []}
            for name, client in (("first", first), ("second", second)):
                while not done(seen[name]):
                    seen[name].append(await client.recv(timeout=10))
            frames = seen["first"]
            # A burst longer than the backlog limit is answered by its newest message,
            # with a notice saying how many were let go: every message is one or the other.
            skipped = sum(f.get("skipped", 0) for f in frames)
            assert len(set(answered(frames))) == len(answered(frames))  # none twice
            assert set(answered(frames)) <= set(shopper_seqs(frames))
            assert len(answered(frames)) + skipped == 10
            assert first.last_seq <= second.last_seq  # the second saw the replay too
    # One bot turn per answered message, none repeated.
    turns = [e for e in gateway.bot.trackers[first.conversation_id] if e["event"] == "user"]
    assert len(turns) == len(answered(frames))


async def test_a_conversations_turn_lock_is_dropped_once_no_turn_needs_it(tmp_path: Path) -> None:
    """Turns of one conversation take its lock one at a time; a gateway that runs for months
    must not keep a lock for every conversation it ever answered."""
    from tests.scripted_bot import ScriptedBot

    store = ConversationStore(tmp_path / "gateway.db")
    bot = ScriptedBot()
    hub = Hub(store, bot)
    conversation, _ = store.create_conversation(None)
    for n in range(3):
        event, _new = store.append_shopper_message(
            conversation.id, f"m{n}", {"type": "message", "author": "shopper", "text": "hi"})
        await hub.shopper_message(conversation.id, event)
    await settled(hub)
    turns = [e for e in bot.trackers[conversation.id] if e["event"] == "user"]
    assert len(turns) == 3  # each message answered once, in one turn each
    assert not hub._locks
    await hub.close()
    store.close()
