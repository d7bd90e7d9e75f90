"""Order updates a shop sends (shipped, delayed, out for delivery, delivered, refund issued):
what each changes in the order as the bot reads it, the words the shopper reads about it,
and the notice that tells the gateway a conversation proved an order is the shopper's.

Pure functions over the store's models: the built-in SQLite store applies
:func:`apply_update` in a transaction (:meth:`bot.store.sqlite.SQLiteShop.record_update`);
a shop's own API already holds the new state, so the HTTP adapter only reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from bot.payload import custom_body, intent_payload
from bot.store.models import Order, Return, normalise_order_id
from bot.store.texts import money

__all__ = [
    "ORDER_VERIFIED_KEY",
    "UPDATE_TYPES",
    "OrderUpdate",
    "UpdateType",
    "apply_update",
    "describe_update",
    "order_verified_payload",
    "parse_order_verified",
    "update_buttons",
    "update_subject",
]

UpdateType = Literal["shipped", "delayed", "out_for_delivery", "delivered", "refund_issued"]
UPDATE_TYPES: tuple[str, ...] = get_args(UpdateType)

#: Key of the custom JSON message the order form sends when a conversation has proved an
#: order is the shopper's (its email, or the storefront's signed customer).
ORDER_VERIFIED_KEY = "order_verified"


@dataclass(frozen=True)
class OrderUpdate:
    """One event of an order's life, as the shop reported it."""

    type: UpdateType
    #: When it happened (the gateway's clock when the shop reported it).
    at: datetime
    #: The new expected delivery date (required for ``delayed``).
    new_date: date | None = None
    tracking_url: str | None = None
    #: For ``refund_issued``: the return refunded (all open refunds of the order if None).
    rma: str | None = None
    #: The shop's own words for the shopper, shown as they are.
    note: str | None = None


def _refunded(ret: Return, update: OrderUpdate) -> bool:
    if update.rma is not None:
        return ret.rma == update.rma
    return ret.refund_status in ("not_started", "pending")


def apply_update(order: Order, returns: list[Return], update: OrderUpdate
                 ) -> tuple[Order, list[Return]]:
    """The order after ``update``, and the returns it changed (refunds issued)."""
    changes: dict[str, object] = {}
    if update.tracking_url:
        changes["tracking_url"] = update.tracking_url
    if update.type in ("shipped", "out_for_delivery"):
        changes["status"] = update.type
        changes["shipped_at"] = order.shipped_at or update.at
    if update.type == "out_for_delivery":
        changes["expected_delivery"] = update.new_date or update.at.date()
    elif update.new_date is not None and update.type in ("shipped", "delayed"):
        changes["expected_delivery"] = update.new_date
    if update.type == "delivered":
        changes.update(status="delivered", delivered_at=update.at,
                       shipped_at=order.shipped_at or update.at)
    refunded = []
    if update.type == "refund_issued":
        refunded = [ret.model_copy(update={"refund_status": "issued", "status": "refunded",
                                           "refunded_at": update.at})
                    for ret in returns if _refunded(ret, update)]
    return order.model_copy(update=changes), refunded


def _day(value: date) -> str:
    return f"{value:%A %d %B}".replace(" 0", " ")


def describe_update(order: Order, update: OrderUpdate, refunds: list[Return]) -> str:
    """What the shopper reads about ``update`` (``order`` as it is after it)."""
    if update.type == "shipped":
        carrier = f" with {order.carrier}" if order.carrier else ""
        text = f"Good news: your order {order.id} has shipped{carrier}."
        if order.expected_delivery is not None:
            text += f" Expected delivery: {_day(order.expected_delivery)}."
    elif update.type == "delayed":
        text = f"Your order {order.id} is delayed, sorry."
        if order.expected_delivery is not None:
            text += f" The new expected delivery date is {_day(order.expected_delivery)}."
    elif update.type == "out_for_delivery":
        text = f"Your order {order.id} is out for delivery today."
    elif update.type == "delivered":
        text = f"Your order {order.id} was delivered on {_day(update.at.date())}."
    else:
        amount = sum(ret.refund_amount for ret in refunds)
        text = (f"We've issued your refund of {money(amount, order.currency)} for order "
                f"{order.id}." if amount else f"We've issued your refund for order {order.id}.")
        text += " Allow 3–5 working days for your bank to show it."  # noqa: RUF001 (typography shoppers read)
    if update.tracking_url and update.type in ("shipped", "delayed", "out_for_delivery"):
        text += f"\nTrack it: {update.tracking_url}"
    if update.note:
        text += f"\nFrom the shop: {update.note}"
    return text


_SUBJECTS = {"shipped": "has shipped", "delayed": "is delayed",
             "out_for_delivery": "is out for delivery", "delivered": "was delivered",
             "refund_issued": "your refund is issued"}


def update_subject(order_id: str, update: OrderUpdate) -> str:
    """The subject of the mail about ``update``."""
    return f"Your order {order_id} {_SUBJECTS[update.type]}" if update.type != \
        "refund_issued" else f"Order {order_id}: {_SUBJECTS[update.type]}"


def update_buttons(order_id: str, update: OrderUpdate) -> list[dict[str, str]]:
    """What the shopper can ask next (the bot then reads the order as it is now)."""
    if update.type == "refund_issued":
        return [{"title": "Refund status",
                 "payload": intent_payload("refund_status", order_id=order_id)}]
    return [{"title": "Track my order", "payload": intent_payload("track_order",
                                                                  order_id=order_id)}]


def order_verified_payload(order_id: str) -> dict[str, dict[str, str]]:
    """The custom message body telling the gateway this conversation proved ``order_id``."""
    return {ORDER_VERIFIED_KEY: {"order_id": order_id}}


def parse_order_verified(custom: object) -> str | None:
    """The order id of an order-verified notice in a reply's custom payload, or None."""
    body: Mapping[str, object] | None = custom_body(custom, ORDER_VERIFIED_KEY)
    value = body.get("order_id") if body is not None else None
    return normalise_order_id(value) if isinstance(value, str) else None
