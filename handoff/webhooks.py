"""Outgoing webhooks: conversation events to a shop's helpdesk or CRM, signed and retried.

Each event is written to an outbox table in the gateway database in the same
transaction as the change it announces (a crash loses both or neither), then
delivered by one background task to every configured URL: a JSON POST signed
with HMAC-SHA256 over ``"<timestamp>.<body>"`` (``X-Shopchat-Signature:
sha256=<hex>``). A receiver that fails (non-2xx,
timeout, refused connection) gets the event again with exponential backoff,
up to ``webhook_max_attempts``; the delivery id (``X-Shopchat-Delivery``) stays
the same across retries so receivers can drop repeats. Undelivered events
survive a gateway restart because they are rows, not memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import aiohttp

from bot.settings import Settings
from handoff.db.conversations import ConversationStore, Statement
from handoff.db.outbox import Outbox
from handoff.delivery import RetryingSender

__all__ = ["EVENTS", "Webhooks", "sign"]

log = logging.getLogger("gateway.webhooks")

#: What a shop can subscribe to (all are sent to every configured URL).
EVENTS = frozenset({"conversation.queued", "conversation.assigned", "conversation.closed",
                    "csat.received", "ticket.created", "order.update"})



def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value a receiver recomputes to trust the request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhooks(RetryingSender):
    def __init__(self, store: ConversationStore, settings: Settings) -> None:
        super().__init__(Outbox(store), settings.webhook_max_attempts,
                         settings.webhook_retry_base, log)
        self.store = store
        self.urls = list(settings.webhook_urls)
        self.secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret \
            else ""
        self.timeout = settings.webhook_timeout
        self.outbox = Outbox(store)
        self._session: aiohttp.ClientSession | None = None

    def rows(self, event: str, data: dict[str, Any]) -> list[Statement]:
        """The outbox rows announcing ``event`` (one per URL), as statements to run in the
        transaction of the change they announce: the event is stored if and only if the
        change is. Call :meth:`wake` after the commit."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        now = time.time()
        delivery_id = uuid.uuid4().hex
        body = json.dumps({"id": delivery_id, "event": event, "created_at": now, "data": data},
                          separators=(",", ":"), default=str)
        return Outbox.rows(delivery_id, event, body, self.urls)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Queue ``event`` for every URL on its own (not part of a change)."""
        self.outbox.add(self.rows(event, data))
        self.wake()

    async def start(self) -> None:
        if self.urls:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
            self.start_sending()

    async def close(self) -> None:
        await self.stop_sending()
        if self._session is not None:
            await self._session.close()

    async def deliver_now(self) -> None:
        """One round over the due rows, for a process that runs no sender of its own (the
        CLI): what fails is retried by a gateway's sender."""
        if not self.urls or self._session is not None:
            return
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            self._session = session
            try:
                await self.deliver_due()
            finally:
                self._session = None

    def describe(self, row: dict[str, Any]) -> str:
        return f"webhook {row['event']} to {row['url']}"

    async def attempt(self, row: dict[str, Any]) -> str | None:
        assert self._session is not None
        body = row["body"].encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Shopchat-Event": row["event"],
                   "X-Shopchat-Delivery": row["delivery_id"], "X-Shopchat-Timestamp": stamp,
                   "X-Shopchat-Signature": sign(self.secret, stamp, body)}
        try:
            async with self._session.post(row["url"], data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as failure:
            return f"{failure.__class__.__name__}: {failure}"
