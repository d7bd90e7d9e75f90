"""Live fan-out of a conversation's events, and the bot's turns.

A :class:`Subscriber` is one open socket: frames for it are written in the order
they were pushed, by at most one flushing task at a time, so the events of a
conversation reach each socket in ``seq`` order, and none twice. The :class:`Hub`
knows which sockets follow which conversation and runs the bot's turns, one
conversation at a time, as tasks that outlive the socket that started them: a
shopper who drops off mid-turn finds the answer waiting when they come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.i18n import text
from handoff.agent_protocol import event_frame
from handoff.db.conversations import (
    BOT,
    PENDING,
    Conversations,
    ConversationStore,
    SqliteConversations,
    StoredEvent,
)
from handoff.exceptions import ProtocolError, RasaUnavailable
from handoff.fanout import EventLog, Fanout, LocalBus
from handoff.protocol import error_frame, system_message, typing_frame
from handoff.rasa_bridge import Bot, replies_to_frames

__all__ = [
    "BACKLOG_LIMIT", "AgentView", "Follower", "Hub", "Subscriber", "send_frames", "split_backlog",
]

log = logging.getLogger("gateway.hub")

#: Pauses between retries of a conversation's unanswered messages while Rasa is away.
RETRY_FIRST_DELAY = 1.0
RETRY_MAX_DELAY = 30.0
#: Up to this many unanswered messages are each answered; a longer backlog only by its
#: newest message (see :func:`split_backlog`).
BACKLOG_LIMIT = 5
#: Seconds a gateway process holds a bot turn it took (more than Rasa's default timeout),
#: and the slack before another process looks again once that lease has run out.
TURN_LEASE = 45.0
LEASE_SLACK = 0.2
#: Conversations whose verified customer the hub remembers having given Rasa.
TOLD_RASA_KEPT = 10_000


def split_backlog(
    pending: list[StoredEvent], limit: int = BACKLOG_LIMIT
) -> tuple[list[StoredEvent], int]:
    """The pending messages the bot answers, in order, and how many older ones it lets go.

    A few messages typed while the bot was away (Rasa restarting, a model
    switch, a gateway restart) are each answered, oldest first: the shopper
    asked each of them and expects each answered. A longer backlog means the
    shopper waited a long time and has moved on: what they want now is in
    their latest message (often the earlier questions again, reworded), and a
    reply to every stale question, one after another, would bury that answer
    under a wall of text (and keep Rasa busy for minutes). So only the newest
    message is answered, in one turn; the older ones are let go, and the
    shopper is told so, to ask again about anything earlier that still matters.
    """
    if len(pending) <= limit:
        return pending, 0
    return pending[-1:], len(pending) - 1


def _backlog_notice(skipped: int, lang: str) -> dict[str, Any]:
    return {**system_message(text("bot.backlog", lang, skipped=skipped)), "skipped": skipped}


class Follower(Protocol):
    """Something that receives a conversation's events: a shopper socket or an agent's view."""

    role: str
    #: The highest seq queued for it: what it has, every seq up to this one.
    sent_seq: int

    def push_event(self, event: StoredEvent) -> None: ...

    def push_control(self, frame: dict[str, Any]) -> None: ...


class Subscriber:
    """One socket and its ordered writer; a shopper socket follows one conversation with it.

    An idle socket holds no queue and no task: the first frame pushed starts a task that
    writes it and whatever is pushed while it writes, in order, and ends when nothing is
    left (a queue and a writer task per socket were about 4 KiB of every idle socket's
    cost, bench/agent_relay.py). A socket that failed or was closed takes no more frames.
    """

    __slots__ = ("_closing", "_flusher", "_pending", "sent_seq", "ws")

    role = "shopper"

    def __init__(self, ws: web.WebSocketResponse, last_seq: int) -> None:
        self.ws = ws
        #: Highest seq queued for this socket; events at or below it are not sent again.
        self.sent_seq = last_seq
        #: Frames waiting for the running flush (None: no flush is running).
        self._pending: list[dict[str, Any]] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    def push_event(self, event: StoredEvent) -> None:
        if event.seq > self.sent_seq:
            self.sent_seq = event.seq
            self._push(event.frame)

    def push_control(self, frame: dict[str, Any]) -> None:
        self._push(frame)

    def _push(self, frame: dict[str, Any]) -> None:
        if self._closing:
            return
        if self._pending is not None:  # the running flush takes it after the others
            self._pending.append(frame)
            return
        self._pending = [frame]
        self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def close(self) -> None:
        """Write what was pushed so far, then take nothing more."""
        self._closing = True
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def _flush(self) -> None:
        try:
            while self._pending:
                frames, self._pending = self._pending, []
                if self.ws.closed:
                    self._closing = True
                    return
                try:
                    await send_frames(self.ws, frames)
                except (ConnectionError, RuntimeError):
                    self._closing = True
                    return
        finally:
            # No await since the last check: nothing pushed meanwhile can be left behind.
            self._pending = None
            self._flusher = None


class _Batch:
    """Stands in for a websocket's transport while a batch of frames is framed: it keeps
    their bytes, to be handed to the real transport in one write."""

    __slots__ = ("chunks", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()


async def send_frames(ws: web.WebSocketResponse, frames: list[dict[str, Any]]) -> None:
    """Write ``frames`` to ``ws`` in order, as one write to the socket when there are several.

    A bot turn sends a few frames at once (the replies, then "stopped typing"); one
    system call each was the largest part of the gateway's work per turn under load
    (bench/bot_turn.py). aiohttp frames each message and writes it to its transport at
    once, so for a batch its writer is pointed at a :class:`_Batch` that collects the
    frames' bytes, and the real transport gets them in one write. Framing stays
    aiohttp's own; nothing else can write in between (no await suspends while the
    batch is framed: uncompressed frames are written synchronously).
    """
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    if len(frames) == 1 or writer is None or transport is None:
        for frame in frames:
            await ws.send_json(frame)
        return
    batch = _Batch(transport)
    writer.transport = batch
    try:
        for frame in frames:
            await ws.send_json(frame)
    finally:
        writer.transport = transport
    if batch.chunks:
        transport.write(b"".join(batch.chunks))


class AgentView:
    """An agent's socket following one conversation: its events go out wrapped
    with the conversation id, each once, in order."""

    role = "agent"

    def __init__(self, socket: Subscriber, conversation_id: str, last_seq: int) -> None:
        self.socket = socket
        self.conversation_id = conversation_id
        self.sent_seq = last_seq

    def push_event(self, event: StoredEvent) -> None:
        if event.seq > self.sent_seq:
            self.sent_seq = event.seq
            self.socket.push_control(event_frame(self.conversation_id, event.frame))

    def push_control(self, frame: dict[str, Any]) -> None:
        self.socket.push_control({**frame, "conversation_id": self.conversation_id})


@dataclass
class _CatchUp:
    """A follower reading what it lacks from the log: the seq it must reach, and the
    events delivered to it meanwhile, held back until the sequence reaches them."""

    target: int
    held: list[StoredEvent] = field(default_factory=list)


class Hub:
    """Sockets per conversation, and the bot turns that answer shopper messages."""

    def __init__(self, store: ConversationStore, bridge: Bot, *,
                 conversations: Conversations | None = None,
                 event_log: EventLog | None = None,
                 fanout: Fanout | None = None,
                 turn_lease: float = TURN_LEASE) -> None:
        self.store = store
        self.bridge = bridge
        #: Who this process is when it takes a bot turn (Conversations.claim_turn), and
        #: for how long: longer than a turn may take (the Rasa timeout).
        self.owner = uuid.uuid4().hex
        self.turn_lease = turn_lease
        #: The store as the sockets and the bot turns use it (awaited): the SQLite file's,
        #: or a shared database's (handoff.db.pg_conversations).
        self.conversations: Conversations = conversations or SqliteConversations(store)
        self.event_log: EventLog = event_log or self.conversations
        self.fanout: Fanout = fanout or LocalBus()
        self._stop_listening = self.fanout.listen(self)
        self._catching_up: dict[Follower, _CatchUp] = {}
        #: Called after a bot turn opened a handoff (set by the desk).
        self.on_handoff: Callable[[str], Awaitable[None]] | None = None
        #: Called with each bot turn's raw replies (the order updates read the order
        #: form's notices in them).
        self.on_replies: Callable[[str, list[Any]], None] | None = None
        self._subscribers: dict[str, set[Follower]] = defaultdict(set)
        #: One lock per conversation with a turn running or waiting; a lock nobody holds
        #: or waits for is dropped (a long-running gateway sees millions of conversations).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        self._tasks: set[asyncio.Task[None]] = set()
        self._retry_delay: dict[str, float] = {}
        self._retry_handles: dict[str, asyncio.TimerHandle] = {}
        #: The verified customer each conversation's Rasa tracker was last given, for the
        #: most recent conversations (forgotten or after a restart: given again, harmlessly).
        self._told_rasa: OrderedDict[str, str] = OrderedDict()

    # -- subscriptions --------------------------------------------------

    async def subscribe(self, conversation_id: str, subscriber: Follower, after_seq: int) -> None:
        """Follow the conversation from ``after_seq``: registered first, then what the
        socket missed is replayed from the log, then what was announced meanwhile is
        flushed; returns once the follower is live. Any number of awaits may come in
        between (a networked log, other tasks): nothing falls between replay and stream.
        """
        subscriber.sent_seq = after_seq
        self._subscribers[conversation_id].add(subscriber)
        await self._catch_up(conversation_id, subscriber, self._hold(subscriber, after_seq))

    def unsubscribe(self, conversation_id: str, subscriber: Follower) -> None:
        self._catching_up.pop(subscriber, None)
        followers = self._subscribers.get(conversation_id)
        if followers is not None:
            followers.discard(subscriber)
            if not any(f.role == "shopper" for f in followers):
                # Nobody is waiting: stop retrying; the next hello tries again.
                handle = self._retry_handles.pop(conversation_id, None)
                if handle is not None:
                    handle.cancel()
                self._retry_delay.pop(conversation_id, None)
            if not followers:
                del self._subscribers[conversation_id]

    def shopper_online(self, conversation_id: str) -> bool:
        return any(f.role == "shopper" for f in self._subscribers.get(conversation_id, ()))

    def publish(self, conversation_id: str, events: list[StoredEvent]) -> None:
        """Send events this process stored to the sockets following the conversation here,
        then announce them to every process (see :mod:`handoff.fanout`)."""
        if not events:
            return
        for follower in self._subscribers.get(conversation_id, ()):
            self._deliver(conversation_id, follower, events)
        self.fanout.announce(conversation_id, events[-1].seq)

    def signal(self, conversation_id: str, frame: dict[str, Any], role: str | None = None) -> None:
        """Send a control frame (not stored, no seq) to every follower, or those of one
        role, in every process."""
        self.fanout.signal(conversation_id, frame, role)

    # The bus's notices (handoff.fanout.Listener), from this process or another.

    def stored(self, conversation_id: str, seq: int) -> None:
        """The log reaches ``seq``: a follower behind it (the events were stored by
        another process) reads what it lacks."""
        for follower in self._subscribers.get(conversation_id, ()):
            catching_up = self._catching_up.get(follower)
            if catching_up is not None:
                catching_up.target = max(catching_up.target, seq)
            elif follower.sent_seq < seq:
                self._spawn(self._catch_up(conversation_id, follower, self._hold(follower, seq)))

    def following(self) -> list[str]:
        return list(self._subscribers)

    def signalled(self, conversation_id: str, frame: dict[str, Any], role: str | None) -> None:
        for follower in self._subscribers.get(conversation_id, ()):
            if role is None or follower.role == role:
                follower.push_control(frame)

    def _deliver(self, conversation_id: str, follower: Follower,
                 events: list[StoredEvent]) -> None:
        """Events in seq order, each once: held while the follower catches up; a gap
        before them (stored but announced out of order) sends it to catch up."""
        catching_up = self._catching_up.get(follower)
        if catching_up is not None:
            catching_up.held.extend(events)
        elif events[0].seq > follower.sent_seq + 1:
            catching_up = self._hold(follower, events[-1].seq)
            catching_up.held.extend(events)
            self._spawn(self._catch_up(conversation_id, follower, catching_up))
        else:
            for event in events:
                follower.push_event(event)

    def _hold(self, follower: Follower, target: int) -> _CatchUp:
        """From now on, events for ``follower`` wait until it has caught up to ``target``."""
        catching_up = self._catching_up[follower] = _CatchUp(target)
        return catching_up

    async def _catch_up(self, conversation_id: str, follower: Follower,
                        catching_up: _CatchUp) -> None:
        """Bring ``follower`` up to what the log holds: read from the log, then take the
        events held meanwhile while they continue the sequence, and read again while
        anything is still missing. Nothing can arrive between the last check and going
        live (no await in between)."""
        try:
            while self._catching_up.get(follower) is catching_up:  # unsubscribed: stop
                before = follower.sent_seq
                missed = await self.event_log.events_after(conversation_id, follower.sent_seq)
                for event in missed:
                    follower.push_event(event)
                held = sorted(catching_up.held, key=lambda event: event.seq)
                catching_up.held.clear()
                for event in held:
                    if event.seq == follower.sent_seq + 1:
                        follower.push_event(event)
                    catching_up.target = max(catching_up.target, event.seq)
                if follower.sent_seq >= catching_up.target:
                    return
                if follower.sent_seq == before and not held:
                    # The log has nothing newer yet (its notice came first): the next
                    # notice or publish starts another catch-up.
                    return
        finally:
            if self._catching_up.get(follower) is catching_up:
                del self._catching_up[follower]

    # -- bot turns ------------------------------------------------------

    def answer_pending(self, conversation_id: str) -> None:
        """Start (in the background) answering the conversation's pending shopper messages."""
        self._spawn(self._answer_pending(conversation_id))

    async def shopper_message(self, conversation_id: str, message: StoredEvent) -> None:
        """A new shopper message is stored: the bot answers it, or, when it was stored
        while a person had the chat, it only goes into Rasa's tracker (in the background).

        The tracker copy is a record, not a promise: a gateway that dies before
        writing it leaves it out, and the message stays with the person.
        """
        if await self.conversations.bot_state(conversation_id, message.seq) == PENDING:
            self.answer_pending(conversation_id)
        else:
            self._spawn(self._record_for_person(conversation_id, message))

    async def _record_for_person(self, conversation_id: str, message: StoredEvent) -> None:
        async with self._lock(conversation_id):  # after any turn Rasa is still taking
            await self._record(conversation_id, message)

    async def _record(self, conversation_id: str, message: StoredEvent) -> None:
        text = message.frame.get("payload") or message.frame["text"]
        try:
            await self.bridge.record_user_message(conversation_id, text, message.seq)
        except RasaUnavailable as error:
            log.warning("conversation=%s seq=%s not recorded in the tracker: %s",
                        conversation_id, message.seq, error)

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        """The conversation's turn lock; it lives while a coroutine holds or awaits it."""
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        return lock

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_pending(self, conversation_id: str) -> None:
        # One turn at a time per conversation keeps replies in message order.
        async with self._lock(conversation_id):
            pending = await self.conversations.pending_messages(conversation_id)
            answer, skipped = split_backlog(pending)
            if skipped:
                log.info("conversation=%s backlog of %d: answering only seq=%s",
                         conversation_id, skipped + 1, answer[0].seq)
            for message in answer:
                retry_in = await self._bot_turn(conversation_id, message, skipped)
                if retry_in is not None:
                    self._retry_later(conversation_id, retry_in or None)
                    return
            self._retry_delay.pop(conversation_id, None)

    def _retry_later(self, conversation_id: str, delay: float | None = None) -> None:
        """Try the conversation's pending messages again after ``delay`` seconds, or by
        default after a growing pause (Rasa is away).

        Retries go on while someone follows the conversation; a shopper who
        comes back later gets them answered on their hello.
        """
        if not self.shopper_online(conversation_id):
            return
        loop = asyncio.get_running_loop()
        scheduled = self._retry_handles.get(conversation_id)
        if delay is None:
            if scheduled is not None:
                return
            delay = self._retry_delay.get(conversation_id, RETRY_FIRST_DELAY)
            self._retry_delay[conversation_id] = min(delay * 2, RETRY_MAX_DELAY)
        elif scheduled is not None:
            if scheduled.when() <= loop.time() + delay:
                return  # a retry comes soon enough
            scheduled.cancel()  # another process's lease ends sooner: look again then

        def fire() -> None:
            self._retry_handles.pop(conversation_id, None)
            if self.shopper_online(conversation_id):
                self.answer_pending(conversation_id)

        self._retry_handles[conversation_id] = loop.call_later(delay, fire)

    async def _bot_turn(
        self, conversation_id: str, message: StoredEvent, skipped: int = 0
    ) -> float | None:
        """Answer one message (and let ``skipped`` older pending ones go). None when that
        is done; otherwise try again in so many seconds (0: after the growing pause)."""
        conversation = await self.conversations.get(conversation_id)
        if conversation is None:
            return 0.0
        if await self.conversations.bot_state(conversation_id, message.seq) != PENDING:
            return None  # let go meanwhile: the chat was closed, or a backlog cut
        text = message.frame.get("payload") or message.frame["text"]
        if conversation.mode != BOT:
            # A person took the chat before the bot got to it: the message is theirs
            # (and so is any older backlog). Rasa only records it.
            await self.conversations.skip_pending(conversation_id, message.seq,
                                                  older=skipped > 0)
            await self._record(conversation_id, message)
            return None
        claim = await self.conversations.claim_turn(conversation_id, message.seq, self.owner,
                                                    self.turn_lease)
        if not claim.granted:
            # Another gateway process runs this turn; its answer reaches this process's
            # sockets through the log. If it died holding the turn, it is taken over
            # once its lease runs out.
            log.info("conversation=%s seq=%s is another process's turn for %.1f s",
                     conversation_id, message.seq, claim.retry_in)
            return claim.retry_in + LEASE_SLACK
        metadata = {
            "page": conversation.page or {}, "conversation_id": conversation_id,
            "seq": message.seq, "lang": conversation.lang,
        }
        customer = conversation.customer_id
        self.signal(conversation_id, typing_frame(True))
        try:
            if customer is not None and self._told_rasa.get(conversation_id) != customer:
                # Only ever a customer the storefront vouched for (ChatSession._identify),
                # set once through Rasa's API rather than by a custom action on every turn.
                await self.bridge.set_slot(conversation_id, "customer_id", customer)
                self._told_rasa[conversation_id] = customer
                self._told_rasa.move_to_end(conversation_id)
                if len(self._told_rasa) > TOLD_RASA_KEPT:
                    self._told_rasa.popitem(last=False)
            replies = await self.bridge.send(conversation_id, text, metadata)
        except RasaUnavailable as error:
            log.warning("conversation=%s seq=%s bot turn failed: %s", conversation_id,
                        message.seq, error)
            self.signal(conversation_id, typing_frame(False))
            if conversation_id in self._retry_delay:
                return 0.0  # the shopper was told on the first failure
            self.signal(
                conversation_id,
                error_frame(ProtocolError(
                    "bot_unavailable",
                    "The assistant is not reachable right now. Your message is saved and "
                    "will be answered as soon as it is back.",
                    message.frame.get("client_id"),
                )),
            )
            return 0.0
        if self.on_replies is not None:
            self.on_replies(conversation_id, replies)
        frames = replies_to_frames(replies, reply_to=message.seq)
        if skipped:
            frames.insert(0, _backlog_notice(skipped, conversation.lang))
        events = await self.conversations.answer(conversation_id, message.seq, frames,
                                                 skip_older=skipped > 0, owner=self.owner)
        log.debug("conversation=%s seq=%s answered with %d events", conversation_id,
                 message.seq, len(events))
        self.publish(conversation_id, events)
        self.signal(conversation_id, typing_frame(False))
        if self.on_handoff is not None and any(e.frame["type"] == "handoff" for e in events):
            await self.on_handoff(conversation_id)
        return None

    async def close(self) -> None:
        """Wait briefly for running bot turns (their results are stored), then stop them."""
        self._stop_listening()
        for handle in self._retry_handles.values():
            handle.cancel()
        self._retry_handles.clear()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
        for followers in list(self._subscribers.values()):
            for follower in list(followers):
                if isinstance(follower, Subscriber):
                    await follower.close()

