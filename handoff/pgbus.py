"""The fan-out between gateway processes that share PostgreSQL and Redis
(:class:`~handoff.fanout.Fanout`, as :class:`~handoff.fanout.LocalBus` is within one).

- **Stored events** are announced by the database itself: the transaction that stores
  them calls ``pg_notify`` (:mod:`handoff.db.pg_conversations`), so a notice exists only
  if the events do, and notices arrive in commit order. This bus LISTENs on its own
  connection and tells the hubs "the log reaches seq N"; a hub whose socket lacks
  events reads them from the log. :meth:`PostgresBus.announce` has nothing to add.
- **A lost LISTEN connection** loses the notices sent meanwhile: the bus connects
  again (with a growing pause) and then resyncs every conversation its hubs follow to
  the seq the database holds, so nothing stored in between is missed.
- **Signals** (typing, queue positions: never stored) go to this process's hubs at
  once and to the others over Redis pub/sub, in the order sent; a process ignores its
  own. Losing one costs nothing stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis

from handoff.db.pg_conversations import EVENTS_CHANNEL
from handoff.fanout import Listener

__all__ = ["SIGNALS_CHANNEL", "PostgresBus"]

log = logging.getLogger("gateway.bus")

#: The Redis pub/sub channel for signals.
SIGNALS_CHANNEL = "shopchat:signals"
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 5.0


class LastSeqs(Protocol):
    async def last_seqs(self, conversation_ids: list[str]) -> dict[str, int]: ...


class PostgresBus:
    """LISTEN/NOTIFY for stored events, Redis pub/sub for signals."""

    def __init__(self, database_url: str, redis_url: str, log_state: LastSeqs) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.log_state = log_state
        #: Tells this process's own signals apart when Redis hands them back.
        self.origin = uuid.uuid4().hex
        self._listeners: list[Listener] = []
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._redis: aioredis.Redis | None = None
        self._outgoing: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        #: The pause before connecting again after the LISTEN connection is lost; it
        #: doubles while attempts fail.
        self.reconnect_delay = RECONNECT_FIRST_DELAY

    async def start(self) -> None:
        self._redis = aioredis.from_url(self.redis_url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(SIGNALS_CHANNEL)
        await self._listen()
        self._tasks = [asyncio.create_task(self._keep_listening()),
                       asyncio.create_task(self._receive_signals(pubsub)),
                       asyncio.create_task(self._send_signals())]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        if self._redis is not None:
            await self._redis.aclose()

    # -- Fanout ---------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def announce(self, conversation_id: str, seq: int) -> None:
        """Nothing to do: the storing transaction notified every process."""

    def signal(self, conversation_id: str, frame: dict[str, Any], role: str | None) -> None:
        for listener in list(self._listeners):
            listener.signalled(conversation_id, frame, role)
        self._outgoing.put_nowait(json.dumps({"origin": self.origin, "conversation_id":
                                              conversation_id, "frame": frame, "role": role}))

    # -- stored events --------------------------------------------------

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(EVENTS_CHANNEL, self._notified)
        self._conn = conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        conversation_id, _, seq = payload.rpartition(":")
        for listener in list(self._listeners):
            listener.stored(conversation_id, int(seq))

    async def _keep_listening(self) -> None:
        """Connect again after the LISTEN connection is lost, then resync."""
        while not self._closing:
            await self._lost.wait()
            log.warning("LISTEN connection lost; connecting again")
            delay = self.reconnect_delay
            while not self._closing:
                await asyncio.sleep(delay)  # a server that is restarting needs a moment
                try:
                    await self._listen()
                    break
                except (OSError, asyncpg.PostgresError) as error:
                    log.warning("LISTEN connection failed, retrying: %s", error)
                    delay = min(delay * 2, RECONNECT_MAX_DELAY)
            await self._resync()

    async def _resync(self) -> None:
        """Tell every listener where the log of each conversation it follows stands now."""
        for listener in list(self._listeners):
            followed = listener.following()
            if followed:
                for conversation_id, seq in (await self.log_state.last_seqs(followed)).items():
                    listener.stored(conversation_id, seq)
        log.info("LISTEN connection back; resynced")

    # -- signals --------------------------------------------------------

    async def _send_signals(self) -> None:
        assert self._redis is not None
        while True:
            message = await self._outgoing.get()
            try:
                await self._redis.publish(SIGNALS_CHANNEL, message)
            except aioredis.RedisError as error:  # a signal is not stored: it may be lost
                log.warning("signal not sent to other gateways: %s", error)

    async def _receive_signals(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            notice = json.loads(message["data"])
            if notice["origin"] == self.origin:
                continue
            for listener in list(self._listeners):
                listener.signalled(notice["conversation_id"], notice["frame"], notice["role"])
