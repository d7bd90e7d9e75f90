"""The conversation log on PostgreSQL and the fan-out between gateways over PostgreSQL and
Redis (handoff.db.pg_conversations, handoff.pgbus), against real servers: the schema
matches SQLite's; seqs stay contiguous with writers in several processes' pools; the
rules of who answers a message hold; events stored by one gateway reach a socket on
another in order and once, also across a lost LISTEN connection; signals cross over
Redis; a bot turn run by one gateway reaches the shopper's socket on another."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from handoff.db.conversations import DONE, PENDING, QUEUED, SKIPPED, ConversationStore
from handoff.db.pg_conversations import PostgresConversations
from handoff.hub import Hub
from handoff.pgbus import PostgresBus
from handoff.protocol import typing_frame
from tests.handoff.test_hub import Recorder
from tests.scaleout.servers import Postgres, Redis
from tests.scripted_bot import ScriptedBot

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]


@pytest.fixture
async def database(postgres: Postgres) -> AsyncIterator[str]:
    """The session's server with the gateway's tables empty (the schema migrated)."""
    store = await PostgresConversations.connect(postgres.url)
    await store.pool.execute(
        "TRUNCATE events, client_messages, handoffs, conversations RESTART IDENTITY CASCADE")
    await store.close()
    yield postgres.url


class Gateway:
    """What one gateway process holds for the chat path: its pool, its bus, its hub."""

    def __init__(self, store: PostgresConversations, bus: PostgresBus, hub: Hub) -> None:
        self.store, self.bus, self.hub = store, bus, hub

    @classmethod
    async def start(cls, database_url: str, redis_url: str,
                    bridge: ScriptedBot | None = None) -> Gateway:
        store = await PostgresConversations.connect(database_url, max_size=4)
        bus = PostgresBus(database_url, redis_url, store)
        await bus.start()
        hub = Hub(None, bridge, conversations=store, fanout=bus)  # type: ignore[arg-type]
        return cls(store, bus, hub)

    async def stop(self) -> None:
        await self.hub.close()
        await self.bus.close()
        await self.store.close()


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateways(database: str, redis: Redis) -> AsyncIterator[StartGateway]:
    """Starts gateways on the session's servers (``bridge``: the assistant it asks); all
    are stopped at the end, also when the test failed."""
    started: list[Gateway] = []

    async def start(bridge: ScriptedBot | None = None) -> Gateway:
        gateway = await Gateway.start(database, redis.url, bridge)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


async def followed(on: Gateway, stored_by: Gateway, role: str = "agent") -> tuple[str, Recorder]:
    """A new conversation (created through ``stored_by``) and a socket following it on ``on``."""
    conversation, _ = await stored_by.store.create_conversation(None)
    socket = Recorder(sent_seq=0)
    socket.role = role
    await on.hub.subscribe(conversation.id, socket, 0)
    return conversation.id, socket


async def until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_postgres_gets_every_table_and_column_of_the_sqlite_schema(
    database: str, tmp_path: Path
) -> None:
    ConversationStore(tmp_path / "gateway.db").close()
    sqlite = sqlite3.connect(tmp_path / "gateway.db")
    tables = [name for (name,) in sqlite.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    expected = {(table, row[1]) for table in tables
                for row in sqlite.execute(f"PRAGMA table_info({table})")}
    conn = await asyncpg.connect(database)
    found = {(row["table_name"], row["column_name"]) for row in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'")}
    versions = await conn.fetchval("SELECT max(version) FROM schema_version")
    await conn.close()
    assert found == expected
    assert versions == sqlite.execute("SELECT max(version) FROM schema_version").fetchone()[0]


async def test_writers_in_several_pools_give_one_conversation_contiguous_seqs(
    database: str
) -> None:
    stores = [await PostgresConversations.connect(database, max_size=4) for _ in range(2)]
    conversation, _ = await stores[0].create_conversation(None)

    async def writer(store: PostgresConversations, n: int) -> list[int]:
        return [(await store.append(conversation.id, {"type": "message", "author": "bot",
                                                      "text": f"{n}.{i}"})).seq
                for i in range(25)]

    seqs = await asyncio.gather(*(writer(stores[n % 2], n) for n in range(8)))
    assert sorted(s for batch in seqs for s in batch) == list(range(1, 201))
    assert all(batch == sorted(batch) for batch in seqs)
    assert [e.seq for e in await stores[1].events_after(conversation.id, 0)] == list(
        range(1, 201))
    for store in stores:
        await store.close()


async def test_who_answers_a_message_is_decided_as_in_sqlite(database: str) -> None:
    store = await PostgresConversations.connect(database)
    conversation, token = await store.create_conversation({"url": "https://shop/p"})
    assert (await store.authenticate(conversation.id, token)) is not None
    assert (await store.authenticate(conversation.id, "x" * 32)) is None
    message, new = await store.append_shopper_message(
        conversation.id, "c1", {"type": "message", "author": "shopper", "text": "hi"})
    again, repeated = await store.append_shopper_message(
        conversation.id, "c1", {"type": "message", "author": "shopper", "text": "hi"})
    assert new and not repeated and again.seq == message.seq
    assert await store.bot_state(conversation.id, message.seq) == PENDING
    assert [m.seq for m in await store.pending_messages(conversation.id)] == [message.seq]
    replies = await store.answer(conversation.id, message.seq, [
        {"type": "message", "author": "bot", "text": "Hello!",
         "buttons": [{"title": "Person", "payload": "/human_handoff"}]}])
    assert [e.seq for e in replies] == [message.seq + 1]
    assert await store.bot_state(conversation.id, message.seq) == DONE
    assert await store.answer(conversation.id, message.seq, [
        {"type": "message", "author": "bot", "text": "twice"}]) == []  # never twice
    assert await store.recent_buttons(conversation.id) == {"/human_handoff"}
    second, _ = await store.append_shopper_message(
        conversation.id, "c2", {"type": "message", "author": "shopper", "text": "person"})
    await store.answer(conversation.id, second.seq, [
        {"type": "handoff", "trigger": "intent", "reason": "asked for a person"}])
    queued = await store.get(conversation.id)
    assert queued is not None and queued.mode == QUEUED
    assert await store.pool.fetchval(
        "SELECT state FROM handoffs WHERE conversation_id = $1", conversation.id) == "new"
    third, _ = await store.append_shopper_message(
        conversation.id, "c3", {"type": "message", "author": "shopper", "text": "hello?"})
    assert await store.bot_state(conversation.id, third.seq) == SKIPPED  # a person's now
    await store.close()


async def test_events_stored_by_one_gateway_reach_a_socket_on_another_in_order_once(
    gateways: StartGateway,
) -> None:
    a, b = await gateways(), await gateways()
    conversation, socket = await followed(on=b, stored_by=a)
    stored = []
    for n in range(30):
        gateway = a if n % 3 else b
        event = await gateway.store.append(conversation, {"type": "message",
                                                             "author": "bot", "text": str(n)})
        gateway.hub.publish(conversation, [event])
        stored.append(event.seq)
    await until(lambda: socket.seqs == stored)
    await asyncio.sleep(0.2)  # late or repeated notices add nothing
    assert socket.seqs == stored


async def test_a_lost_listen_connection_is_resynced_and_nothing_stored_meanwhile_is_missed(
    gateways: StartGateway,
) -> None:
    a, b = await gateways(), await gateways()
    conversation, socket = await followed(on=b, stored_by=a)
    first = await a.store.append(conversation, {"type": "message", "author": "bot",
                                                   "text": "before"})
    await until(lambda: socket.seqs == [first.seq])
    listening = b.bus._conn
    assert listening is not None
    listener_pid = listening.get_server_pid()
    b.bus.reconnect_delay = 1.0  # a window in which B has no LISTEN connection
    # The database drops gateway B's LISTEN connection (a restart, a network cut) ...
    await a.store.pool.execute("SELECT pg_terminate_backend($1)", listener_pid)
    await until(listening.is_closed)
    # ... and events are stored while B hears nothing.
    missed = [await a.store.append(conversation, {"type": "message", "author": "bot",
                                                     "text": f"while away {n}"})
              for n in range(5)]
    await until(lambda: socket.seqs == [first.seq, *(e.seq for e in missed)])
    assert b.bus._conn is not None and b.bus._conn.get_server_pid() != listener_pid
    later = await a.store.append(conversation, {"type": "message", "author": "bot",
                                                   "text": "after"})
    await until(lambda: socket.seqs[-1] == later.seq)
    assert socket.seqs == list(range(1, later.seq + 1))


async def test_signals_cross_to_other_gateways_over_redis_once_each(
    gateways: StartGateway,
) -> None:
    a, b = await gateways(), await gateways()
    conversation, on_a = await followed(on=a, stored_by=a)
    on_b = Recorder(sent_seq=0)
    await b.hub.subscribe(conversation, on_b, 0)
    for on in (True, False, True):
        a.hub.signal(conversation, {"type": "typing", "on": on}, "agent")
    expected = [{"type": "typing", "on": on} for on in (True, False, True)]
    assert on_a.controls == expected  # this process's sockets at once
    await until(lambda: len(on_b.controls) == 3)
    await asyncio.sleep(0.2)
    assert on_b.controls == expected and on_a.controls == expected  # in order, none twice


async def test_a_bot_turn_run_by_one_gateway_reaches_the_shoppers_socket_on_another(
    gateways: StartGateway,
) -> None:
    a, b = await gateways(ScriptedBot()), await gateways()
    conversation, socket = await followed(on=b, stored_by=a, role="shopper")
    message, _ = await a.store.append_shopper_message(
        conversation, "c1", {"type": "message", "author": "shopper", "text": "hello"})
    a.hub.publish(conversation, [message])
    await a.hub.shopper_message(conversation, message)
    await until(lambda: len(socket.seqs) >= 2)
    events = await b.store.events_after(conversation, 0)
    assert [e.frame["author"] for e in events][:2] == ["shopper", "bot"]
    assert socket.seqs == [e.seq for e in events]
    assert await a.store.bot_state(conversation, message.seq) == DONE
    # The turn's typing signals reached the other gateway's socket too, in order.
    await until(lambda: len(socket.controls) == 2)
    assert socket.controls == [typing_frame(True), typing_frame(False)]


class HeldBot(ScriptedBot):
    """The scripted assistant, counting the messages it is sent; with ``hold`` set, a turn
    waits until it is released (a slow Rasa)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.hold: asyncio.Event | None = None

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        self.sent.append(text)
        if self.hold is not None:
            await self.hold.wait()
        return await super().send(sender, text, metadata)


async def test_one_gateway_runs_a_turn_and_another_takes_it_over_only_when_its_lease_ends(
    gateways: StartGateway,
) -> None:
    """The shopper's message reaches two gateways' hubs (a reconnect to another gateway
    mid-turn): only the one that claimed the turn sends it to Rasa, the other's shopper
    gets that answer; a gateway that dies holding a turn loses it when its lease runs
    out, and another answers the message, once."""
    bots = [HeldBot(), HeldBot()]
    a, b = await gateways(bots[0]), await gateways(bots[1])
    conversation, on_b = await followed(on=b, stored_by=a, role="shopper")
    bots[0].hold = asyncio.Event()
    message, _ = await a.store.append_shopper_message(
        conversation, "c1", {"type": "message", "author": "shopper", "text": "hello"})
    a.hub.answer_pending(conversation)
    await until(lambda: bots[0].sent == ["hello"])
    b.hub.answer_pending(conversation)  # the shopper came back on gateway B meanwhile
    await asyncio.sleep(0.3)
    assert bots[1].sent == []  # B does not send what A is sending
    bots[0].hold.set()
    await until(lambda: len(on_b.seqs) == 2)  # A's answer, on B's socket
    assert await a.store.bot_state(conversation, message.seq) == DONE

    # A gateway holding a turn dies: its lease (short here) runs out and B takes over.
    second, _ = await a.store.append_shopper_message(
        conversation, "c2", {"type": "message", "author": "shopper", "text": "thanks"})
    assert (await a.store.claim_turn(conversation, second.seq, "a-gateway-that-died",
                                     0.5)).granted
    b.hub.answer_pending(conversation)
    await until(lambda: bots[1].sent == ["thanks"], timeout=5)
    await until(lambda: len(on_b.seqs) == 4)
    events = await b.store.events_after(conversation, 0)
    assert [e.frame["author"] for e in events] == ["shopper", "bot", "shopper", "bot"]
    assert bots[0].sent == ["hello"] and bots[1].sent == ["thanks"]  # each sent once
