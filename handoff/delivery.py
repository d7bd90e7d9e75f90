"""The retrying sender both outboxes share (webhooks, mail): one background task works
through a :class:`~handoff.db.outbox.DeliveryQueue`, tries each due row once, and on a
failure schedules the next try with exponential backoff (``base_delay · 2^(attempts-1)``)
until ``max_attempts``, then gives the row up (kept, with its last error). A row is
marked delivered only after the receiver accepted it, so nothing is lost when the
receiver is down, and claimed before each try, so that the senders of several gateway
processes on one database never try the same row at once (a sender that dies mid-try
leaves it to be tried again after the lease); :meth:`RetryingSender.wake` after a
commit sends new rows at once. An idle sender still looks every :data:`IDLE_LOOK`
seconds, for rows another process queued (`shopchat orders event`, another gateway).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from handoff.db.outbox import DeliveryQueue

__all__ = ["IDLE_LOOK", "Permanent", "RetryingSender"]

#: Seconds an idle sender sleeps at most before it looks at its queue again: nothing
#: wakes it for rows other processes queued.
IDLE_LOOK = 60.0


class Permanent(str):
    """What :meth:`RetryingSender.attempt` returns for a failure no retry can cure (a
    mailbox that does not exist): the row is given up at once."""


class RetryingSender(abc.ABC):
    """Subclasses say how one row is delivered (:meth:`attempt`)."""

    def __init__(self, queue: DeliveryQueue, max_attempts: int, base_delay: float,
                 log: logging.Logger) -> None:
        self.queue = queue
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.log = log
        #: Called after a row was delivered, retried or given up (the console shows mail).
        self.on_change: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @abc.abstractmethod
    async def attempt(self, row: dict[str, Any]) -> str | None:
        """Deliver one row: None when the receiver took it, else what went wrong."""

    def describe(self, row: dict[str, Any]) -> str:
        """The row in a log line (never a secret or a whole address)."""
        return f"row {row['id']}"

    def wake(self) -> None:
        """New rows are in the queue: deliver them now."""
        self._wake.set()

    def start_sending(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop_sending(self) -> None:
        if self._task is not None:
            # The flag too: a cancel that lands inside a try (aiosmtplib's own timeouts, on
            # Python 3.11) can be swallowed, and the loop must still end.
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                next_due = await self.deliver_due()
            except Exception:  # a bug or a database hiccup must not stop deliveries for good
                self.log.exception("delivery round failed")
                next_due = time.time() + self.base_delay
            if self._stopping:
                return
            self._wake.clear()
            timeout = IDLE_LOOK if next_due is None else \
                min(IDLE_LOOK, max(0.05, next_due - time.time()))
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel
            # that comes as the wake does.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    #: How long a row taken for a try is left alone by other senders (longer than a try).
    lease: float = 300.0

    async def deliver_due(self) -> float | None:
        """Send every due row once; the time the next retry is due (None: nothing waits).
        Each row is claimed first, so senders of several processes never try one row at
        the same time."""
        for row in self.queue.due(time.time()):
            if self.queue.claim(row, time.time() + self.lease):
                await self._deliver(row)
        return self.queue.next_due()

    async def _deliver(self, row: dict[str, Any]) -> None:
        error = await self.attempt(row)
        if error is None:
            self.queue.delivered(row["id"])
        else:
            attempts = row["attempts"] + 1
            if attempts >= self.max_attempts or isinstance(error, Permanent):
                self.log.warning("%s given up after %d attempts: %s", self.describe(row),
                                 attempts, error)
                self.queue.failed(row["id"], attempts, error)
            else:
                delay = self.base_delay * 2 ** (attempts - 1)
                self.log.info("%s failed (attempt %d, next in %.0f s): %s",
                              self.describe(row), attempts, delay, error)
                self.queue.retry_at(row["id"], attempts, time.time() + delay, error)
        self.changed()

    def changed(self) -> None:
        """A row changed (here, or a bounce marked it failed): tell whoever shows them."""
        if self.on_change is not None:
            self.on_change()
