"""Product questions through the real bot, answered from the shop's product data."""

from __future__ import annotations

from typing import Any

import pytest

from bot.store.base import ShopStore
from bot.store.texts import money
from tests.flows.conftest import bot_messages, press, said

pytestmark = pytest.mark.stack


async def test_on_a_product_page_stock_for_a_size_comes_from_the_data(
    chat: Any, shop: ShopStore,
) -> None:
    jacket = shop.get_product("JKT-STORM-M")
    assert jacket is not None
    size = next(v.size for v in jacket.variants if v.size and v.stock > 0)
    async with chat() as client:
        await client.hello(page={"type": "product", "sku": jacket.sku,
                                 "url": "https://shop.example/product.html?sku=JKT-STORM-M"})
        frames = await client.turn(f"do you have this jacket in size {size}?")
    assert jacket.name in said(frames) and f"in {size}" in said(frames)
    assert "in stock" in said(frames)


async def test_a_product_named_in_the_question_gets_its_price(chat: Any, shop: ShopStore) -> None:
    tent = shop.get_product("TENT-RIDGE-2P")
    assert tent is not None
    async with chat() as client:
        await client.hello(page={"type": "home"})
        frames = await client.turn("how much is the Ridgeline 2-person tent?")
    assert money(tent.price, tent.currency) in said(frames)
    # The product's page comes as the answer's card, not as a URL in the text.
    (answer,) = [f for f in bot_messages(frames) if "card" in f]
    assert answer["card"] == {"title": tent.name, "url": tent.url}
    assert "http" not in said(frames)


async def test_elsewhere_the_bot_asks_which_product(chat: Any, shop: ShopStore) -> None:
    solo = shop.get_product("TENT-SOLO-UL")
    assert solo is not None
    async with chat() as client:
        await client.hello(page={"type": "cart"})
        frames = await client.turn("what's the weight of the tent?")
        assert "Which product" in said(frames)
        choice = press(frames, lambda b: b["title"] == solo.name)
        frames = await client.turn(choice["title"], payload=choice["payload"])
    assert solo.specs["weight"] in said(frames) and solo.name in said(frames)


async def test_a_product_we_do_not_sell_is_said_so_and_a_person_offered(chat: Any) -> None:
    async with chat() as client:
        await client.hello(page={"type": "home"})
        frames = await client.turn("is the Riverline canoe paddle in stock in size M?")
        assert "couldn't find a product of ours" in said(frames)
        person = press(frames, lambda b: b["payload"] == "/human_handoff")
        frames = await client.turn(person["title"], payload=person["payload"])
        assert any(f["type"] == "handoff" for f in frames)
        # Nobody is online in this stack: the desk offers to take a message instead.
        if not any(f.get("author") == "system" for f in frames):
            frames += await client.recv_until(lambda f: f.get("author") == "system")
    system = [f["text"] for f in frames if f.get("author") == "system"]
    assert len(system) == 1 and "No one from our team is online" in system[0]
    assert "person" not in said(frames)  # the desk answers for the bot, once


async def test_this_jacket_on_the_jackets_page_is_that_jacket(chat: Any, shop: ShopStore) -> None:
    async with chat() as client:
        await client.hello(page={"type": "product", "sku": "JKT-STORM-M"})
        frames = await client.turn("is this jacket waterproof?")
    assert "Stormline rain jacket — waterproof rating: 20,000 mm" in said(frames)
