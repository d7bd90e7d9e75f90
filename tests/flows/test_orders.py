"""Tracking and order verification through the real bot: nothing is shown before proof."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.identity import LEEWAY
from bot.store.base import ShopStore
from bot.store.models import Order
from tests.flows.conftest import (
    bot_messages,
    buttons,
    identity,
    pick_order,
    press,
    said,
    secrets_of,
)

pytestmark = pytest.mark.stack

NOT_FOUND = "couldn't find an order with that number and email"


def any_order(store: ShopStore, test: Any, skip: str = "cus_0001") -> Order:
    """An order of some demo customer other than ``skip`` (Anna, whom other tests change)."""
    for n in range(2, 60):
        customer = store.get_customer(f"cus_{n:04d}")
        if customer is None:
            continue
        for order in store.orders_for_customer(customer.id, limit=100):
            if test(order):
                return order
    raise AssertionError("the demo data has no such order")


async def test_tracking_asks_for_the_email_and_reveals_nothing_to_a_wrong_one(
    chat: Any, shop: ShopStore,
) -> None:
    order = any_order(shop, lambda o: o.status == "shipped" and o.tracking_url)
    async with chat() as client:
        await client.hello()
        frames = await client.turn(f"where is my order {order.id}?")
        assert "email" in said(frames)
        frames += await client.turn("someone.else@example.org")
        assert NOT_FOUND in said(frames)
        for secret in secrets_of(order):
            assert secret not in said(frames), f"{secret!r} shown before verification"
        # The bot asks again; the right pair shows everything.
        await client.turn(order.id)
        frames = await client.turn(f"it's {order.email.upper()}")
    text = said(frames)
    assert order.id in text and "on its way" in text
    assert order.tracking_url is not None and order.tracking_url in text
    assert all(line.name in text for line in order.lines)


@pytest.mark.parametrize("written", [
    "mateo.garcía@example.org",
    "it's Mateo.Garci\u0301a@Example.org",  # capitals, the í decomposed as a phone may send it
])
async def test_the_demo_customer_with_an_accented_email_tracks_their_order(
    chat: Any, shop: ShopStore, written: str,
) -> None:
    mateo = shop.get_customer("cus_0004")
    assert mateo is not None and mateo.email == "mateo.garcía@example.org"
    order = pick_order(shop, mateo.id, lambda o: o.status != "cancelled")
    async with chat() as client:
        await client.hello()
        frames = await client.turn(f"where is my order {order.id}?")
        assert "email" in said(frames)
        frames = await client.turn(written)
    text = said(frames)
    assert NOT_FOUND not in text and order.id in text
    assert all(line.name in text for line in order.lines)


async def test_an_unknown_order_gets_the_same_answer_as_a_wrong_email(
    chat: Any, shop: ShopStore,
) -> None:
    real = any_order(shop, lambda o: o.status == "delivered")
    answers = []
    for order_id, email in (("SC-999991", real.email), (real.id, "nobody@example.net")):
        async with chat() as client:
            await client.hello()
            await client.turn(f"track order {order_id}")
            answers.append(bot_messages(await client.turn(email))[0]["text"])
    assert answers[0] == answers[1] and NOT_FOUND in answers[0]


async def test_five_failed_lookups_stop_the_lookups_and_offer_a_person(
    chat: Any, shop: ShopStore, gateway_settings: Any,
) -> None:
    order = any_order(shop, lambda o: o.status == "delivered")
    async with chat() as client:
        await client.hello()
        await client.turn(f"can you check order {order.id}")
        for attempt in range(5):
            frames = await client.turn(f"wrong{attempt}@example.com")
            if attempt < 4:
                assert NOT_FOUND in said(frames)
                await client.turn(order.id)
        assert "can't look up any more orders" in said(frames)
        assert any(b["payload"] == "/human_handoff" for b in buttons(frames))
        # Even the right email is not tried any more.
        await client.turn(f"where is order {order.id}")
        frames = await client.turn(order.email)
        assert all(secret not in said(frames) for secret in secrets_of(order))
        frames = await client.turn("can I talk to a person please")
        assert any(f["type"] == "handoff" for f in frames)
    with sqlite3.connect(gateway_settings.gateway_db) as conn:
        (trigger,) = conn.execute("SELECT trigger FROM handoffs WHERE conversation_id = ?",
                                  [client.conversation_id]).fetchone()
    assert trigger == "verification_failed"


async def test_an_identified_shopper_is_greeted_by_name_and_offered_their_open_order(
    chat: Any, shop: ShopStore,
) -> None:
    anna = shop.get_customer("cus_0001")
    assert anna is not None
    async with chat() as client:
        await client.hello(identity=identity(anna.id))
        frames = await client.turn("hi")
        assert f"Hi {anna.first_name}!" in said(frames)
        track = press(frames, lambda b: b["title"].startswith("Track "))
        order_id = track["title"].removeprefix("Track ")
        order = shop.get_order(order_id)
        assert order is not None and order.customer_id == anna.id
        assert order.status in ("placed", "processing", "shipped", "out_for_delivery")
        frames = await client.turn(track["title"], payload=track["payload"])
    assert "email address" not in said(frames)
    assert order.id in said(frames) and all(line.name in said(frames) for line in order.lines)


async def test_an_identified_shopper_without_a_number_picks_from_their_orders(
    chat: Any, shop: ShopStore,
) -> None:
    delivered = pick_order(shop, "cus_0001", lambda o: o.status == "delivered")
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn("where is my order?")
        choice = press(frames, lambda b: b["title"].startswith(delivered.id))
        frames = await client.turn(choice["title"], payload=choice["payload"])
    assert "was delivered" in said(frames) and delivered.id in said(frames)


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered", "expired"])
async def test_a_forged_identity_is_ignored(chat: Any, shop: ShopStore, forgery: str) -> None:
    order = pick_order(shop, "cus_0001", lambda o: o.status == "delivered")
    if forgery == "wrong secret":
        token = identity("cus_0001", secret="a-guessed-secret-just-as-long-as-the-real-one")
    elif forgery == "tampered":
        # cus_0001's claims under the signature the shop made for cus_0002.
        header, claims, _ = identity("cus_0001").split(".")
        _, other, signature = identity("cus_0002").split(".")
        token = f"{header}.{claims}.{signature}"
        assert other != claims
    else:
        token = identity("cus_0001", ttl=-(LEEWAY + 60))  # expired beyond the clock-skew leeway
    async with chat() as client:
        await client.hello(identity=token)
        frames = await client.turn("hello")
        assert "Anna" not in said(frames)
        await client.turn(f"where is my order {order.id}")
        frames = await client.turn("anna.berg@example.org")  # a guess, not Anna's email
    assert NOT_FOUND in said(frames)
    assert all(secret not in said(frames) for secret in secrets_of(order))


async def test_an_identified_shopper_still_needs_the_email_for_someone_elses_order(
    chat: Any, shop: ShopStore,
) -> None:
    order = any_order(shop, lambda o: o.status == "shipped")
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn(f"where is order {order.id}")
    assert "email" in said(frames)
    assert all(secret not in said(frames) for secret in secrets_of(order))


def test_demo_dates_are_relative_to_today(shop: ShopStore) -> None:
    recent = pick_order(shop, "cus_0001", lambda o: o.status == "delivered"
                        and o.delivered_at is not None
                        and o.delivered_at > datetime.now(UTC) - timedelta(days=30))
    assert recent.delivered_at is not None
