"""Incoming mail: ``POST /api/v1/inbound-mail`` takes one raw RFC 5322 message (what
inbound-mail services post and what an MTA's pipe delivers), signed with HMAC-SHA256
over the body by a secret shared with the sender (``X-Shopchat-Signature:
sha256=<hex>``).

A reply to a ticket answered by mail joins that ticket's conversation (stored, seq'd,
shown live to agents following it; the shopper sees it in the widget when they come
back) only when it is addressed to the ticket's reply address (``local+TOKEN@domain``)
or answers one of the mails we sent (In-Reply-To/References), **and** comes from the
ticket's address. Anything else (no token, a token nobody has, another sender) opens a
new ticket of its own: a token can travel with a forwarded mail, and a stranger's
words must never appear in a shopper's conversation. Bounces and automatic replies
are recognised and not taken as the shopper's words; a bounce of a mail we sent marks
that mail failed. The quoted history and the signature are cut (mail-parser-reply).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

from bot.settings import Settings
from handoff.db.conversations import Statement
from handoff.db.mail import MailStore, Thread
from handoff.desk import Desk
from handoff.http import AUTH, AUTHORITIES, problem, requires
from handoff.mail import new_reply_token

__all__ = ["MAIL_SIGNATURE", "SIGNATURE_HEADER", "Incoming", "add_inbound_mail_routes",
           "read_mail", "receive", "sign_mail"]

#: The header carrying ``sha256=<hex of HMAC-SHA256(secret, body)>``.
SIGNATURE_HEADER = "X-Shopchat-Signature"
#: The longest text a mail adds to a conversation (the rest is cut, and says so).
MAX_TEXT = 10_000
#: Where a ticket's token is: the ``+TOKEN`` of the address a reply is sent to.
_TOKEN = re.compile(r"^[^@+\s]+\+([a-z2-7]{24})@", re.IGNORECASE)
#: Headers that name the address a mail was delivered to (the envelope, when the
#: service or MTA records it) as well as the ones the sender wrote.
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To",
                      "Cc")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")


def sign_mail(secret: str, body: bytes) -> str:
    """The signature header's value for ``body`` (what the sender computes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Incoming:
    """What a received mail says, as far as the desk cares."""

    sender: str
    recipients: list[str]
    subject: str
    message_id: str | None
    #: In-Reply-To and References: the mails this one answers.
    answers: list[str]
    #: The new text, quoted history and signature cut.
    text: str
    #: Why it is not a shopper's reply (a bounce, an automatic reply), if it is not.
    ignored: str | None = None
    #: For a bounce: the Message-ID of our mail that bounced, when the report has it.
    bounced: str | None = None

    def token(self) -> str | None:
        for address in self.recipients:
            if (match := _TOKEN.match(address)) is not None:
                return match.group(1).lower()
        return None


def read_mail(raw: bytes) -> Incoming:
    """Parse a raw message; ``ValueError`` (with what is wrong) when it is not one."""
    message = message_from_bytes(raw, policy=policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ValueError("The body is not an RFC 5322 message (no headers were found).")
    sender = parseaddr(str(message.get("From", "")))[1]
    if "@" not in sender:
        raise ValueError("The message has no From address.")
    recipients = [address for _, address in getaddresses(
        [str(value) for name in _RECIPIENT_HEADERS for value in message.get_all(name, [])])]
    message_id = _message_ids(str(message.get("Message-ID", "")))
    answers = [*_ids(message, "In-Reply-To"), *_ids(message, "References")]
    subject = str(message.get("Subject", ""))[:200]
    ignored, bounced = _not_a_reply(message, sender)
    text = "" if ignored else _reply_text(message)
    return Incoming(sender, recipients, subject, message_id[0] if message_id else None,
                    answers, text, ignored, bounced)


def _message_ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]{1,250}>", value)


def _ids(message: EmailMessage, header: str) -> list[str]:
    return [i for value in message.get_all(header, []) for i in _message_ids(str(value))]


def _not_a_reply(message: EmailMessage, sender: str) -> tuple[str | None, str | None]:
    """Why a mail is not a person's reply (RFC 3834, RFC 3464, and common practice)."""
    local = sender.partition("@")[0].lower()
    if message.get_content_type() == "multipart/report" or local in _BOUNCE_SENDERS \
            or message.get("X-Failed-Recipients") is not None:
        return "bounce", _bounced_id(message)
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and not auto.startswith("no"):
        return f"automatic reply (Auto-Submitted: {auto})", None
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"automatic or bulk mail (Precedence: {precedence})", None
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response"):
        if message.get(header) is not None:
            return f"automatic reply ({header})", None
    if message.get("List-Id") is not None:
        return "mailing-list mail (List-Id)", None
    return None, None


def _bounced_id(message: EmailMessage) -> str | None:
    """The Message-ID of the mail a delivery report is about (its returned headers)."""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers",
                                       "message/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, EmailMessage):
                ids = _message_ids(str(inner.get("Message-ID", "")))
            else:
                ids = re.findall(r"(?im)^message-id:\s*(<[^<>\s]+>)", str(payload))
            if ids:
                return ids[0]
    return None


def _reply_text(message: EmailMessage) -> str:
    """The new text of a reply: the plain part (or the HTML part as text), without the
    quoted history and the signature."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None or not isinstance(part, EmailMessage):
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = _html_text(content)
    content = content.replace("\r\n", "\n")
    replies = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"]).read(
        content).replies
    text = (replies[0].body if replies else content).strip()
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + " […]"
    return text


class _Text(HTMLParser):
    """An HTML mail's text: line breaks kept, scripts, styles and quoted blocks dropped."""

    _SKIP = frozenset({"script", "style", "head", "blockquote"})
    _BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


# -- the endpoint ------------------------------------------------------------------


def _same_address(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def receive(desk: Desk, mail: MailStore, incoming: Incoming, raw: bytes,
            own_address: str) -> dict[str, Any]:
    """Store what a received mail says, where it belongs; the endpoint's answer."""
    if incoming.ignored is None and own_address and _same_address(incoming.sender,
                                                                  own_address):
        incoming = Incoming(**{**incoming.__dict__, "ignored": "sent from our own address"})
    if incoming.ignored is not None:
        if incoming.bounced and mail.outbox.bounced(incoming.bounced, "bounced") \
                and desk.mailer is not None:
            desk.mailer.changed()  # consoles show the mail as failed
        return {"outcome": "ignored", "reason": incoming.ignored}
    if not incoming.text:
        return {"outcome": "ignored", "reason": "no text above the quoted history"}
    client_id = "mail:" + hashlib.sha256(
        (incoming.message_id or "").encode() or raw).hexdigest()[:40]
    frame = {"type": "message", "author": "shopper", "text": incoming.text, "via": "email",
             "client_id": client_id}
    thread, why = _thread(mail, incoming)
    if thread is not None:
        change = mail.reply_received(thread, frame, client_id, incoming.message_id)
        desk.mail_received(thread.conversation_id, change,
                           f"Email reply on ticket {thread.ticket_id}.")
        return {"outcome": "appended", "conversation_id": thread.conversation_id,
                "ticket_id": thread.ticket_id, "duplicate": not change.new}
    if incoming.message_id and (ticket_id := mail.ticket_for_incoming(
            incoming.message_id)) is not None:
        found = mail.ticket(ticket_id)
        return {"outcome": "new_ticket", "ticket_id": ticket_id, "duplicate": True,
                "conversation_id": found.conversation_id if found else None, "reason": why}
    subject = incoming.subject if incoming.subject.lower().startswith("re:") \
        else f"Re: {incoming.subject or 'your message'}"
    webhooks = desk.webhooks

    def announce(conversation_id: str) -> list[Statement]:
        """The ticket.created event, stored in the new ticket's transaction."""
        if webhooks is None:
            return []
        return webhooks.rows("ticket.created", {
            "conversation_id": conversation_id, "handoff_id": None,
            "email": incoming.sender, "message": incoming.text, "channel": "email"})

    conversation_id, ticket_id, change = mail.ticket_from_mail(
        incoming.sender, incoming.text, frame, client_id, new_reply_token(), subject,
        incoming.message_id, announce)
    if webhooks is not None:
        webhooks.wake()
    desk.mail_received(conversation_id, change, "New offline message by email.")
    return {"outcome": "new_ticket", "conversation_id": conversation_id,
            "ticket_id": ticket_id, "duplicate": False, "reason": why}


def _thread(mail: MailStore, incoming: Incoming) -> tuple[Thread | None, str]:
    """The thread a reply belongs to, or None and why it belongs to none."""
    token = incoming.token()
    if token is not None:
        thread = mail.thread_for_token(token)
        why = "unknown_token"
    else:
        thread = mail.thread_for_message_ids(incoming.answers)
        why = "no_token"
    if thread is None:
        return None, why
    if not _same_address(thread.email, incoming.sender):
        return None, "sender_differs"
    return thread, ""


async def _body(request: web.Request, limit: int, timeout: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise problem(408, f"The message took longer than {timeout:g} s to arrive; send "
                           "it again.") from None
    return b"".join(chunks)


def _too_large(limit: int) -> web.HTTPException:
    return problem(413, f"The message is larger than {limit} bytes "
                        "(SHOPCHAT_INBOUND_MAIL_MAX_BYTES); leave attachments out.",
                   "too_large")


#: The sign-in of the inbound endpoint: a signature over the body (see the module).
MAIL_SIGNATURE = "mail_signature"


def add_inbound_mail_routes(app: web.Application, desk_key: web.AppKey[Desk],
                            settings_key: web.AppKey[Settings]) -> None:

    def signed(request: web.Request, token: str | None) -> str:
        """The middleware's half of the check, before the body is read: the endpoint is
        on and the request carries a signature; the handler checks it against the body."""
        if request.app[settings_key].inbound_mail_secret is None:
            raise problem(404, "Inbound mail is off: set SHOPCHAT_INBOUND_MAIL_SECRET.",
                          "inbound_mail_off")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not re.fullmatch(r"sha256=[0-9a-f]{64}", signature):
            raise problem(401, f"Sign the raw message: {SIGNATURE_HEADER}: sha256=<hex of "
                               "HMAC-SHA256 of the body with the shared secret>.",
                          "unauthorised")
        return signature

    app[AUTHORITIES][MAIL_SIGNATURE] = signed

    @requires(MAIL_SIGNATURE)
    async def inbound_mail(request: web.Request) -> web.Response:
        settings = request.app[settings_key]
        signature = request[AUTH]
        assert isinstance(signature, str) and settings.inbound_mail_secret is not None
        raw = await _body(request, settings.inbound_mail_max_bytes, settings.http_timeout)
        expected = sign_mail(settings.inbound_mail_secret.get_secret_value(), raw)
        if not hmac.compare_digest(expected, signature):
            raise problem(401, "The signature does not match the body: sign the exact bytes "
                               "sent, with the secret in SHOPCHAT_INBOUND_MAIL_SECRET.",
                          "bad_signature")
        try:
            incoming = read_mail(raw)
        except ValueError as error:
            raise problem(400, str(error), "bad_mail") from None
        desk = request.app[desk_key]
        outcome = receive(desk, MailStore(desk.store), incoming, raw,
                          parseaddr(settings.mail_from or "")[1])
        return web.json_response(outcome)

    app.router.add_post("/api/v1/inbound-mail", inbound_mail)
