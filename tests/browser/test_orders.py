"""Orders on the demo shop in a real browser: the signed-in demo customer, and a guest who
proves an order is theirs with its email."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, WebSocketRoute, expect

from bot.store.factory import open_store
from tests.browser.conftest import open_page
from tests.browser.test_widget import chat, open_widget, say
from tests.conftest import Gateway

pytestmark = pytest.mark.stack


@pytest.fixture
async def demo_gateway(gateway_settings: object) -> AsyncIterator[Gateway]:
    """The gateway as `make run` starts it: the demo shop signs its customer (Anna)."""
    from bot.settings import Settings

    assert isinstance(gateway_settings, Settings)
    gw = Gateway(gateway_settings.model_copy(update={"demo_identity": True}))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def test_the_signed_in_demo_customer_is_greeted_and_tracks_an_order(
    browser: Browser, demo_gateway: Gateway, stack: object, artifacts: Path,
) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{demo_gateway.http}/demo/")
        await expect(page.locator("header .account")).to_contain_text("Anna Berg (demo)")
        await open_widget(page)
        log = chat(page).locator(".log")
        await say(page, "hi")
        await expect(log.locator(".msg.bot").last).to_contain_text("Hi Anna!")
        track = log.locator(".buttons button").filter(has_text="Track SC-")
        label = await track.first.inner_text()
        await track.first.click()
        order_id = label.removeprefix("Track ").strip()
        answer = log.locator(".msg.bot").filter(has_text="Items:").last
        await expect(answer).to_contain_text(f"Your order {order_id}")
        await expect(answer).not_to_contain_text("email")
        await expect(chat(page).locator(".typing")).to_have_text("")
        await page.screenshot(path=str(artifacts / "widget-order.png"))


async def test_an_identity_the_shop_passes_while_the_chat_connects_still_counts(
    browser: Browser, demo_gateway: Gateway, stack: object,
) -> None:
    """The shop's page may hand over the signed identity after the widget sent its hello
    but before the gateway's welcome arrived; the widget sends it on the welcome."""
    hellos: list[str] = []
    hello_sent = asyncio.Event()
    held: list[str | bytes] = []  # the gateway's frames, until the identity is in
    released: list[bool] = []
    pages: list[WebSocketRoute] = []

    async def identity_after_hello(route: Route) -> None:
        await hello_sent.wait()
        await route.continue_()

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        pages.append(ws)

        def to_server(message: str | bytes) -> None:
            if not hello_sent.is_set():
                hellos.append(str(message))
                hello_sent.set()
            server.send(message)

        def to_page(message: str | bytes) -> None:
            if not released:
                held.append(message)
            else:
                ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    async with open_page(browser) as page:
        await page.route("**/demo/identity", identity_after_hello)
        await page.route_web_socket("**/ws/chat", relay)
        await page.goto(f"{demo_gateway.http}/demo/")
        await expect(page.locator("header .account")).to_contain_text("Anna Berg (demo)")
        assert len(hellos) == 1 and "identity" not in hellos[0]  # the race really happened
        released.append(True)
        for message in held:
            pages[0].send(message)
        await open_widget(page)
        await say(page, "hi")
        await expect(chat(page).locator(".log .msg.bot").last).to_contain_text("Hi Anna!")


async def test_a_guest_completes_verification_with_the_orders_email(
    browser: Browser, demo_gateway: Gateway, stack: object,
) -> None:
    from shopchat.stack import StackHandle

    assert isinstance(stack, StackHandle)
    shop = open_store(stack.settings)
    order = next(o for n in range(2, 30) for o in shop.orders_for_customer(f"cus_{n:04d}", 50)
                 if o.status == "shipped" and o.tracking_url)
    async with open_page(browser) as page:
        await page.goto(f"{demo_gateway.http}/demo/")
        await page.locator("header .account").click()  # sign out: a guest now
        await expect(page.locator("header .account")).to_have_text("Sign in as Anna (demo)")
        await open_widget(page)
        log = chat(page).locator(".log")
        await say(page, f"where is my order {order.id}?")
        await expect(log.locator(".msg.bot").last).to_contain_text("email address")
        await say(page, "not.me@example.org")
        await expect(log.locator(".msg.bot").filter(
            has_text="couldn't find an order with that number and email")).to_be_visible()
        await expect(log).not_to_contain_text(order.tracking_number or "-")
        await say(page, order.id)
        await expect(log.locator(".msg.bot").last).to_contain_text("email address")
        await say(page, order.email)
        answer = log.locator(".msg.bot").last
        await expect(answer).to_contain_text(f"Your order {order.id} is on its way")
        link = answer.locator("a")
        await expect(link.first).to_have_attribute("href", order.tracking_url or "")
