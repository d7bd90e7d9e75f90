"""``shopchat db copy``: a shop's SQLite gateway database into an empty PostgreSQL one,
against a real server: every table's rows, each conversation's transcript and seqs,
identities that continue after the copied ids, an agent who can still sign in; a target
in use is refused and bad addresses get a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from handoff.db.agents import AgentStore
from handoff.db.conversations import ConversationStore
from handoff.db.copy import sqlite_path
from handoff.db.desk import DeskStore
from handoff.db.pg_conversations import PostgresConversations
from handoff.db.pg_schema import migrate_postgres
from handoff.db.schema import MIGRATIONS
from handoff.db.tokens import TokenStore
from tests.conftest import run_shopchat
from tests.scaleout.servers import Postgres

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

PASSWORD = "correct horse battery"


@pytest.fixture
async def target(postgres: Postgres) -> AsyncIterator[str]:
    """A fresh, empty database on the session's server for each test."""
    name = f"copy_{id(object())}"
    admin = await asyncpg.connect(postgres.url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(postgres.url)
    await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await admin.close()


def a_shop(path: Path) -> tuple[list[str], int]:
    """A gateway database with what a running shop has: chats with transcripts, one
    handed to the queue, a note, an agent, an API token. Its conversations and the id
    of its last handoff."""
    store = ConversationStore(path)
    conversations = []
    for n in range(12):
        conversation, _ = store.create_conversation({"url": f"https://shop.example/p/{n}"})
        conversations.append(conversation.id)
        for turn in range(n % 4 + 1):
            message, _ = store.append_shopper_message(
                conversation.id, f"c{turn}",
                {"type": "message", "author": "shopper", "text": f"question {turn} <b>&</b>"})
            store.answer(conversation.id, message.seq, [
                {"type": "message", "author": "bot", "text": f"answer {turn}",
                 "buttons": [{"title": "A person", "payload": "/human_handoff"}]}])
    asked, _ = store.append_shopper_message(
        conversations[0], "human", {"type": "message", "author": "shopper", "text": "a person"})
    store.answer(conversations[0], asked.seq, [
        {"type": "handoff", "trigger": "intent", "reason": "asked for a person"}])
    agent = AgentStore(store).add("dana@shop.example", "Dana", PASSWORD, capacity=3)
    DeskStore(store).add_note(conversations[0], agent.id, agent.name, "n1", "VIP customer")
    TokenStore(store).add("erp")
    last_handoff = store.db.execute("SELECT max(id) FROM handoffs").fetchone()[0]
    store.close()
    return conversations, last_handoff


async def test_a_shops_database_arrives_whole_and_goes_on_from_where_it_was(
    tmp_path: Path, target: str
) -> None:
    source = tmp_path / "gateway.db"
    conversations, last_handoff = a_shop(source)
    result = await asyncio.to_thread(run_shopchat, "db", "copy", "--from",
                                     f"sqlite:///{source}", "--to", target)
    assert result.returncode == 0, result.stderr
    assert "seqs of 12 conversations" in result.stdout
    copied = await PostgresConversations.connect(target)
    local = ConversationStore(source)
    for conversation_id in conversations:
        assert await copied.events_after(conversation_id, 0) == local.events_after(
            conversation_id, 0)
        assert (await copied.get(conversation_id)) == local.get(conversation_id)
    # The copy goes on: the next event takes the next seq, the next handoff the next id.
    first = conversations[1]
    event = await copied.append(first, {"type": "message", "author": "bot", "text": "more"})
    assert event.seq == local.get(first).last_seq + 1  # type: ignore[union-attr]
    new_handoff = await copied.pool.fetchval(
        "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at) "
        "VALUES ($1, 'new', 'intent', 'r', 0) RETURNING id", first)
    assert new_handoff == last_handoff + 1
    agent = await copied.pool.fetchrow("SELECT * FROM agents")
    assert agent["email"] == "dana@shop.example"
    assert await copied.pool.fetchval("SELECT text FROM notes") == "VIP customer"
    queued = await copied.get(conversations[0])
    assert queued is not None and queued.mode == "queued"
    await copied.close()
    local.close()


async def test_a_target_in_use_is_refused_and_left_as_it_was(
    tmp_path: Path, target: str
) -> None:
    source = tmp_path / "gateway.db"
    a_shop(source)
    conn = await asyncpg.connect(target)
    await migrate_postgres(conn)
    await conn.execute("INSERT INTO conversations (id, token_hash, created_at, updated_at) "
                       "VALUES ('live', 'x', 0, 0)")
    result = await asyncio.to_thread(run_shopchat, "db", "copy", "--from", str(source),
                                     "--to", target)
    assert result.returncode == 1
    assert "already holds gateway data" in result.stderr
    assert await conn.fetchval("SELECT count(*) FROM conversations") == 1
    assert await conn.fetchval("SELECT count(*) FROM events") == 0
    await conn.close()


async def test_bad_addresses_get_a_clear_error(tmp_path: Path, target: str) -> None:
    source = tmp_path / "gateway.db"
    a_shop(source)
    for args, message in (
        (("--from", str(tmp_path / "missing.db"), "--to", target), "No gateway database"),
        (("--from", "mysql://shop/db", "--to", target), "Not a SQLite address"),
        (("--from", str(source), "--to", "sqlite:///other.db"), "Not a PostgreSQL address"),
        (("--from", str(source), "--to", "postgresql://nobody@127.0.0.1:1/none"),
         "Cannot connect"),
    ):
        result = await asyncio.to_thread(run_shopchat, "db", "copy", *args)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_sqlite_addresses_name_relative_and_absolute_files() -> None:
    assert sqlite_path("sqlite:///var/gateway.db") == Path("var/gateway.db")
    assert sqlite_path("sqlite:////srv/shop/gateway.db") == Path("/srv/shop/gateway.db")
    assert sqlite_path("var/gateway.db") == Path("var/gateway.db")


async def test_db_migrate_brings_either_database_to_the_newest_schema(
    tmp_path: Path, target: str
) -> None:
    newest = MIGRATIONS[-1].version
    result = await asyncio.to_thread(run_shopchat, "db", "migrate", "--database", target)
    assert result.returncode == 0, result.stderr
    assert f"schema version {newest}" in result.stdout
    conn = await asyncpg.connect(target)
    assert await conn.fetchval("SELECT max(version) FROM schema_version") == newest
    await conn.close()
    path = tmp_path / "gateway.db"
    result = await asyncio.to_thread(run_shopchat, "db", "migrate", "--database", str(path))
    assert result.returncode == 0 and f"schema version {newest}" in result.stdout
    result = await asyncio.to_thread(run_shopchat, "db", "migrate", "--database",
                                     "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 1 and "Cannot migrate" in result.stderr
