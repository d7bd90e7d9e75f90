"""Conversations and their numbered event log on PostgreSQL, for several gateway processes
sharing one database: :class:`PostgresConversations` is the :class:`Conversations` the
shopper sockets and the bot turns use, and the :class:`~handoff.fanout.EventLog` the hub
reads a conversation's events back from.

The same rules as the SQLite store (:class:`handoff.db.conversations.ConversationStore`),
kept across processes:

- **seq**: an event takes its conversation's next ``seq`` with ``UPDATE conversations SET
  last_seq = last_seq + 1 … RETURNING`` in the transaction that inserts it. The row lock
  orders writers from every process; a writer that dies rolls back, leaving no gap.
- **announced in the transaction**: every transaction that stores events also calls
  ``pg_notify`` on :data:`EVENTS_CHANNEL` with ``"<conversation id>:<last seq>"``.
  PostgreSQL delivers a notification only if its transaction commits, and in commit
  order, so a notice means "the log holds every event up to this seq" (read by
  :class:`handoff.pgbus.PostgresBus`).
- **who answers a message** is decided in the storing transaction, as in SQLite: a
  shopper message is ``pending`` only if the conversation is in bot mode then, and the
  bot's answer is stored only while the message is still pending and the chat is still
  the bot's (``SELECT … FOR UPDATE`` on the conversation row serialises this with an
  agent taking the chat from another process).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from typing import Any

import asyncpg

from handoff.db.conversations import (
    BOT,
    DONE,
    PENDING,
    QUEUED,
    SKIPPED,
    Conversation,
    StoredEvent,
    TurnClaim,
    hash_token,
    is_token,
)
from handoff.db.pg_schema import migrate_postgres

__all__ = ["EVENTS_CHANNEL", "PostgresConversations"]

#: The LISTEN/NOTIFY channel that carries "<conversation id>:<seq>" for stored events.
EVENTS_CHANNEL = "shopchat_events"


def _conversation(row: asyncpg.Record) -> Conversation:
    page = json.loads(row["page"]) if row["page"] else None
    return Conversation(row["id"], row["mode"], page, int(row["last_seq"]), row["customer_id"],
                        row["lang"])


class PostgresConversations:
    """The conversation store on a PostgreSQL connection pool (asyncpg)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1,
                      max_size: int = 10) -> PostgresConversations:
        """A pool on ``url`` (``postgresql://…``), the schema migrated to the newest."""
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        async with pool.acquire() as conn:
            await migrate_postgres(conn)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        await self.pool.fetchval("SELECT 1")

    # -- conversations --------------------------------------------------

    async def create_conversation(self, page: dict[str, Any] | None, lang: str = "en"
                                  ) -> tuple[Conversation, str]:
        conversation_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(24)
        now = time.time()
        await self.pool.execute(
            "INSERT INTO conversations (id, token_hash, mode, page, last_seq, created_at, "
            "updated_at, lang) VALUES ($1, $2, $3, $4, 0, $5, $5, $6)",
            conversation_id, hash_token(token), BOT, json.dumps(page) if page else None, now,
            lang)
        return Conversation(conversation_id, BOT, page, 0, lang=lang), token

    async def authenticate(self, conversation_id: str, token: str) -> Conversation | None:
        if not is_token(token):
            return None
        row = await self.pool.fetchrow("SELECT * FROM conversations WHERE id = $1",
                                       conversation_id)
        if row is None or not hmac.compare_digest(row["token_hash"], hash_token(token)):
            return None
        return _conversation(row)

    async def get(self, conversation_id: str) -> Conversation | None:
        row = await self.pool.fetchrow("SELECT * FROM conversations WHERE id = $1",
                                       conversation_id)
        return None if row is None else _conversation(row)

    async def set_page(self, conversation_id: str, page: dict[str, Any]) -> None:
        await self.pool.execute("UPDATE conversations SET page = $1, updated_at = $2 WHERE id = $3",
                                json.dumps(page), time.time(), conversation_id)

    async def set_lang(self, conversation_id: str, lang: str) -> None:
        await self.pool.execute("UPDATE conversations SET lang = $1, updated_at = $2 WHERE id = $3",
                                lang, time.time(), conversation_id)

    async def set_customer(self, conversation_id: str, customer_id: str) -> None:
        await self.pool.execute(
            "UPDATE conversations SET customer_id = $1, updated_at = $2 WHERE id = $3",
            customer_id, time.time(), conversation_id)

    async def last_seqs(self, conversation_ids: list[str]) -> dict[str, int]:
        """Each conversation's newest seq: what a process resyncs to after it lost notices."""
        rows = await self.pool.fetch(
            "SELECT id, last_seq FROM conversations WHERE id = ANY($1::text[])",
            conversation_ids)
        return {row["id"]: int(row["last_seq"]) for row in rows}

    # -- events ---------------------------------------------------------

    async def append(self, conversation_id: str, frame: dict[str, Any]) -> StoredEvent:
        """Store one event, giving it the conversation's next ``seq``."""
        async with self.pool.acquire() as conn, conn.transaction():
            event = await self._append(conn, conversation_id, frame)
            await self._notify(conn, conversation_id, [event])
            return event

    async def append_shopper_message(self, conversation_id: str, client_id: str,
                                     frame: dict[str, Any]) -> tuple[StoredEvent, bool]:
        """Store a shopper message once per ``client_id``: the stored event, and whether it
        was new (a repeat gets the first copy's). It is the bot's (``pending``) only if the
        conversation is in bot mode as it is stored."""
        async with self.pool.acquire() as conn, conn.transaction():
            mode = await conn.fetchval(
                "SELECT mode FROM conversations WHERE id = $1 FOR UPDATE", conversation_id)
            if mode is None:
                raise KeyError(f"no conversation {conversation_id}")
            seq = await conn.fetchval(
                "SELECT seq FROM client_messages WHERE conversation_id = $1 AND client_id = $2",
                conversation_id, client_id)
            if seq is not None:
                return await self._event(conn, conversation_id, seq), False
            event = await self._append(conn, conversation_id, {**frame, "client_id": client_id})
            await conn.execute(
                "INSERT INTO client_messages (conversation_id, client_id, seq, bot_state) "
                "VALUES ($1, $2, $3, $4)",
                conversation_id, client_id, event.seq, PENDING if mode == BOT else SKIPPED)
            await self._notify(conn, conversation_id, [event])
            return event, True

    async def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]:
        rows = await self.pool.fetch(
            "SELECT seq, body FROM events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq",
            conversation_id, seq)
        return [StoredEvent(int(row["seq"]), json.loads(row["body"])) for row in rows]

    async def recent_buttons(self, conversation_id: str, limit: int = 20) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT body FROM events WHERE conversation_id = $1 AND type = 'message' "
            "ORDER BY seq DESC LIMIT $2", conversation_id, limit)
        payloads: set[str] = set()
        for row in rows:
            frame = json.loads(row["body"])
            if frame.get("author") == "bot":
                payloads.update(button["payload"] for button in frame.get("buttons", []))
        return payloads

    # -- the bot's progress on shopper messages --------------------------

    async def pending_messages(self, conversation_id: str) -> list[StoredEvent]:
        rows = await self.pool.fetch(
            "SELECT e.seq, e.body FROM client_messages m JOIN events e "
            "ON e.conversation_id = m.conversation_id AND e.seq = m.seq "
            "WHERE m.conversation_id = $1 AND m.bot_state = $2 ORDER BY m.seq",
            conversation_id, PENDING)
        return [StoredEvent(int(row["seq"]), json.loads(row["body"])) for row in rows]

    async def bot_state(self, conversation_id: str, message_seq: int) -> str | None:
        state = await self.pool.fetchval(
            "SELECT bot_state FROM client_messages WHERE conversation_id = $1 AND seq = $2",
            conversation_id, message_seq)
        return None if state is None else str(state)

    async def claim_turn(self, conversation_id: str, message_seq: int, owner: str,
                         lease: float) -> TurnClaim:
        """Take the bot's turn on a pending message for ``lease`` seconds: granted when
        nobody holds it, its holder's lease ran out, or ``owner`` holds it already. The
        row's lock makes two processes' claims on one message take turns."""
        now = time.time()
        claimed = await self.pool.fetchval(
            "UPDATE client_messages SET turn_owner = $1, turn_until = $2 "
            "WHERE conversation_id = $3 AND seq = $4 AND bot_state = $5 "
            "AND (turn_owner IS NULL OR turn_owner = $1 OR turn_until < $6) RETURNING 1",
            owner, now + lease, conversation_id, message_seq, PENDING, now)
        if claimed:
            return TurnClaim(True)
        until = await self.pool.fetchval(
            "SELECT turn_until FROM client_messages WHERE conversation_id = $1 AND seq = $2",
            conversation_id, message_seq)
        return TurnClaim(False, max(0.0, (until or now) - now))

    async def answer(self, conversation_id: str, message_seq: int,
                     replies: list[dict[str, Any]], *, skip_older: bool = False,
                     owner: str | None = None) -> list[StoredEvent]:
        """Store the bot's replies to one shopper message and mark it answered, atomically;
        nothing is stored (and the message is let go) if the chat is not the bot's any
        more or the message is not pending, and nothing at all if ``owner`` no longer
        holds its turn (another process took it over). A ``handoff`` reply opens a
        ``new`` handoff and queues the conversation in the same transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            mode = await conn.fetchval(
                "SELECT mode FROM conversations WHERE id = $1 FOR UPDATE", conversation_id)
            pending = await conn.fetchrow(
                "SELECT turn_owner FROM client_messages WHERE conversation_id = $1 AND seq = $2 "
                "AND bot_state = $3", conversation_id, message_seq, PENDING)
            if owner is not None and pending is not None and pending["turn_owner"] != owner:
                return []  # another process took the turn over: its answer counts
            if mode != BOT or pending is None:
                await self._skip(conn, conversation_id, message_seq, older=skip_older)
                return []
            if skip_older:
                await self._skip(conn, conversation_id, message_seq - 1, older=True)
            events = [await self._append(conn, conversation_id, frame) for frame in replies]
            await conn.execute(
                "UPDATE client_messages SET bot_state = $1 WHERE conversation_id = $2 "
                "AND seq = $3", DONE, conversation_id, message_seq)
            handoff = next((frame for frame in replies if frame["type"] == "handoff"), None)
            if handoff is not None:
                await conn.execute(
                    "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at) "
                    "VALUES ($1, 'new', $2, $3, $4)",
                    conversation_id, handoff["trigger"], handoff["reason"], time.time())
                await conn.execute("UPDATE conversations SET mode = $1 WHERE id = $2",
                                   QUEUED, conversation_id)
            await self._notify(conn, conversation_id, events)
            return events

    async def skip_pending(self, conversation_id: str, message_seq: int, *,
                           older: bool = False) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._skip(conn, conversation_id, message_seq, older=older)

    # -- internals --------------------------------------------------------

    @staticmethod
    async def _skip(conn: asyncpg.Connection, conversation_id: str, message_seq: int, *,
                    older: bool) -> None:
        await conn.execute(
            "UPDATE client_messages SET bot_state = $1 WHERE conversation_id = $2 "
            f"AND bot_state = $3 AND seq {'<=' if older else '='} $4",
            SKIPPED, conversation_id, PENDING, message_seq)

    @staticmethod
    async def _append(conn: asyncpg.Connection, conversation_id: str,
                      frame: dict[str, Any]) -> StoredEvent:
        now = time.time()
        seq = await conn.fetchval(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1 WHERE id = $2 "
            "RETURNING last_seq", now, conversation_id)
        if seq is None:
            raise KeyError(f"no conversation {conversation_id}")
        stored = {**frame, "seq": int(seq), "ts": round(now, 3)}
        await conn.execute(
            "INSERT INTO events (conversation_id, seq, type, body, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            conversation_id, seq, frame["type"], json.dumps(stored), now)
        return StoredEvent(int(seq), stored)

    @staticmethod
    async def _event(conn: asyncpg.Connection, conversation_id: str, seq: int) -> StoredEvent:
        body = await conn.fetchval(
            "SELECT body FROM events WHERE conversation_id = $1 AND seq = $2",
            conversation_id, seq)
        return StoredEvent(int(seq), json.loads(body))

    @staticmethod
    async def _notify(conn: asyncpg.Connection, conversation_id: str,
                      events: list[StoredEvent]) -> None:
        """Announce, inside the storing transaction, that the log reaches the last event."""
        if events:
            await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL,
                               f"{conversation_id}:{events[-1].seq}")
