"""Transcripts by email: ``POST /api/chat/transcript`` mails the shopper a copy of their
whole conversation when they ask (the widget's "Email me a copy" after a chat ends).

Only to an address the conversation already has: the one the shopper left with an
offline message, or, for a customer the shop signed in, their address in the shop's
records. Never to one typed in with the request, which would let anyone send mail
(with text they chose, from the shop's domain) to anyone. The request is authorised
by the conversation's resume token, which only the shopper's browser holds, and comes
from the shop's pages (the chat socket's ``Origin`` rule, with CORS for them). At most
one per ``SHOPCHAT_TRANSCRIPT_INTERVAL`` per conversation and
``SHOPCHAT_TRANSCRIPT_DAILY_LIMIT`` per address a day, checked in the transaction that
queues the mail. Every text in the mail is HTML-escaped (:func:`handoff.mail.compose`).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from bot.i18n import text
from bot.settings import Settings
from handoff.chat import origin_allowed
from handoff.db.conversations import StoredEvent
from handoff.db.mail import MailStore, transcript_guard
from handoff.desk import Desk
from handoff.http import problem, read_json
from handoff.mail import compose
from handoff.protocol import ConversationId, system_message

__all__ = ["add_transcript_routes", "masked", "transcript_paragraphs"]

PATH = "/api/chat/transcript"
DAY = 86400.0


class TranscriptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    resume_token: Annotated[str, StringConstraints(min_length=16, max_length=128)]


def masked(address: str) -> str:
    """``s…@example.org``: enough for the shopper to recognise, not to read off a screen."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


def transcript_paragraphs(events: list[StoredEvent], shop: str,
                          left: dict[int, str]) -> list[str]:
    """The conversation's messages as paragraphs: who, when (UTC) and what, with the
    messages left with the form (``left``, by handoff) where they were left."""
    names = {"shopper": "You", "bot": f"{shop} assistant", "system": shop}
    paragraphs = []
    for event in events:
        frame = event.frame
        when = datetime.fromtimestamp(float(frame.get("ts", 0)), UTC).strftime(
            "%Y-%m-%d %H:%M UTC")
        if frame.get("type") == "offline_received" and frame.get("handoff_id") in left:
            paragraphs.append(f"You left a message, {when}:\n{left[frame['handoff_id']]}")
        if frame.get("type") != "message" or not frame.get("text"):
            continue
        author = frame.get("author", "")
        who = (frame.get("agent") or {}).get("name") if author == "agent" else names.get(author)
        paragraphs.append(f"{who or author}, {when}:\n{frame['text']}")
    return paragraphs


def _cors(request: web.Request, settings: Settings) -> dict[str, str]:
    """The CORS headers for a shop page's request, or a 403 for another origin's."""
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, settings.own_origins, settings.allowed_origins):
        raise problem(403, "This page's origin may not use the chat; add it to "
                           "SHOPCHAT_ALLOWED_ORIGINS.", "forbidden_origin")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


def add_transcript_routes(app: web.Application, desk_key: web.AppKey[Desk],
                          settings_key: web.AppKey[Settings]) -> None:

    async def preflight(request: web.Request) -> web.Response:
        headers = _cors(request, request.app[settings_key])
        return web.Response(status=204, headers={
            **headers, "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})

    async def transcript(request: web.Request) -> web.Response:
        settings = request.app[settings_key]
        cors = _cors(request, settings)
        desk = request.app[desk_key]

        def refuse(status: int, detail: str, code: str, **extra: str) -> web.HTTPException:
            return problem(status, detail, code, headers={**cors, **extra})

        mailer = desk.mailer
        if mailer is None or not mailer.enabled or settings.transcript_daily_limit == 0:
            raise refuse(404, "Transcripts by email are not available here.", "mail_off")
        try:
            body = await read_json(request, TranscriptRequest, "Send {\"conversation_id\", "
                                   "\"resume_token\"}.", settings.http_timeout)
        except web.HTTPException as error:  # read_json's problem, with the CORS headers
            detail = json.loads(error.text or "{}").get("detail", "Bad request.")
            raise refuse(error.status, detail, "bad_request") from None
        conversations = desk.hub.conversations
        conversation = await conversations.authenticate(body.conversation_id, body.resume_token)
        if conversation is None:
            raise refuse(401, "Unknown conversation or wrong resume token.", "resume_rejected")
        mail = MailStore(desk.store)
        address = mail.ticket_address(conversation.id)
        if address is None and conversation.customer_id is not None:
            address = await asyncio.to_thread(_customer_email, settings,
                                               conversation.customer_id)
        if address is None:
            raise refuse(409, "We can only email a copy to the address you left with a "
                              "message, or to your shop account's address when you are "
                              "signed in.", "no_address")
        shop = parseaddr(settings.mail_from or "")[0] or "our team"
        events = await conversations.events_after(conversation.id, 0)
        now = time.time()
        composed = compose(
            sender=mailer.from_header(), to=address, now=now, automatic=True,
            subject=f"Your conversation with {shop}",
            paragraphs=[f"Here is your conversation with {shop}, as you asked.",
                        *transcript_paragraphs(events, shop,
                                               mail.left_messages(conversation.id))])
        notice = {**system_message(text("transcript.sent", conversation.lang,
                                        address=masked(address))), "transcript": True}
        change = desk.store.apply(
            conversation.id, [notice],
            guard=transcript_guard(conversation.id, address, now - settings.transcript_interval,
                                   now - DAY, settings.transcript_daily_limit),
            updates=[composed.row("transcript", conversation.id, None)])
        if change is None:
            raise refuse(429, "A copy was emailed a short while ago; please try again later.",
                         "too_many", **{"Retry-After": str(int(settings.transcript_interval))})
        desk.hub.publish(conversation.id, change.events)
        mailer.wake()
        mailer.changed()
        return web.json_response({"to": masked(address), "seq": change.events[0].seq},
                                 headers=cors)

    app.router.add_route("OPTIONS", PATH, preflight)
    app.router.add_post(PATH, transcript)


def _customer_email(settings: Settings, customer_id: str) -> str | None:
    """The verified customer's address in the shop's records (a blocking read)."""
    from bot.store.factory import open_store

    store: Any = open_store(settings)
    try:
        customer = store.get_customer(customer_id)
        return None if customer is None else str(customer.email)
    finally:
        store.close()
