"""A shop's order update in the widget, in real Chromium: it arrives live while the chat
is closed and while the shopper is away, and the launcher counts it as unread (after
the page is left and opened again, too) until the chat is opened, where it reads."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.conftest import open_page
from tests.browser.test_widget import chat, open_widget, say
from tests.browser.test_widget_on_shop_pages import badge
from tests.orders.conftest import ANNA, OrderGateway
from tests.orders.conftest import demo_shop_file as demo_shop_file  # fixtures
from tests.orders.conftest import order_gateway as order_gateway
from tests.orders.conftest import shop_in as shop_in


async def signed_in(gateway: OrderGateway) -> str:
    """The conversation the demo page's widget opened once the storefront's signed
    identity reached the gateway (the page fetches it after the widget says hello)."""
    for _ in range(200):
        with sqlite3.connect(gateway.settings.gateway_db) as conn:
            row = conn.execute("SELECT id FROM conversations WHERE customer_id = ?",
                               [ANNA]).fetchone()
        if row is not None:
            return str(row[0])
        await asyncio.sleep(0.05)
    raise AssertionError("the demo page never signed Anna in")


async def test_an_order_update_is_unread_until_the_chat_is_opened(
        browser: Browser, order_gateway: Any) -> None:
    async with order_gateway(demo_identity=True) as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        packing = gateway.order(ANNA, "processing")
        shipped = gateway.order(ANNA, "shipped")
        await page.goto(f"{gateway.http}/demo/")
        await open_widget(page)
        await say(page, "hi")
        log = chat(page).locator(".log")
        await expect(log.locator(".msg.bot")).not_to_have_count(0)
        conversation_id = await signed_in(gateway)
        await chat(page).locator(".launcher").click()  # closed again
        await expect(chat(page).locator(".panel")).to_be_hidden()
        assert await badge(page) is None

        # Live, with the chat closed.
        status, answer = await gateway.post({"event_id": "u1", "order_id": packing.id,
                                             "type": "shipped"})
        assert status == 201 and answer["conversation_id"] == conversation_id
        await expect(chat(page).locator(".badge")).to_have_text("1")

        # While the shopper is on another site; counted again on their next visit.
        await page.goto("about:blank")
        status, answer = await gateway.post({"event_id": "u2", "order_id": shipped.id,
                                             "type": "delayed", "new_date": "2027-01-05"})
        assert status == 201 and answer["conversation_id"] == conversation_id
        await page.goto(f"{gateway.http}/demo/cart.html")
        await expect(chat(page).locator(".badge")).to_have_text("2")
        await expect(chat(page).locator(".launcher")).to_have_attribute(
            "aria-label", "Open chat (2 unread)")

        await open_widget(page)
        assert await badge(page) is None
        await expect(log.locator(".msg.bot").filter(
            has_text=f"your order {packing.id} has shipped")).to_be_visible()
        await expect(log.locator(".msg.bot").last).to_contain_text(
            f"Your order {shipped.id} is delayed")
        await expect(log.locator(".buttons").last.locator("button")).to_have_text(
            "Track my order")

        # Seen: a new page does not count them again.
        await page.reload()
        await expect(log.locator(".msg.bot").last).to_contain_text(shipped.id)
        assert await badge(page) is None
