"""Outgoing mail: composing messages (text and escaped HTML alternatives, threading
headers, the reply address that routes back to a ticket) and :class:`Mailer`, the
retrying sender that works through the mail queue (:mod:`handoff.db.mail`) over SMTP
with aiosmtplib.

A mail is composed whole when it is queued, so its Message-ID is the same on every
try: should a crash fall between the SMTP server's "250 OK" and the row being marked
sent, the one resend carries the same Message-ID, which mail clients show once. A mail
is marked sent only after the server accepted it; a temporary failure (server down,
4xx, a wrong password) is retried with exponential backoff; a recipient or message the
server refuses for good (5xx) is given up at once, and
either way the console shows the mail as pending or failed.
"""

from __future__ import annotations

import base64
import html
import logging
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

import aiosmtplib

from bot.settings import Settings
from handoff.db.conversations import Change, ConversationStore, Statement
from handoff.db.mail import MAX_REFERENCES, MailOutbox, MailStore
from handoff.decisions import TicketAnswer
from handoff.delivery import Permanent, RetryingSender

__all__ = ["Composed", "Mailer", "compose", "new_reply_token", "reply_address"]

log = logging.getLogger("gateway.mail")


def new_reply_token() -> str:
    """A ticket's reply token: 120 random bits in lower-case base32, so that a mail system
    that lower-cases addresses does not break it."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()


def reply_address(mailbox: str, token: str) -> str:
    """``local+TOKEN@domain`` for ``mailbox`` (``local@domain``, a display name allowed)."""
    local, _, domain = parseaddr(mailbox)[1].rpartition("@")
    return f"{local}+{token}@{domain}"


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class Composed:
    """A mail ready to queue: the message and what the queue row records of it."""

    message: EmailMessage
    message_id: str
    recipient: str
    subject: str

    def row(self, kind: str, conversation_id: str | None, ticket_id: int | None) -> Statement:
        return MailOutbox.row(self.message.as_string(policy=SMTP),
                              message_id=self.message_id, kind=kind, recipient=self.recipient,
                              subject=self.subject, conversation_id=conversation_id,
                              ticket_id=ticket_id)


def compose(
    *, sender: str, to: str, subject: str, paragraphs: list[str], now: float,
    reply_to: str | None = None, references: tuple[str, ...] = (),
    quoted: str | None = None, unsubscribe: str | None = None, automatic: bool = False,
) -> Composed:
    """A multipart/alternative mail: a plain-text part and an HTML part with every piece of
    text escaped. ``references`` are the thread's Message-IDs (the last is the one this
    answers); ``quoted`` is what the recipient wrote, quoted below; ``unsubscribe`` (a
    mailto: or https: URL) adds List-Unsubscribe, which only mail a shop sends unasked
    (order updates) needs; ``automatic`` marks mail no person wrote (RFC 3834)."""
    message_id = f"<{secrets.token_hex(16)}@{_domain(sender)}>"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = message_id
    if reply_to:
        message["Reply-To"] = reply_to
    if references:
        message["In-Reply-To"] = references[-1]
        message["References"] = " ".join(references[-MAX_REFERENCES:])
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        if unsubscribe.startswith("https://"):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if automatic:
        message["Auto-Submitted"] = "auto-generated"
    text = "\n\n".join(paragraphs)
    body_html = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    if quoted:
        text += "\n\n" + "\n".join(f"> {line}" for line in quoted.splitlines())
        body_html += ("<blockquote>" + html.escape(quoted).replace("\n", "<br>")
                      + "</blockquote>")
    message.set_content(text + "\n")
    message.add_alternative(
        f'<!doctype html><html><body style="font-family:sans-serif">{body_html}</body></html>\n',
        subtype="html")
    return Composed(message, message_id, parseaddr(to)[1], subject)


class Mailer(RetryingSender):
    """Sends the mail queue over SMTP (only when ``smtp_host`` is set)."""

    def __init__(self, store: ConversationStore, settings: Settings) -> None:
        super().__init__(MailOutbox(store), settings.mail_max_attempts,
                         settings.mail_retry_base, log)
        self.settings = settings
        #: Whether mail can be sent at all (agents' answers by mail are refused otherwise).
        self.enabled = bool(settings.smtp_host and settings.mail_from)
        self.sender = settings.mail_from or ""
        self.reply_mailbox = settings.mail_reply_to or self.sender

    async def start(self) -> None:
        if self.enabled:
            self.start_sending()

    async def close(self) -> None:
        await self.stop_sending()

    def describe(self, row: dict[str, Any]) -> str:
        # Never the whole address in the log: its domain is enough to tell a provider's fault.
        return f"mail {row['id']} ({row['kind']}) to …@{row['recipient'].rpartition('@')[2]}"

    def from_header(self, agent_name: str | None = None) -> str:
        """The From: the configured address, with the agent's name in front when there
        is one ("Dana at Trailhead support")."""
        name, address = parseaddr(self.sender)
        if agent_name:
            name = f"{agent_name} at {name}" if name else agent_name
        return formataddr((name, address))

    async def attempt(self, row: dict[str, Any]) -> str | None:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password \
            else None
        try:
            await aiosmtplib.send(
                row["message"].encode(), sender=parseaddr(self.sender)[1],
                recipients=[row["recipient"]], hostname=settings.smtp_host,
                port=settings.smtp_port, username=settings.smtp_username, password=password,
                use_tls=settings.smtp_tls,
                start_tls=False if settings.smtp_tls else settings.smtp_starttls,
                timeout=settings.smtp_timeout)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            reason = f"recipient refused: {'; '.join(str(r) for r in error.recipients)}"
            return Permanent(reason) if codes and min(codes) >= 500 else reason
        except aiosmtplib.SMTPDataError as error:  # the message itself refused (550 spam …)
            reason = f"SMTP {error.code}: {error.message}"
            return Permanent(reason) if error.code >= 500 else reason
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return f"{type(error).__name__}: {error}"
        return None

    def store_answer(self, mail: MailStore, answer: TicketAnswer, now: float) -> Change | None:
        """Store an agent's answer to a ticket and queue its mail, in one transaction: to
        the ticket's address, from the agent at the shop, with the ticket's reply address
        and threaded after the messages so far (the shopper's first message quoted)."""
        ticket = answer.ticket
        thread = mail.thread(ticket.id)
        token = thread.token if thread else new_reply_token()
        first_line = ticket.message.strip().splitlines()[0] if ticket.message.strip() else ""
        subject = thread.subject if thread else "Re: " + (first_line[:60] or "your message")
        composed = compose(
            sender=self.from_header(answer.agent_name), to=ticket.email, subject=subject,
            paragraphs=[answer.text, f"{answer.agent_name}",
                        "Reply to this email to answer; your reply goes to the same "
                        "conversation."],
            now=now, reply_to=reply_address(self.reply_mailbox, token),
            references=thread.refs if thread else (), quoted=ticket.message)
        return mail.answer(ticket, answer.frames, answer.client_id, (token, subject),
                           composed.row("ticket_reply", ticket.conversation_id, ticket.id),
                           composed.message_id, [])
