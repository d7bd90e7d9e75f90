"""Order, return and product flows end to end: websocket → gateway → Rasa → action server → shop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.identity import sign_identity
from bot.store.base import ShopStore
from bot.store.factory import open_store
from bot.store.models import Order
from shopchat.stack import StackHandle
from tests.conftest import IDENTITY_SECRET, is_bot_message


@pytest.fixture
def shop(stack: StackHandle) -> Iterator[ShopStore]:
    """The same shop store the stack's action server uses (its var/shop.db)."""
    store = open_store(stack.settings)
    yield store
    close = getattr(store, "close", None)
    if callable(close):
        close()


def identity(customer_id: str, secret: str = IDENTITY_SECRET, ttl: float = 600) -> str:
    return sign_identity(customer_id, secret, ttl=ttl)


def bot_messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if is_bot_message(f)]


def said(frames: list[dict[str, Any]]) -> str:
    return "\n".join(f["text"] for f in bot_messages(frames))


def buttons(frames: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for f in bot_messages(frames) for b in f.get("buttons", [])]


def press(frames: list[dict[str, Any]], match: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    found = [b for b in buttons(frames) if match(b)]
    assert found, f"no such button in {buttons(frames)}"
    return found[0]


def secrets_of(order: Order) -> list[str]:
    """What must never be said about an order before the shopper proved it is theirs."""
    found = [line.name for line in order.lines]
    found += [value for value in (order.tracking_number, order.tracking_url, order.carrier,
                                  order.shipping_address.line1) if value]
    return found


def pick_order(store: ShopStore, customer_id: str, test: Callable[[Order], bool]) -> Order:
    orders = store.orders_for_customer(customer_id, limit=100)
    chosen = [order for order in orders if test(order)]
    assert chosen, f"the demo data has no such order for {customer_id}"
    return chosen[0]
