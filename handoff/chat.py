"""``/ws/chat``: the shopper's websocket, in bot mode.

The handler only moves frames: :mod:`handoff.protocol` validates them,
:mod:`handoff.db.conversations` stores them, :class:`handoff.hub.Hub` fans them out
and runs the bot.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from bot.identity import IdentityError, verify_identity
from bot.settings import Settings
from handoff.db.conversations import BOT, QUEUED, Change
from handoff.desk import Desk
from handoff.exceptions import ProtocolError, ResumeRejected
from handoff.hub import Hub, Subscriber
from handoff.protocol import (
    MAX_FRAME_BYTES,
    Csat,
    Hello,
    IdentityIn,
    LanguageIn,
    LeaveQueue,
    MessageIn,
    OfflineMessage,
    PageUpdate,
    Ping,
    TypingIn,
    ack_frame,
    error_frame,
    internal_error,
    parse_client_frame,
    pong_frame,
    shopper_message,
    welcome_frame,
)

__all__ = ["HELLO_TIMEOUT_CLOSE", "ChatSession", "origin_allowed"]

log = logging.getLogger("gateway.chat")

#: Close code for a socket that sent no hello in time (4000-4999 are the application's).
HELLO_TIMEOUT_CLOSE = 4408


def origin_allowed(origin: str | None, own: frozenset[str], allowed: list[str]) -> bool:
    """Browsers send ``Origin``; only the gateway's own pages and configured shops may connect.

    ``own`` comes from configuration, never from the request's ``Host`` header: a
    DNS-rebinding page sends a ``Host`` and ``Origin`` of its own name, which agree.
    Non-browser clients send no ``Origin`` and are let through: they cannot ride on
    a shopper's cookies, and a conversation is guarded by its resume token anyway.
    """
    if origin is None:
        return True
    return origin in own or origin in allowed or "*" in allowed


class ChatSession:
    """The state of one shopper socket: which conversation it follows."""

    def __init__(self, hub: Hub, desk: Desk, ws: web.WebSocketResponse,
                 settings: Settings) -> None:
        self.hub = hub
        self.conversations = hub.conversations
        self.desk = desk
        self.settings = settings
        self.subscriber = Subscriber(ws, last_seq=0)
        self.conversation_id: str | None = None

    async def run(self, ws: web.WebSocketResponse) -> None:
        deadline = asyncio.get_running_loop().time() + self.settings.handshake_timeout
        while not ws.closed:
            # Until the hello, the socket has until the deadline: pings do not extend it.
            timeout = (None if self.conversation_id is not None
                       else max(0.0, deadline - asyncio.get_running_loop().time()))
            try:
                message = await ws.receive(timeout=timeout)
            except TimeoutError:
                await self._refuse(ws)
                return
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await self.on_frame(message.data)
            elif message.type == WSMsgType.ERROR:
                log.info("socket error: %s", ws.exception())
                return
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return

    async def _refuse(self, ws: web.WebSocketResponse) -> None:
        timeout = self.settings.handshake_timeout
        self.subscriber.push_control(error_frame(ProtocolError(
            "hello_timeout", f"No hello within {timeout:g} s; connect again and send it first."
        )))
        await self.subscriber.close()  # the error frame goes out before the close
        await ws.close(code=HELLO_TIMEOUT_CLOSE, message=b"hello timeout")

    async def on_frame(self, raw: str | bytes) -> None:
        try:
            await self._on_frame(raw)
        except ProtocolError as error:
            log.info("conversation=%s rejected frame: %s", self.conversation_id, error.code)
            self.subscriber.push_control(error_frame(error))
        except Exception:  # a bug must cost one frame, never the shopper's socket
            log.exception("conversation=%s frame failed", self.conversation_id)
            self.subscriber.push_control(error_frame(internal_error()))

    async def _on_frame(self, raw: str | bytes) -> None:
        frame = parse_client_frame(raw)
        if isinstance(frame, Hello):
            await self._hello(frame)
        elif isinstance(frame, Ping):
            self.subscriber.push_control(pong_frame())
        else:
            conversation_id = self.conversation_id
            if conversation_id is None:
                raise ProtocolError(
                    "not_joined", "Send a hello frame first.", getattr(frame, "client_id", None)
                )
            if isinstance(frame, MessageIn):
                await self._message(conversation_id, frame)
            elif isinstance(frame, PageUpdate):
                await self.conversations.set_page(conversation_id,
                                                  frame.page.model_dump(exclude_none=True))
            elif isinstance(frame, IdentityIn):
                await self._identify(conversation_id, frame.token)
            elif isinstance(frame, LanguageIn):
                await self.conversations.set_lang(conversation_id, frame.lang)
            elif isinstance(frame, TypingIn):
                self.desk.shopper_typing(conversation_id, frame.on)
            elif isinstance(frame, OfflineMessage):
                self._acknowledge(frame.client_id, self.desk.leave_message(
                    conversation_id, frame.client_id, frame.email, frame.text
                ))
            elif isinstance(frame, Csat):
                self._acknowledge(frame.client_id, self.desk.rate(
                    conversation_id, frame.client_id, frame.handoff_id, frame.score,
                    frame.comment,
                ))
            elif isinstance(frame, LeaveQueue):
                self._acknowledge(
                    frame.client_id, self.desk.leave_queue(conversation_id, frame.client_id)
                )

    async def _hello(self, hello: Hello) -> None:
        if self.conversation_id is not None:
            raise ProtocolError("already_joined", "This socket already follows a conversation.")
        store = self.conversations
        page = hello.page.model_dump(exclude_none=True) if hello.page else None
        token = None
        if hello.conversation_id is not None:
            conversation = await store.authenticate(hello.conversation_id, hello.resume_token or "")
            # A client that claims to have seen events we never sent is talking
            # about another database: resuming would silently skip events.
            if conversation is None or hello.last_seq > conversation.last_seq:
                raise ResumeRejected()
            if page:
                await store.set_page(conversation.id, page)
            if hello.lang is not None and hello.lang != conversation.lang:
                await store.set_lang(conversation.id, hello.lang)
            after = hello.last_seq
        else:
            conversation, token = await store.create_conversation(page, hello.lang or "en")
            after = 0
            log.info("conversation=%s created", conversation.id)
        self.conversation_id = conversation.id
        if hello.identity is not None:
            await self._identify(conversation.id, hello.identity)
        self.subscriber.push_control(
            welcome_frame(conversation.id, conversation.last_seq, conversation.mode, token)
        )
        await self.hub.subscribe(conversation.id, self.subscriber, after)
        if conversation.mode == QUEUED:
            status = self.desk.queue_status(conversation.id)
            if status is not None:
                self.subscriber.push_control(status)
        # Anything left unanswered (Rasa was down, the gateway restarted) is retried now.
        self.hub.answer_pending(conversation.id)

    async def _identify(self, conversation_id: str, token: str) -> None:
        """Trust a customer id only when the shop's signature on it checks out.

        A bad token is logged and otherwise ignored: the shopper stays as they
        were (anonymous, or the customer verified earlier), and must prove any
        order is theirs with its email.
        """
        secret = self.settings.identity_secret
        try:
            customer_id = verify_identity(
                token, secret.get_secret_value() if secret else "",
                self.settings.identity_max_ttl,
            ).customer_id
        except IdentityError as error:
            log.warning("conversation=%s identity ignored: %s", conversation_id, error)
            return
        await self.conversations.set_customer(conversation_id, customer_id)
        log.info("conversation=%s verified customer", conversation_id)

    def _acknowledge(self, client_id: str, change: Change) -> None:
        self.subscriber.push_control(
            ack_frame(client_id, change.events[0].seq, duplicate=not change.new)
        )

    async def _message(self, conversation_id: str, message: MessageIn) -> None:
        store = self.conversations
        frame = shopper_message(message.text)
        if message.payload is not None:
            conversation = await store.get(conversation_id)
            if conversation is None or conversation.mode != BOT:
                raise ProtocolError(
                    "unknown_payload",
                    "Buttons are for the assistant; a person has this chat, please type.",
                    message.client_id,
                )
            # Never trust a client's payload: Rasa would read "/intent{...}" as a
            # prediction with entities. Only buttons the bot offered are accepted.
            if message.payload not in await store.recent_buttons(conversation_id):
                raise ProtocolError(
                    "unknown_payload",
                    "That button is not available any more; please type your message.",
                    message.client_id,
                )
            frame["payload"] = message.payload
        event, new = await store.append_shopper_message(conversation_id, message.client_id,
                                                        frame)
        self.subscriber.push_control(ack_frame(message.client_id, event.seq, duplicate=not new))
        if new:
            self.hub.publish(conversation_id, [event])
            await self.hub.shopper_message(conversation_id, event)

    async def close(self) -> None:
        if self.conversation_id is not None:
            self.hub.unsubscribe(self.conversation_id, self.subscriber)
        await self.subscriber.close()


def websocket_response() -> web.WebSocketResponse:
    """A socket for the chat or the console. No permessage-deflate: the frames are small
    JSON (compressing them was a third of the gateway's work per bot turn in
    bench/bot_turn.py, and a zlib context per socket is memory held by every idle one)."""
    return web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME_BYTES, compress=False)
