"""The gateway's SQLite store: conversations and their numbered event log.

Every server→client event is a row here before it is written to any socket;
its ``seq`` is allocated in the same transaction, so the log is the truth a
reconnecting client catches up from.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from handoff.db.schema import migrate

log = logging.getLogger("gateway.db")

__all__ = [
    "AGENT",
    "BOT",
    "CHECKPOINT_INTERVAL",
    "DONE",
    "PENDING",
    "QUEUED",
    "SKIPPED",
    "Change",
    "Checkpoints",
    "Conversation",
    "ConversationStore",
    "Conversations",
    "SqliteConversations",
    "Statement",
    "StoredEvent",
    "TurnClaim",
    "hash_token",
    "is_token",
    "skip_all_pending",
]


#: Conversation modes: who answers the shopper.
BOT, QUEUED, AGENT = "bot", "queued", "agent"

#: A shopper message's ``bot_state``. Only a message stored in bot mode is ever
#: ``pending``; one stored while a person has (or is about to have) the chat is
#: ``skipped`` in the same transaction, so no restart, close or hand-back can
#: pass it to Rasa later.
PENDING, DONE, SKIPPED = "pending", "done", "skipped"


#: One SQL statement with its parameters, to run inside a change's transaction
#: (:meth:`ConversationStore.apply`'s ``updates``, a webhook's outbox rows).
Statement = tuple[str, list[Any]]


def skip_all_pending(conversation_id: str) -> Statement:
    """An update for :meth:`ConversationStore.apply`: let go of every pending message.

    Ending an agent's chat includes it, so that the bot, taking over again, never
    answers a backlog left from before (rows that databases from before
    storage-time ``skipped`` may still hold, or a bot-mode message a crash left
    pending while the chat was with a person).
    """
    return (
        "UPDATE client_messages SET bot_state = ? WHERE conversation_id = ? AND bot_state = ?",
        [SKIPPED, conversation_id, PENDING],
    )


@dataclass(frozen=True)
class Conversation:
    id: str
    mode: str
    page: dict[str, Any] | None
    last_seq: int
    #: The shop customer the storefront vouched for (a verified signed identity), if any.
    customer_id: str | None = None
    #: The language the shopper's widget speaks (handoff.protocol.LANGUAGES).
    lang: str = "en"


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    frame: dict[str, Any]


#: Every secret token the gateway hands out is URL-safe base64 (``secrets.token_urlsafe``),
#: API tokens with an ``sc_`` prefix.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def is_token(value: str) -> bool:
    """Whether ``value`` could be a token the gateway made: checked before any lookup, so
    that text no token can be (empty, huge, not ASCII) is turned away for what it is."""
    return _TOKEN.fullmatch(value) is not None


def hash_token(token: str) -> str:
    """Secrets are stored only as their SHA-256: a copied database gives no working tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    """A conversation row as the integration API and the workbench show it."""
    return {"id": row["id"], "mode": row["mode"], "customer_id": row["customer_id"],
            "page": json.loads(row["page"]) if row["page"] else None,
            "last_seq": row["last_seq"], "lang": row["lang"], "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


@dataclass(frozen=True)
class TurnClaim:
    """Whether a gateway process may run the bot's turn on a shopper message now; if not,
    in how many seconds the other process's lease on it runs out."""

    granted: bool
    retry_in: float = 0.0


@dataclass(frozen=True)
class Change:
    """What :meth:`ConversationStore.apply` stored, and whether it was new."""

    events: list[StoredEvent]
    new: bool


def _write_ahead_log(conn: sqlite3.Connection, patience: float = 10.0) -> None:
    """Put the file in WAL mode. The switch needs the file to itself and SQLite refuses
    it at once, without waiting, while another process opens the same new file (the
    gateway and a CLI command at first start): try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


#: Seconds between the gateway's checkpoints of the write-ahead log (see Checkpoints).
CHECKPOINT_INTERVAL = 1.0
#: What SQLite's own automatic checkpoint waits for: pages in the write-ahead log.
SQLITE_AUTOCHECKPOINT = 1000


class Checkpoints:
    """Checkpoints of the write-ahead log in a thread, instead of inside a commit.

    By default SQLite copies the log back into the database file (a checkpoint) in
    the commit that brings the log to 1,000 pages, and with ``synchronous=NORMAL``
    that checkpoint is where the file is fsynced: in bench/agent_relay.py about one
    commit in a hundred took 3 to 22 ms instead of 0.1, and the whole event loop,
    every socket of the gateway, waited for it. While this runs, the store's
    connection never checkpoints; a connection of its own does, every
    ``interval`` seconds, in a thread (SQLite lets go of the GIL meanwhile), in
    ``PASSIVE`` mode: it never waits for the writer and the writer never waits for
    it. What a commit promises does not change: the same fsyncs happen, elsewhere.
    """

    def __init__(self, store: ConversationStore, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._conn: sqlite3.Connection | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = sqlite3.connect(self.store.path, isolation_level=None,
                                     check_same_thread=False)
        self.store.db.execute("PRAGMA wal_autocheckpoint=0")
        self._task = asyncio.create_task(self._run())

    async def checkpoint(self) -> None:
        """Copy what the log holds into the database file now, as far as readers allow."""
        conn = self._conn
        assert conn is not None, "start() first"
        await asyncio.to_thread(lambda: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                try:
                    await self.checkpoint()
                except sqlite3.Error:  # the next round tries again; commits go on meanwhile
                    log.exception("checkpoint of %s failed", self.store.path)

    async def close(self) -> None:
        """Stop (after a checkpoint under way) and give checkpoints back to the store."""
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.store.db.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT}")


class ConversationStore:
    """Conversations, events and shopper-message bookkeeping in one SQLite file (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions explicitly with BEGIN IMMEDIATE.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        _write_ahead_log(conn)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        migrate(conn)

    def close(self) -> None:
        self.db.conn.close()

    def ping(self) -> None:
        """Raise if the database cannot be read."""
        self.db.execute("SELECT 1").fetchone()

    # -- conversations --------------------------------------------------

    def create_conversation(self, page: dict[str, Any] | None,
                            lang: str = "en") -> tuple[Conversation, str]:
        """A new conversation and its resume token (returned once, stored only hashed)."""
        conversation_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(24)
        now = time.time()
        self.db.table("conversations").insert(
            {
                "id": conversation_id,
                "token_hash": hash_token(token),
                "mode": "bot",
                "page": json.dumps(page) if page else None,
                "last_seq": 0,
                "created_at": now,
                "updated_at": now,
                "lang": lang,
            }
        )
        return Conversation(conversation_id, "bot", page, 0, lang=lang), token

    def authenticate(self, conversation_id: str, token: str) -> Conversation | None:
        """The conversation if ``token`` is its resume token, else ``None``."""
        if not is_token(token):
            return None
        row = self._row(conversation_id)
        if row is None or not hmac.compare_digest(row["token_hash"], hash_token(token)):
            return None
        return self._conversation(row)

    def get(self, conversation_id: str) -> Conversation | None:
        row = self._row(conversation_id)
        return None if row is None else self._conversation(row)

    def active_since(self, since: float, limit: int) -> list[dict[str, Any]]:
        """Conversations active since ``since`` (Unix time), most recent first."""
        rows = self.db.query("SELECT * FROM conversations WHERE updated_at >= ? "
                             "ORDER BY updated_at DESC LIMIT ?", [since, limit])
        return [_summary(row) for row in rows]

    def record(self, conversation_id: str) -> dict[str, Any] | None:
        """A conversation with its whole transcript and handoffs; None if there is none."""
        row = self._row(conversation_id)
        if row is None:
            return None
        handoffs = list(self.db.query(
            "SELECT id, state, trigger, reason, agent_id, queued_at, assigned_at, "
            "first_response_at, ended_at, resolution, csat_score, csat_comment FROM handoffs "
            "WHERE conversation_id = ? ORDER BY id", [conversation_id]))
        events = self.events_after(conversation_id, 0)
        return {**_summary(row), "transcript": [{"seq": e.seq, **e.frame} for e in events],
                "handoffs": handoffs}

    def set_page(self, conversation_id: str, page: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE conversations SET page = ?, updated_at = ? WHERE id = ?",
            [json.dumps(page), time.time(), conversation_id],
        )

    def set_lang(self, conversation_id: str, lang: str) -> None:
        """The shopper's widget speaks ``lang`` now (one of handoff.protocol.LANGUAGES)."""
        self.db.execute("UPDATE conversations SET lang = ?, updated_at = ? WHERE id = ?",
                        [lang, time.time(), conversation_id])

    def set_customer(self, conversation_id: str, customer_id: str) -> None:
        """Record the verified customer; only ever called after the signature checked out."""
        self.db.execute(
            "UPDATE conversations SET customer_id = ?, updated_at = ? WHERE id = ?",
            [customer_id, time.time(), conversation_id],
        )

    def _row(self, conversation_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
        return rows[0] if rows else None

    @staticmethod
    def _conversation(row: dict[str, Any]) -> Conversation:
        page = json.loads(row["page"]) if row["page"] else None
        return Conversation(row["id"], row["mode"], page, row["last_seq"], row["customer_id"],
                            row["lang"])

    # -- events ---------------------------------------------------------

    def append(self, conversation_id: str, frame: dict[str, Any]) -> StoredEvent:
        """Store one event, giving it the conversation's next ``seq``."""
        with self._transaction() as conn:
            return self._append(conn, conversation_id, frame)

    def append_shopper_message(
        self, conversation_id: str, client_id: str, frame: dict[str, Any]
    ) -> tuple[StoredEvent, bool]:
        """Store a shopper message once per ``client_id``.

        Returns the stored event and whether it was new; a repeat returns the
        first copy's event so the client gets the same ``seq`` back. The message
        is for the bot (``pending``) only if the conversation is in bot mode as
        it is stored; otherwise it is a person's and ``skipped`` from the start.
        """
        change = self.apply(
            conversation_id, [{**frame, "client_id": client_id}],
            client_id=client_id, bot_state=PENDING,
        )
        assert change is not None  # no guard, so always a change
        return change.events[0], change.new

    def client_event(self, conversation_id: str, client_id: str) -> StoredEvent | None:
        """The event a client message with this id was stored as, if it was."""
        row = self.db.execute(
            "SELECT e.seq, e.body FROM client_messages m JOIN events e "
            "ON e.conversation_id = m.conversation_id AND e.seq = m.seq "
            "WHERE m.conversation_id = ? AND m.client_id = ?",
            [conversation_id, client_id],
        ).fetchone()
        return None if row is None else StoredEvent(row[0], json.loads(row[1]))

    def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]:
        """Every event with a ``seq`` above ``seq``, in order: what a resuming client missed."""
        rows = self.db.execute(
            "SELECT seq, body FROM events WHERE conversation_id = ? AND seq > ? ORDER BY seq",
            [conversation_id, seq],
        ).fetchall()
        return [StoredEvent(s, json.loads(body)) for s, body in rows]

    def recent_buttons(self, conversation_id: str, limit: int = 20) -> set[str]:
        """Button payloads the bot offered in its last ``limit`` messages."""
        rows = self.db.execute(
            "SELECT body FROM events WHERE conversation_id = ? AND type = 'message' "
            "ORDER BY seq DESC LIMIT ?",
            [conversation_id, limit],
        ).fetchall()
        payloads: set[str] = set()
        for (body,) in rows:
            frame = json.loads(body)
            if frame.get("author") == "bot":
                payloads.update(b["payload"] for b in frame.get("buttons", []))
        return payloads

    # -- the bot's progress on shopper messages ------------------------------

    def pending_messages(self, conversation_id: str) -> list[StoredEvent]:
        """Shopper messages the bot has not answered yet, oldest first."""
        rows = self.db.execute(
            "SELECT e.seq, e.body FROM client_messages m JOIN events e "
            "ON e.conversation_id = m.conversation_id AND e.seq = m.seq "
            "WHERE m.conversation_id = ? AND m.bot_state = ? ORDER BY m.seq",
            [conversation_id, PENDING],
        ).fetchall()
        return [StoredEvent(s, json.loads(body)) for s, body in rows]

    def bot_state(self, conversation_id: str, message_seq: int) -> str | None:
        """``pending``, ``done`` or ``skipped`` for a stored shopper message, else ``None``."""
        row = self.db.execute(
            "SELECT bot_state FROM client_messages WHERE conversation_id = ? AND seq = ?",
            [conversation_id, message_seq],
        ).fetchone()
        return None if row is None else str(row[0])

    def claim_turn(self, conversation_id: str, message_seq: int, owner: str,
                   lease: float) -> TurnClaim:
        """Take the bot's turn on a pending message for ``lease`` seconds: granted when
        nobody holds it, its holder's lease ran out, or ``owner`` holds it already."""
        now = time.time()
        with self._transaction() as conn:
            claimed = conn.execute(
                "UPDATE client_messages SET turn_owner = ?, turn_until = ? "
                "WHERE conversation_id = ? AND seq = ? AND bot_state = ? "
                "AND (turn_owner IS NULL OR turn_owner = ? OR turn_until < ?)",
                [owner, now + lease, conversation_id, message_seq, PENDING, owner, now],
            ).rowcount
            if claimed:
                return TurnClaim(True)
            row = conn.execute(
                "SELECT turn_until FROM client_messages WHERE conversation_id = ? AND seq = ?",
                [conversation_id, message_seq]).fetchone()
        until = row[0] if row is not None and row[0] is not None else now
        return TurnClaim(False, max(0.0, until - now))

    def release_turns(self) -> int:
        """Let go of every bot turn a process holds; how many there were. Only for the
        one gateway process of a SQLite file, as it starts: any turn held is one the
        process before it left when it stopped or died, and is this one's to take now."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE client_messages SET turn_owner = NULL, turn_until = NULL "
                "WHERE bot_state = ? AND turn_owner IS NOT NULL", [PENDING]).rowcount

    def answer(
        self,
        conversation_id: str,
        message_seq: int,
        replies: list[dict[str, Any]],
        *,
        skip_older: bool = False,
        owner: str | None = None,
    ) -> list[StoredEvent]:
        """Store the bot's replies to one shopper message and mark it answered, atomically.

        If a person took the chat while Rasa was thinking, or the message is
        not pending any more, the replies are dropped (the bot never talks over
        an agent, nor answers twice) and the message is marked skipped.
        ``skip_older`` lets go of every older pending message in the same
        transaction (a backlog answered by its newest message only). A
        ``handoff`` reply opens a ``new`` handoff and puts the conversation in
        the queue in the same transaction, so a crash cannot lose the request. With
        ``owner``, only the process holding the message's turn (:meth:`claim_turn`)
        answers: one whose lease ran out and was taken over stores nothing.
        """
        with self._transaction() as conn:
            (mode,) = conn.execute(
                "SELECT mode FROM conversations WHERE id = ?", [conversation_id]
            ).fetchone()
            pending = conn.execute(
                "SELECT turn_owner FROM client_messages WHERE conversation_id = ? AND seq = ? "
                "AND bot_state = ?",
                [conversation_id, message_seq, PENDING],
            ).fetchone()
            if owner is not None and pending is not None and pending[0] != owner:
                return []  # another process took the turn over: its answer counts
            if mode != BOT or pending is None:
                self._skip(conn, conversation_id, message_seq, older=skip_older)
                return []
            if skip_older:
                self._skip(conn, conversation_id, message_seq - 1, older=True)
            events = [self._append(conn, conversation_id, frame) for frame in replies]
            conn.execute(
                "UPDATE client_messages SET bot_state = ? WHERE conversation_id = ? AND seq = ?",
                [DONE, conversation_id, message_seq],
            )
            handoff = next((f for f in replies if f["type"] == "handoff"), None)
            if handoff is not None:
                conn.execute(
                    "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at) "
                    "VALUES (?, 'new', ?, ?, ?)",
                    [conversation_id, handoff["trigger"], handoff["reason"], time.time()],
                )
                conn.execute(
                    "UPDATE conversations SET mode = ? WHERE id = ?", [QUEUED, conversation_id]
                )
            return events

    def skip_pending(
        self, conversation_id: str, message_seq: int, *, older: bool = False
    ) -> None:
        """Mark a pending shopper message (and with ``older`` every pending one
        before it) as not for the bot: a person has the chat."""
        with self._transaction() as conn:
            self._skip(conn, conversation_id, message_seq, older=older)

    @staticmethod
    def _skip(conn: sqlite3.Connection, conversation_id: str, message_seq: int, *,
              older: bool) -> None:
        conn.execute(
            f"UPDATE client_messages SET bot_state = ? WHERE conversation_id = ? "
            f"AND bot_state = ? AND seq {'<=' if older else '='} ?",
            [SKIPPED, conversation_id, PENDING, message_seq],
        )

    # -- state changes with their events ------------------------------------

    def apply(
        self,
        conversation_id: str,
        frames: list[dict[str, Any]],
        *,
        updates: Sequence[Statement] = (),
        mode: str | None = None,
        guard: Statement | None = None,
        client_id: str | None = None,
        bot_state: str = "none",
    ) -> Change | None:
        """Change state and store the events announcing it, in one transaction.

        ``guard`` is a query that must return a row, or nothing happens and
        ``None`` is returned (someone else changed the state first: two agents
        claiming one chat). ``client_id`` makes the change idempotent: a repeat
        returns the first change's events with ``new=False``; ``bot_state``
        says whether the bot still has to answer that client message, and a
        ``pending`` one is stored ``skipped`` unless the conversation is (after
        ``updates`` and ``mode``) in bot mode: the mode a message is stored in
        decides who it is for.
        """
        with self._transaction() as conn:
            if client_id is not None:
                row = conn.execute(
                    "SELECT seq FROM client_messages WHERE conversation_id = ? AND client_id = ?",
                    [conversation_id, client_id],
                ).fetchone()
                if row is not None:
                    return Change([self._event(conn, conversation_id, row[0])], new=False)
            if guard is not None and conn.execute(*guard).fetchone() is None:
                return None
            for sql, params in updates:
                conn.execute(sql, params)
            if mode is not None:
                conn.execute(
                    "UPDATE conversations SET mode = ? WHERE id = ?", [mode, conversation_id]
                )
            events = [self._append(conn, conversation_id, frame) for frame in frames]
            if client_id is not None:
                if bot_state == PENDING:
                    (current,) = conn.execute(
                        "SELECT mode FROM conversations WHERE id = ?", [conversation_id]
                    ).fetchone()
                    if current != BOT:
                        bot_state = SKIPPED
                conn.execute(
                    "INSERT INTO client_messages (conversation_id, client_id, seq, bot_state) "
                    "VALUES (?, ?, ?, ?)",
                    [conversation_id, client_id, events[0].seq, bot_state],
                )
            return Change(events, new=True)

    # -- internals --------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db.conn)

    @staticmethod
    def _append(
        conn: sqlite3.Connection, conversation_id: str, frame: dict[str, Any]
    ) -> StoredEvent:
        now = time.time()
        row = conn.execute(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? "
            "WHERE id = ? RETURNING last_seq",
            [now, conversation_id],
        ).fetchone()
        if row is None:
            raise KeyError(f"no conversation {conversation_id}")
        seq = int(row[0])
        stored = {**frame, "seq": seq, "ts": round(now, 3)}
        conn.execute(
            "INSERT INTO events (conversation_id, seq, type, body, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [conversation_id, seq, frame["type"], json.dumps(stored), now],
        )
        return StoredEvent(seq, stored)

    @staticmethod
    def _event(conn: sqlite3.Connection, conversation_id: str, seq: int) -> StoredEvent:
        (body,) = conn.execute(
            "SELECT body FROM events WHERE conversation_id = ? AND seq = ?",
            [conversation_id, seq],
        ).fetchone()
        return StoredEvent(seq, json.loads(body))


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``/``ROLLBACK`` around a block."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


class Conversations(Protocol):
    """What the shopper sockets and the bot turns ask of the conversation store, awaited,
    so that a networked database can stand behind it (a gateway process among several
    would use one). :class:`SqliteConversations` is today's."""

    async def create_conversation(self, page: dict[str, Any] | None, lang: str = "en"
                                  ) -> tuple[Conversation, str]: ...

    async def authenticate(self, conversation_id: str, token: str) -> Conversation | None: ...

    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def set_page(self, conversation_id: str, page: dict[str, Any]) -> None: ...

    async def set_customer(self, conversation_id: str, customer_id: str) -> None: ...

    async def set_lang(self, conversation_id: str, lang: str) -> None: ...

    async def append_shopper_message(self, conversation_id: str, client_id: str,
                                     frame: dict[str, Any]) -> tuple[StoredEvent, bool]: ...

    async def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]: ...

    async def recent_buttons(self, conversation_id: str) -> set[str]: ...

    async def pending_messages(self, conversation_id: str) -> list[StoredEvent]: ...

    async def bot_state(self, conversation_id: str, message_seq: int) -> str | None: ...

    async def claim_turn(self, conversation_id: str, message_seq: int, owner: str,
                         lease: float) -> TurnClaim:
        """Take the bot's turn on a pending message for ``lease`` seconds, so that of
        several gateway processes only one sends it to Rasa; a process that died holding
        it lets it go when the lease runs out."""
        ...

    async def answer(self, conversation_id: str, message_seq: int,
                     replies: list[dict[str, Any]], *, skip_older: bool = False,
                     owner: str | None = None) -> list[StoredEvent]: ...

    async def skip_pending(self, conversation_id: str, message_seq: int, *,
                           older: bool = False) -> None: ...


class SqliteConversations:
    """:class:`ConversationStore` behind :class:`Conversations`. Each call is one short
    transaction on a local file (tens of microseconds), so it runs on the event loop: a
    thread would need a lock around SQLite's one connection and cost more than the query.
    """

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def create_conversation(self, page: dict[str, Any] | None, lang: str = "en"
                                  ) -> tuple[Conversation, str]:
        return self.store.create_conversation(page, lang)

    async def authenticate(self, conversation_id: str, token: str) -> Conversation | None:
        return self.store.authenticate(conversation_id, token)

    async def get(self, conversation_id: str) -> Conversation | None:
        return self.store.get(conversation_id)

    async def set_page(self, conversation_id: str, page: dict[str, Any]) -> None:
        self.store.set_page(conversation_id, page)

    async def set_customer(self, conversation_id: str, customer_id: str) -> None:
        self.store.set_customer(conversation_id, customer_id)

    async def set_lang(self, conversation_id: str, lang: str) -> None:
        self.store.set_lang(conversation_id, lang)

    async def append_shopper_message(self, conversation_id: str, client_id: str,
                                     frame: dict[str, Any]) -> tuple[StoredEvent, bool]:
        return self.store.append_shopper_message(conversation_id, client_id, frame)

    async def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]:
        return self.store.events_after(conversation_id, seq)

    async def recent_buttons(self, conversation_id: str) -> set[str]:
        return self.store.recent_buttons(conversation_id)

    async def pending_messages(self, conversation_id: str) -> list[StoredEvent]:
        return self.store.pending_messages(conversation_id)

    async def bot_state(self, conversation_id: str, message_seq: int) -> str | None:
        return self.store.bot_state(conversation_id, message_seq)

    async def claim_turn(self, conversation_id: str, message_seq: int, owner: str,
                         lease: float) -> TurnClaim:
        return self.store.claim_turn(conversation_id, message_seq, owner, lease)

    async def answer(self, conversation_id: str, message_seq: int,
                     replies: list[dict[str, Any]], *, skip_older: bool = False,
                     owner: str | None = None) -> list[StoredEvent]:
        return self.store.answer(conversation_id, message_seq, replies, skip_older=skip_older,
                                 owner=owner)

    async def skip_pending(self, conversation_id: str, message_seq: int, *,
                           older: bool = False) -> None:
        self.store.skip_pending(conversation_id, message_seq, older=older)
