"""Live fan-out of a conversation's events, and the bot's turns.

A :class:`Subscriber` is one open socket: frames for it go through its own
queue, drained by one writer task, so the events of a conversation reach each
socket in ``seq`` order, and none twice. The :class:`Hub` knows which sockets
follow which conversation and runs the bot's turns, one conversation at a
time, as tasks that outlive the socket that started them: a shopper who drops
off mid-turn finds the answer waiting when they come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from handoff.exceptions import ProtocolError, RasaUnavailable
from handoff.persistence import ConversationStore, StoredEvent
from handoff.protocol import error_frame, typing_frame
from handoff.rasa_bridge import RasaBridge, replies_to_frames

__all__ = ["Hub", "Subscriber"]

log = logging.getLogger("gateway.hub")

#: Pauses between retries of a conversation's unanswered messages while Rasa is away.
RETRY_FIRST_DELAY = 1.0
RETRY_MAX_DELAY = 30.0

#: What the shopper reads when a handoff is requested while no person can take
#: chats in the gateway yet.
NO_AGENT_TEXT = (
    "No one from our team can take chats right now. Please email us at {email} and "
    "we'll get back to you. I'm still here if I can help with anything else."
)


class Subscriber:
    """One socket following one conversation."""

    def __init__(self, ws: web.WebSocketResponse, last_seq: int) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        #: Highest seq queued for this socket; events at or below it are not sent again.
        self.sent_seq = last_seq
        self._writer = asyncio.create_task(self._write_loop())

    def push_event(self, event: StoredEvent) -> None:
        if event.seq > self.sent_seq:
            self.sent_seq = event.seq
            self._queue.put_nowait(event.frame)

    def push_control(self, frame: dict[str, Any]) -> None:
        self._queue.put_nowait(frame)

    async def close(self) -> None:
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_json(frame)
            except (ConnectionError, RuntimeError):
                return


class Hub:
    """Sockets per conversation, and the bot turns that answer shopper messages."""

    def __init__(self, store: ConversationStore, bridge: RasaBridge, support_email: str) -> None:
        self.store = store
        self.bridge = bridge
        self.support_email = support_email
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._retry_delay: dict[str, float] = {}
        self._retry_handles: dict[str, asyncio.TimerHandle] = {}

    # -- subscriptions --------------------------------------------------

    def subscribe(self, conversation_id: str, subscriber: Subscriber, after_seq: int) -> None:
        """Queue what the socket missed, then follow new events.

        Both happen without yielding to the event loop, so no event can fall
        between the replay and the live stream.
        """
        for event in self.store.events_after(conversation_id, after_seq):
            subscriber.push_event(event)
        self._subscribers[conversation_id].add(subscriber)

    def unsubscribe(self, conversation_id: str, subscriber: Subscriber) -> None:
        followers = self._subscribers.get(conversation_id)
        if followers is not None:
            followers.discard(subscriber)
            if not followers:
                del self._subscribers[conversation_id]
                # Nobody is waiting: stop retrying; the next hello tries again.
                handle = self._retry_handles.pop(conversation_id, None)
                if handle is not None:
                    handle.cancel()
                self._retry_delay.pop(conversation_id, None)

    def publish(self, conversation_id: str, events: list[StoredEvent]) -> None:
        """Send stored events to every socket following the conversation."""
        for subscriber in self._subscribers.get(conversation_id, ()):
            for event in events:
                subscriber.push_event(event)

    def signal(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """Send a control frame (not stored, no seq) to every follower."""
        for subscriber in self._subscribers.get(conversation_id, ()):
            subscriber.push_control(frame)

    # -- bot turns ------------------------------------------------------

    def answer_pending(self, conversation_id: str) -> None:
        """Start (in the background) answering the conversation's pending shopper messages."""
        self._spawn(self._answer_pending(conversation_id))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_pending(self, conversation_id: str) -> None:
        # One turn at a time per conversation keeps replies in message order.
        async with self._locks[conversation_id]:
            for message in self.store.pending_messages(conversation_id):
                if not await self._bot_turn(conversation_id, message):
                    self._retry_later(conversation_id)
                    return
            self._retry_delay.pop(conversation_id, None)

    def _retry_later(self, conversation_id: str) -> None:
        """Try the conversation's pending messages again after a growing pause.

        Retries go on while someone follows the conversation; a shopper who
        comes back later gets them answered on their hello.
        """
        if conversation_id not in self._subscribers or conversation_id in self._retry_handles:
            return
        delay = self._retry_delay.get(conversation_id, RETRY_FIRST_DELAY)
        self._retry_delay[conversation_id] = min(delay * 2, RETRY_MAX_DELAY)

        def fire() -> None:
            self._retry_handles.pop(conversation_id, None)
            if conversation_id in self._subscribers:
                self.answer_pending(conversation_id)

        self._retry_handles[conversation_id] = asyncio.get_running_loop().call_later(delay, fire)

    async def _bot_turn(self, conversation_id: str, message: StoredEvent) -> bool:
        conversation = self.store.get(conversation_id)
        if conversation is None:
            return False
        if conversation.mode != "bot":
            self.store.skip_pending(conversation_id, message.seq)
            return True
        text = message.frame.get("payload") or message.frame["text"]
        metadata = {"page": conversation.page or {}, "conversation_id": conversation_id}
        self.signal(conversation_id, typing_frame(True))
        try:
            replies = await self.bridge.send(conversation_id, text, metadata)
        except RasaUnavailable as error:
            log.warning("conversation=%s seq=%s bot turn failed: %s", conversation_id,
                        message.seq, error)
            self.signal(conversation_id, typing_frame(False))
            if conversation_id in self._retry_delay:
                return False  # the shopper was told on the first failure
            self.signal(
                conversation_id,
                error_frame(ProtocolError(
                    "bot_unavailable",
                    "The assistant is not reachable right now. Your message is saved and "
                    "will be answered as soon as it is back.",
                    message.frame.get("client_id"),
                )),
            )
            return False
        frames = replies_to_frames(replies, reply_to=message.seq)
        frames += [self._no_agent_notice(message.seq) for f in frames if f["type"] == "handoff"]
        events = self.store.answer(conversation_id, message.seq, frames)
        log.info("conversation=%s seq=%s answered with %d events", conversation_id,
                 message.seq, len(events))
        self.publish(conversation_id, events)
        self.signal(conversation_id, typing_frame(False))
        return True

    def _no_agent_notice(self, reply_to: int) -> dict[str, Any]:
        return {
            "type": "message",
            "author": "system",
            "text": NO_AGENT_TEXT.format(email=self.support_email),
            "reply_to": reply_to,
        }

    async def close(self) -> None:
        """Wait briefly for running bot turns (their results are stored), then stop them."""
        for handle in self._retry_handles.values():
            handle.cancel()
        self._retry_handles.clear()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
        for followers in list(self._subscribers.values()):
            for subscriber in list(followers):
                await subscriber.close()

