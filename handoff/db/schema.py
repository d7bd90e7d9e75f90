"""The gateway database's schema: every table of ``var/gateway.db`` is defined here, and
every change to it is a numbered migration, recorded in ``schema_version`` when applied.

:func:`migrate` brings a database of any age to the newest schema: a new file, or one
from before migrations were recorded (its tables exist, its versions do not: each step
is written so that it finds its work done and records it). Every process that opens the
database calls it (the gateway, the CLI, the workbench's review code); each migration
runs in its own ``BEGIN IMMEDIATE`` transaction and is skipped when another process
recorded it first. A new table or column is a new entry at the end of
:data:`MIGRATIONS`, never an edit of an old one.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "migrate", "version"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    #: SQL statements, each safe to run on a database that has their result already.
    statements: tuple[str, ...] = ()
    #: ``(table, column, declaration)``: columns added unless the table has them.
    columns: tuple[tuple[str, str, str], ...] = ()


def _statements(script: str) -> tuple[str, ...]:
    """A script's statements (one per ``;`` at the end of a line), comments kept."""
    return tuple(part.strip() for part in script.split(";\n") if part.strip())


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "conversations, events and client messages; the desk: handoffs, tickets, "
                 "notes; agents and their sessions", _statements("""
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'bot',
    page TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
-- One row per client frame, keyed by the client's id: de-duplication, and for
-- shopper messages the bot's progress on them: 'pending' until Rasa's replies
-- are stored ('done'), or 'skipped' (for a person, or let go from a backlog);
-- 'none' for frames that are not messages.
CREATE TABLE IF NOT EXISTS client_messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bot_state TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (conversation_id, client_id)
);
CREATE INDEX IF NOT EXISTS client_messages_pending
    ON client_messages (conversation_id, bot_state, seq);

-- Live-agent desk. One row per time a conversation was handed to people:
-- new (context not built yet) -> queued -> assigned -> closed | returned,
-- or -> offline (the shopper left a message) | left (went back to the bot)
-- | unstaffed (nobody was online; the shopper was offered the message form).
CREATE TABLE IF NOT EXISTS handoffs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    state TEXT NOT NULL DEFAULT 'new',
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    context TEXT,
    agent_id TEXT,
    queued_at REAL NOT NULL,
    assigned_at REAL,
    first_response_at REAL,
    alerted_at REAL,
    offline_offered_at REAL,
    ended_at REAL,
    resolution TEXT,
    csat_score INTEGER,
    csat_comment TEXT,
    csat_at REAL
);
CREATE INDEX IF NOT EXISTS handoffs_by_state ON handoffs (state, priority, queued_at);
CREATE INDEX IF NOT EXISTS handoffs_by_conversation ON handoffs (conversation_id, id);
-- Messages shoppers left when nobody could take the chat.
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    handoff_id INTEGER REFERENCES handoffs(id),
    email TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    created_at REAL NOT NULL
);
-- Agents' internal notes: never sent to shoppers, so not in the event log.
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    agent_id TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    client_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (conversation_id, client_id)
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'agent',
    capacity INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);""")),
    Migration(2, "verified customers: conversations.customer_id",
              columns=(("conversations", "customer_id", "TEXT"),)),
    Migration(3, "integration API tokens", _statements("""
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);""")),
    Migration(4, "webhook outbox", _statements("""
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_outbox (delivered_at, failed_at, next_at);""")),
    Migration(5, "privacy log", _statements("""
CREATE TABLE IF NOT EXISTS privacy_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    subject_sha256 TEXT,
    detail TEXT NOT NULL
);""")),
    Migration(6, "review verdicts", _statements("""
CREATE TABLE IF NOT EXISTS review_verdicts (
    item_id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    verdict TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at REAL NOT NULL
);""")),
    Migration(7, "email: the outgoing mail queue and the threads of tickets answered by mail",
              _statements("""
-- Mails waiting to be sent (or sent, or given up), each a whole RFC 5322 message
-- written in the transaction of the change that causes it; its Message-ID stays
-- the same across retries. No foreign keys: erasing a conversation must not trip on them.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    conversation_id TEXT,
    ticket_id INTEGER,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS mail_due ON mail_outbox (delivered_at, failed_at, next_at);
-- A ticket answered by mail: the unguessable token of its reply address
-- (reply+TOKEN@…), its subject, and the Message-IDs of the thread so far.
CREATE TABLE IF NOT EXISTS mail_threads (
    ticket_id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    email TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    refs TEXT NOT NULL DEFAULT ''
);""")),
    Migration(8, "order updates: the shop's order events, and the orders each conversation "
                 "proved are the shopper's", _statements("""
-- One row per order event a shop sent (POST /api/v1/order-events, `shopchat orders
-- event`), keyed by its idempotency key: where it went (a conversation, a mail, or
-- nowhere) is decided once and written in the same transaction as the message, the
-- mail and the webhook rows. No foreign keys: erasing a conversation must not trip on them.
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    order_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    customer_id TEXT,
    channel TEXT NOT NULL,
    conversation_id TEXT,
    seq INTEGER,
    email TEXT,
    mail_message_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS order_events_by_time ON order_events (created_at);
-- An order a conversation proved is the shopper's (the bot checked the order's email,
-- or the storefront vouched for its customer): only such conversations get its updates.
CREATE TABLE IF NOT EXISTS conversation_orders (
    conversation_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    verified_at REAL NOT NULL,
    PRIMARY KEY (order_id, conversation_id)
);
CREATE INDEX IF NOT EXISTS conversations_by_customer
    ON conversations (customer_id, updated_at);""")),
    Migration(9, "bot turns leased to one gateway process: client_messages.turn_owner and "
                 "turn_until", columns=(("client_messages", "turn_owner", "TEXT"),
                                        ("client_messages", "turn_until", "REAL"))),
    Migration(10, "the language each conversation is in: conversations.lang",
              columns=(("conversations", "lang", "TEXT NOT NULL DEFAULT 'en'"),)),
    Migration(11, "the languages each agent speaks: agents.languages (comma-separated codes)",
              columns=(("agents", "languages", "TEXT NOT NULL DEFAULT ''"),)),
)

_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""


def version(conn: sqlite3.Connection) -> int:
    """The newest migration applied to the database (0: none recorded)."""
    conn.execute(_VERSIONS)
    (newest,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(newest)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the database lacks, in order; the version it is at then."""
    isolation = conn.isolation_level
    conn.isolation_level = None  # explicit transactions below
    try:
        conn.execute(_VERSIONS)
        for migration in MIGRATIONS:
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute("SELECT 1 FROM schema_version WHERE version = ?",
                                    [migration.version]).fetchone()
                if done is None:
                    _apply(conn, migration)
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        [migration.version, migration.name, time.time()])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return version(conn)
    finally:
        conn.isolation_level = isolation


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    for statement in migration.statements:
        conn.execute(statement)
    for table, column, declaration in migration.columns:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
