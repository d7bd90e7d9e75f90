"""The mail tables: the outgoing queue (``mail_outbox``, worked through by
:class:`handoff.mail.Mailer`) and the threads of tickets answered by mail
(``mail_threads``: each ticket's reply token, subject and the Message-IDs so far).

A mail is a row written in the transaction of the change that causes it (an agent's
answer is stored in the conversation, its thread updated and its mail queued together,
or none of it), so a mail is never lost to a crash and never queued for a change that
did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from handoff.db.conversations import Change, ConversationStore, Statement
from handoff.db.outbox import DeliveryQueue
from handoff.handoff_states import Ticket

__all__ = ["MailOutbox", "MailStore", "Thread", "transcript_guard"]

#: How many Message-IDs of a thread are kept (and sent in References).
MAX_REFERENCES = 10


@dataclass(frozen=True)
class Thread:
    """A ticket's mail thread: where replies come back (its token) and what they answer."""

    ticket_id: int
    conversation_id: str
    email: str
    token: str
    subject: str
    refs: tuple[str, ...]


class MailOutbox(DeliveryQueue):
    """Mails waiting to be sent: one row per mail, the whole message in ``message``."""

    table = "mail_outbox"

    @staticmethod
    def row(message: str, *, message_id: str, kind: str, recipient: str, subject: str,
            conversation_id: str | None, ticket_id: int | None) -> Statement:
        """The statement that queues one mail, to run in a change's transaction."""
        now = time.time()
        return ("INSERT INTO mail_outbox (message_id, kind, conversation_id, ticket_id, "
                "recipient, subject, message, next_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [message_id, kind, conversation_id, ticket_id, recipient, subject, message,
                 now, now])

    def waiting(self, limit: int = 50) -> list[dict[str, Any]]:
        """Mails not delivered (still trying, or given up), newest first, for the console."""
        return list(self.db.query(
            "SELECT id, kind, ticket_id, conversation_id, recipient, subject, attempts, "
            "next_at, created_at, failed_at, last_error FROM mail_outbox "
            "WHERE delivered_at IS NULL ORDER BY id DESC LIMIT ?", [limit]))

    def bounced(self, message_id: str, reason: str) -> bool:
        """A bounce came back for a mail we sent: it failed after all."""
        cursor = self.db.execute(
            "UPDATE mail_outbox SET delivered_at = NULL, failed_at = ?, last_error = ? "
            "WHERE message_id = ?", [time.time(), reason, message_id])
        return bool(cursor.rowcount)


def _thread(row: dict[str, Any]) -> Thread:
    return Thread(row["ticket_id"], row["conversation_id"], row["email"], row["token"],
                  row["subject"], tuple(row["refs"].split()))


class MailStore:
    """Reading tickets and threads; storing an answer or an incoming reply with its mail."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.db = store.db
        self.outbox = MailOutbox(store)

    # -- reading ------------------------------------------------------------

    def ticket(self, ticket_id: int) -> Ticket | None:
        rows = list(self.db.query(
            "SELECT id, conversation_id, handoff_id, email, message, status, created_at "
            "FROM tickets WHERE id = ?", [ticket_id]))
        return Ticket(**rows[0]) if rows else None

    def thread(self, ticket_id: int) -> Thread | None:
        rows = list(self.db.query("SELECT * FROM mail_threads WHERE ticket_id = ?",
                                  [ticket_id]))
        return _thread(rows[0]) if rows else None

    def thread_for_token(self, token: str) -> Thread | None:
        rows = list(self.db.query("SELECT * FROM mail_threads WHERE token = ?", [token]))
        return _thread(rows[0]) if rows else None

    def thread_for_message_ids(self, message_ids: list[str]) -> Thread | None:
        """The thread of a mail we sent with one of these Message-IDs (the newest)."""
        if not message_ids:
            return None
        marks = ", ".join("?" for _ in message_ids)
        rows = list(self.db.query(
            f"SELECT t.* FROM mail_outbox o JOIN mail_threads t ON t.ticket_id = o.ticket_id "
            f"WHERE o.message_id IN ({marks}) ORDER BY o.id DESC LIMIT 1", message_ids))
        return _thread(rows[0]) if rows else None

    def ticket_for_incoming(self, message_id: str) -> int | None:
        """The ticket an incoming mail with this Message-ID already opened or joined (a
        provider delivering the same mail twice)."""
        row = self.db.execute(
            "SELECT ticket_id FROM mail_threads WHERE instr(refs, ?) > 0 LIMIT 1",
            [message_id]).fetchone()
        return None if row is None else int(row[0])

    def ticket_address(self, conversation_id: str) -> str | None:
        """The address the shopper left with their latest message in this conversation."""
        row = self.db.execute("SELECT email FROM tickets WHERE conversation_id = ? "
                              "ORDER BY id DESC LIMIT 1", [conversation_id]).fetchone()
        return None if row is None else str(row[0])

    def left_messages(self, conversation_id: str) -> dict[int, str]:
        """What the shopper left with the message form, by handoff (not in the event log)."""
        rows = self.db.execute("SELECT handoff_id, message FROM tickets WHERE "
                               "conversation_id = ? AND handoff_id IS NOT NULL",
                               [conversation_id]).fetchall()
        return {int(handoff_id): str(message) for handoff_id, message in rows}

    # -- changes ------------------------------------------------------------

    @staticmethod
    def _thread_rows(ticket: Ticket, token: str, subject: str, message_id: str
                     ) -> list[Statement]:
        """Open the ticket's thread (if it has none) and add ``message_id`` to it."""
        return [
            ("INSERT OR IGNORE INTO mail_threads (ticket_id, conversation_id, email, token, "
             "subject) VALUES (?, ?, ?, ?, ?)",
             [ticket.id, ticket.conversation_id, ticket.email, token, subject]),
            _referenced(ticket.id, message_id),
        ]

    def answer(self, ticket: Ticket, frames: list[dict[str, Any]], client_id: str,
               thread: tuple[str, str], mail: Statement, message_id: str,
               extra: list[Statement]) -> Change | None:
        """Store an agent's answer to an open ticket: its events, the thread (``(token,
        subject)``) and the queued mail, in one transaction, once per ``client_id``;
        None when the ticket is not open any more."""
        token, subject = thread
        return self.store.apply(
            ticket.conversation_id, frames, client_id=client_id,
            guard=("SELECT 1 FROM tickets WHERE id = ? AND status = 'open'", [ticket.id]),
            updates=[*self._thread_rows(ticket, token, subject, message_id), mail, *extra])

    def reply_received(self, thread: Thread, frame: dict[str, Any], client_id: str,
                       message_id: str | None) -> Change:
        """A shopper's reply by mail joins their conversation; the ticket is open again."""
        updates: list[Statement] = [
            ("UPDATE tickets SET status = 'open' WHERE id = ?", [thread.ticket_id])]
        if message_id:
            updates.append(_referenced(thread.ticket_id, message_id))
        change = self.store.apply(thread.conversation_id, [frame], client_id=client_id,
                                  updates=updates)
        assert change is not None  # no guard
        return change

    def ticket_from_mail(self, email: str, text: str, frame: dict[str, Any],
                         client_id: str, token: str, subject: str, message_id: str | None,
                         announce: Callable[[str], Sequence[Statement]]
                         ) -> tuple[str, int, Change]:
        """A mail that answers no thread of its sender: a new conversation with a new open
        ticket (and its thread, so the answer is threaded to the mail). ``announce`` gives,
        for the new conversation's id, the rows (webhook events) stored in the ticket's
        transaction."""
        conversation, _ = self.store.create_conversation(None)
        updates: list[Statement] = [
            ("INSERT INTO tickets (conversation_id, handoff_id, email, message, created_at) "
             "VALUES (?, NULL, ?, ?, ?)", [conversation.id, email, text, time.time()]),
            ("INSERT INTO mail_threads (ticket_id, conversation_id, email, token, subject, "
             "refs) VALUES ((SELECT max(id) FROM tickets WHERE conversation_id = ?), "
             "?, ?, ?, ?, ?)",
             [conversation.id, conversation.id, email, token, subject, message_id or ""]),
            *announce(conversation.id),
        ]
        change = self.store.apply(conversation.id, [frame], client_id=client_id,
                                  updates=updates)
        assert change is not None
        (ticket_id,) = self.db.execute("SELECT max(id) FROM tickets WHERE conversation_id = ?",
                                       [conversation.id]).fetchone()
        return conversation.id, int(ticket_id), change


def _referenced(ticket_id: int, message_id: str) -> Statement:
    """Add ``message_id`` to the end of the thread's references (the newest kept)."""
    return ("UPDATE mail_threads SET refs = trim(refs || ' ' || ?) WHERE ticket_id = ? "
            "AND instr(refs, ?) = 0", [message_id, ticket_id, message_id])


def transcript_guard(conversation_id: str, recipient: str, since_last: float,
                     since_day: float, daily_limit: int) -> Statement:
    """A guard for queuing a transcript: none of this conversation since ``since_last``,
    and fewer than ``daily_limit`` to this address since ``since_day`` (checked in the
    transaction that queues it, so two requests at once cannot both pass)."""
    return ("SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM mail_outbox WHERE kind = 'transcript' "
            "AND conversation_id = ? AND created_at > ?) AND (SELECT count(*) FROM mail_outbox "
            "WHERE kind = 'transcript' AND lower(recipient) = lower(?) AND created_at > ?) < ?",
            [conversation_id, since_last, recipient, since_day, daily_limit])
