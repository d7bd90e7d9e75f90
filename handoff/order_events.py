"""Proactive order updates: a shop tells shopchat an order changed (shipped, delayed with a
new date, out for delivery, delivered, refund issued) with ``POST /api/v1/order-events``
(an integration API token) or ``shopchat orders event``; both call :class:`OrderUpdates`.

Where an update goes, decided once per event:

1. The customer's most recently active conversation, if it was active within
   ``order_updates_recent_days`` and is verifiably theirs: the storefront signed its
   customer (the conversation's ``customer_id`` owns the order), or the bot checked the
   order's email in it (the order form's notice, :func:`replies_received`). Never a
   conversation that only *mentions* the order: a stranger can type any order number.
   The bot's message is stored in the conversation's event log with a seq, sent live to
   a connected shopper (and agents following it), and replayed on resume; the widget
   counts it as unread until the chat is opened.
2. Otherwise, when ``order_updates_by_email`` is on, a mail to the order's address
   (from the shop's own records), queued in the mail outbox (text and escaped HTML).
3. Otherwise nowhere; it is still recorded, and counted.

The shop's event is the idempotency key (``event_id`` in the body, or an
``Idempotency-Key`` header): a retry is answered with the first outcome and posts
nothing; the same key with another body is a 409. The built-in shop store is changed by
the event (the bot's next answer about the order reads it); with the HTTP adapter the
shop's API is the truth and is read afresh on every answer (shopchat keeps no copy).
Each new event is also a ``order.update`` webhook, written in the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.settings import Settings
from bot.store.base import ShopStore
from bot.store.errors import StoreError
from bot.store.models import normalise_order_id, normalise_rma
from bot.store.updates import (
    OrderUpdate,
    describe_update,
    parse_order_verified,
    update_buttons,
    update_subject,
)
from handoff.db.conversations import ConversationStore, Statement
from handoff.db.orders import NewOrderEvent, OrderEventStore, StoredOrderEvent
from handoff.exceptions import OrderEventError
from handoff.http import problem, read_json, requires
from handoff.mail import Mailer, compose
from handoff.webhooks import Webhooks

__all__ = ["EventType", "OrderEvent", "OrderUpdates", "Outcome", "add_order_event_routes",
           "event_key", "parse_event", "post_offline"]

log = logging.getLogger("gateway.orders")

#: The longest idempotency key (``event_id`` or ``Idempotency-Key``).
MAX_KEY = 100


class EventType(StrEnum):
    SHIPPED = "shipped"
    DELAYED = "delayed"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    REFUND_ISSUED = "refund_issued"


class OrderEvent(BaseModel):
    """The body of ``POST /api/v1/order-events``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    event_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description="The shop's id of this event: a retry with the same id is not posted "
                    "again (or send an Idempotency-Key header).")
    order_id: str = Field(max_length=40, description="The order number, e.g. SC-100482.")
    type: EventType
    new_date: date | None = Field(None, description="The new expected delivery date "
                                                    "(YYYY-MM-DD); required for delayed.")
    tracking_url: str | None = Field(None, max_length=500, pattern=r"^https?://\S+$")
    rma: str | None = Field(None, max_length=40,
                            description="refund_issued: the return refunded (default: "
                                        "every open refund of the order).")
    note: str | None = Field(None, max_length=500,
                             description="The shop's words for the shopper, shown as text.")

    @field_validator("order_id")
    @classmethod
    def _order_number(cls, value: str) -> str:
        order_id = normalise_order_id(value)
        if order_id is None:
            raise ValueError("not an order number (like SC-100482)")
        return order_id

    @field_validator("rma")
    @classmethod
    def _return_number(cls, value: str | None) -> str | None:
        rma = None if value is None else normalise_rma(value)
        if value is not None and rma is None:
            raise ValueError("not a return number (like RMA-5001)")
        return rma

    @model_validator(mode="after")
    def _consistent(self) -> OrderEvent:
        if self.rma is not None and self.type != EventType.REFUND_ISSUED:
            raise ValueError("rma is only for refund_issued")
        if self.type == EventType.DELAYED and self.new_date is None:
            raise ValueError("a delayed event needs new_date, the new expected delivery date")
        return self

    def update(self, at: datetime) -> OrderUpdate:
        return OrderUpdate(type=self.type.value, at=at, new_date=self.new_date,
                           tracking_url=self.tracking_url, rma=self.rma, note=self.note)

    def fingerprint(self) -> str:
        """What a retry must repeat exactly (the key aside)."""
        fields = self.model_dump(mode="json", exclude={"event_id"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def event_key(event: OrderEvent, header: str | None) -> str:
    """The idempotency key: the body's ``event_id`` or the ``Idempotency-Key`` header."""
    header = header.strip() if header is not None else None
    if header is not None and not 1 <= len(header) <= MAX_KEY:
        raise OrderEventError(400, "bad_event", f"Idempotency-Key must be 1-{MAX_KEY} "
                                                "characters.")
    if event.event_id and header and event.event_id != header:
        raise OrderEventError(400, "bad_event", "event_id and Idempotency-Key differ; send "
                                                "one, or the same in both.")
    key = event.event_id or header
    if not key:
        raise OrderEventError(400, "bad_event", "Send the event's id (event_id in the body "
                                                "or an Idempotency-Key header), so that a "
                                                "retry is not posted twice.")
    return key


@dataclass(frozen=True)
class Outcome:
    """Where an event went; ``duplicate``: it had come before and nothing was done now."""

    event_id: str
    order_id: str
    type: str
    channel: str
    conversation_id: str | None
    seq: int | None
    duplicate: bool

    @classmethod
    def of(cls, stored: StoredOrderEvent, duplicate: bool) -> Outcome:
        return cls(stored.event_key, stored.order_id, stored.type, stored.channel,
                   stored.conversation_id, stored.seq, duplicate)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: Publishes stored events to the sockets following a conversation (the hub's).
Publish = Callable[[str, list[Any]], None]


class OrderUpdates:
    """Takes a shop's order events: updates the shop store, posts or mails, records."""

    def __init__(self, store: ConversationStore, settings: Settings,
                 shop: ShopStore | None = None, *, webhooks: Webhooks | None = None,
                 mailer: Mailer | None = None, publish: Publish | None = None) -> None:
        """``shop``: the shop store to update and read; None: the settings' own, opened on
        the first event (and closed by :meth:`close`)."""
        self.events = OrderEventStore(store)
        self.settings = settings
        self._given = shop
        self._opened: ShopStore | None = None
        self.webhooks = webhooks
        self.mailer = mailer
        self.publish = publish

    def shop(self) -> ShopStore:
        if self._given is not None:
            return self._given
        if self._opened is None:
            from bot.store.factory import open_store

            self._opened = open_store(self.settings)
        return self._opened

    def close(self) -> None:
        close = getattr(self._opened, "close", None)
        if callable(close):
            close()
        self._opened = None

    def replies_received(self, conversation_id: str, replies: list[Any]) -> None:
        """A bot turn's raw replies: remember each order the form proved is the shopper's
        (a notice only actions send; a shopper cannot type one)."""
        for reply in replies:
            order_id = parse_order_verified(reply.get("custom") if isinstance(reply, dict)
                                            else None)
            if order_id is not None:
                self.events.link(conversation_id, order_id)

    async def post(self, event: OrderEvent, key: str) -> Outcome:
        """Take one event (``key``: its idempotency key)."""
        first = self.events.find(key)
        if first is not None:
            return self._repeat(first, event)
        now = datetime.now(UTC)
        update = event.update(now)
        try:
            found = await asyncio.to_thread(self.shop().record_update, event.order_id, update)
        except StoreError as error:
            log.warning("order event %s: the shop store failed: %s", event.order_id, error)
            raise OrderEventError(503, "shop_unavailable", "The shop's order system could "
                                  "not be read; send the event again later.") from error
        if found is None:
            raise OrderEventError(404, "unknown_order", f"No order {event.order_id} in the "
                                  "shop's records: check the number.")
        order, refunds = found
        text = describe_update(order, update, refunds)
        since = time.time() - self.settings.order_updates_recent_days * 86400
        conversation_id = self.events.recent_conversation(order.id, order.customer_id, since)
        stored = NewOrderEvent(
            event_key=key, fingerprint=event.fingerprint(), order_id=order.id,
            type=event.type.value, body=event.model_dump(mode="json", exclude={"event_id"}),
            customer_id=order.customer_id, channel="none", conversation_id=conversation_id)
        if conversation_id is not None:
            stored = replace(stored, channel="conversation")
            frame = {"type": "message", "author": "bot", "text": text,
                     "buttons": update_buttons(order.id, update),
                     "order_update": {"order_id": order.id, "type": event.type.value}}
            change = self.events.post(stored, frame, self._webhook(stored))
            if change is None:
                return self._raced(key, event)
            if self.publish is not None:
                self.publish(conversation_id, change.events)
        else:
            extra: list[Statement] = []
            if self.settings.order_updates_by_email and self.mailer is not None \
                    and self.mailer.enabled:
                composed = compose(
                    sender=self.mailer.from_header(), to=order.email,
                    subject=update_subject(order.id, update),
                    paragraphs=[*text.split("\n"),
                                "You get this email because you ordered from us; it is "
                                "about this order only."],
                    now=now.timestamp(), automatic=True)
                stored = replace(stored, channel="email", email=order.email,
                                 mail_message_id=composed.message_id)
                extra.append(composed.row("order_update", None, None))
            if not self.events.record(stored, [*extra, *self._webhook(stored)]):
                return self._raced(key, event)
            if extra and self.mailer is not None:
                self.mailer.wake()
        if self.webhooks is not None:
            self.webhooks.wake()
        log.info("order event %s %s for %s: %s%s", key, event.type.value, order.id,
                 stored.channel, f" conversation={conversation_id}" if conversation_id else "")
        saved = self.events.find(key)
        assert saved is not None
        return Outcome.of(saved, duplicate=False)

    def _webhook(self, event: NewOrderEvent) -> list[Statement]:
        if self.webhooks is None:
            return []
        return self.webhooks.rows("order.update", {
            "event_id": event.event_key, "order_id": event.order_id, "type": event.type,
            "channel": event.channel, "conversation_id": event.conversation_id})

    @staticmethod
    def _repeat(first: StoredOrderEvent, event: OrderEvent) -> Outcome:
        if first.fingerprint != event.fingerprint():
            raise OrderEventError(409, "idempotency_conflict", f"Event {first.event_key} was "
                                  "sent before with another body; give a new event a new id.")
        return Outcome.of(first, duplicate=True)

    def _raced(self, key: str, event: OrderEvent) -> Outcome:
        """The same event, sent twice at once, was stored by the other request."""
        first = self.events.find(key)
        assert first is not None
        return self._repeat(first, event)


class _Object(RootModel[dict[str, Any]]):
    pass


_HINT = ("Send a JSON object like {\"event_id\": \"evt_1\", \"order_id\": \"SC-100482\", "
         "\"type\": \"shipped\"} (docs/email.md, order updates).")


def parse_event(body: dict[str, Any]) -> OrderEvent:
    """The event in a request body (or the CLI's arguments); a 400 :class:`OrderEventError`
    naming each field that is wrong."""
    try:
        return OrderEvent.model_validate(body)
    except ValidationError as error:
        detail = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise OrderEventError(400, "bad_event", f"{detail}. {_HINT}") from None


async def post_offline(settings: Settings, body: dict[str, Any], key: str | None
                       ) -> Outcome:
    """``shopchat orders event``: the same core, straight on the database (no gateway
    needed). The message is stored with its seq; a shopper connected to a running
    gateway gets it when their widget next connects (or the conversation's next event
    is sent). The mail and webhooks it queues are tried once from here; what fails is
    retried by a running gateway's senders, which look at their queues at least every
    minute (:data:`handoff.delivery.IDLE_LOOK`)."""
    event = parse_event(body)
    store = ConversationStore(settings.gateway_db)
    mailer = Mailer(store, settings)
    webhooks = Webhooks(store, settings)
    updates = OrderUpdates(store, settings, webhooks=webhooks, mailer=mailer)
    try:
        outcome = await updates.post(event, event_key(event, key))
        if not outcome.duplicate:
            if outcome.channel == "email" and mailer.enabled:
                await mailer.deliver_due()
            await webhooks.deliver_now()
        return outcome
    finally:
        updates.close()
        store.close()


def add_order_event_routes(app: web.Application, updates_key: web.AppKey[OrderUpdates],
                           settings_key: web.AppKey[Settings], auth: str) -> None:
    """``POST /api/v1/order-events``, signed in as ``auth`` (the integration API's tokens)."""

    @requires(auth)
    async def order_events(request: web.Request) -> web.Response:
        timeout = request.app[settings_key].http_timeout
        body = (await read_json(request, _Object, _HINT, timeout)).root
        try:
            event = parse_event(body)
            key = event_key(event, request.headers.get("Idempotency-Key"))
            outcome = await request.app[updates_key].post(event, key)
        except OrderEventError as error:
            raise problem(error.status, error.detail, error.code,
                          {"Retry-After": "60"} if error.status == 503 else None) from None
        return web.json_response(outcome.as_json(), status=200 if outcome.duplicate else 201)

    app.router.add_post("/api/v1/order-events", order_events)
