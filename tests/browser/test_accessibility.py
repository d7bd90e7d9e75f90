"""axe-core (the engine behind Lighthouse's accessibility audit) on the pages people use:
the widget with an answer and a person's reply, the agent console with a chat open, and
the workbench's inbox, transcript and analytics. Any violation fails, with axe's rule id,
what to do and where."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect
from websockets.asyncio.client import connect

from tests.browser.conftest import open_page
from tests.browser.test_admin import workbench  # noqa: F401  (the fixture)
from tests.browser.test_console import sign_in
from tests.browser.test_widget import chat, open_widget, say
from tests.conftest import ChatClient, Gateway, add_agent

pytestmark = pytest.mark.stack

AXE = Axe()


def described(violations: list[dict[str, Any]]) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3]) for v in violations]


async def audit(page: Page) -> None:
    """Fail on any axe violation on the page as it is now (WCAG 2.x A and AA, best practice)."""
    results = await AXE.run(page)
    found = described(results.response["violations"])
    assert not found, "\n".join(found)


async def test_the_widget_has_no_accessibility_violations(
    browser: Browser, gateway: Gateway,
) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{gateway.http}/demo/product.html?sku=TENT-RIDGE-2P")
        await audit(page)  # closed: the launcher alone
        await open_widget(page)
        await say(page, "how long does a refund take?")
        await expect(chat(page).locator("a.more")).to_be_visible()  # an article card
        await expect(chat(page).locator(".buttons button").first).to_be_visible()
        await audit(page)


async def test_the_console_with_a_chat_open_has_no_accessibility_violations(
    browser: Browser, gateway_with: Callable[..., Any],
) -> None:
    async with gateway_with(queue_auto_assign=False) as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 800}) as page:
            add_agent(gateway.settings, "dana@shop.example", "Dana")
            await page.goto(f"{gateway.http}/console/")
            await audit(page)  # the sign-in form
            await sign_in(page, gateway, "dana@shop.example")
            await expect(page.locator("#me")).to_have_text("Dana")
            async with connect(gateway.url) as ws:
                shopper = ChatClient(ws)
                await shopper.hello(page={"url": "https://shop.example/cart", "type": "cart"})
                await shopper.turn("hi")
                await shopper.say("I want to talk to a real person please")
                await shopper.recv_until(lambda f: f.get("mode") == "queued")
                entry = page.locator("#queue li").first
                await expect(entry).to_be_visible()
                await audit(page)  # the queue
                await entry.get_by_role("button", name="Claim").click()
                await expect(page.locator("#transcript li.shopper").first).to_contain_text("hi")
                await audit(page)  # the chat: transcript, context, reply box


async def test_the_workbench_has_no_accessibility_violations(
    browser: Browser, workbench: Gateway,  # noqa: F811
) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 900},
                         reduced_motion="reduce") as page:
        await sign_in(page, workbench, "kim@shop.example", "/admin/")
        await expect(page.locator("#rows tr").first).to_be_visible()
        await audit(page)  # the review inbox
        await page.goto(f"{workbench.http}/admin/conversation?id=c2")
        await expect(page.locator("#transcript .line.shopper").first).to_be_visible()
        await audit(page)  # a transcript
        await page.goto(f"{workbench.http}/admin/")
        await page.click("#tab-analytics")
        await expect(page.locator("#figures .figure").first).to_be_visible()
        await audit(page)  # analytics
