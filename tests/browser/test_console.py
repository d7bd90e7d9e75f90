"""The agent console in a real browser: sign in, claim, read the context, reply, notes,
close; shopper text is shown as text, never run as HTML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from websockets.asyncio.client import connect

from tests.browser.conftest import open_page
from tests.conftest import AGENT_PASSWORD, ChatClient, Gateway, add_agent

pytestmark = pytest.mark.stack

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


async def sign_in(page: Page, gateway: Gateway, email: str, path: str = "/console/") -> None:
    """Open ``path`` (the console, or a workbench page) and sign in there."""
    await page.goto(f"{gateway.http}{path}")
    await page.fill("#email", email)
    await page.fill("#password", AGENT_PASSWORD)
    await page.press("#password", "Enter")


async def test_agent_claims_reads_context_replies_and_closes(
    browser: Browser, gateway_with: Callable[..., Any], artifacts: Path
) -> None:
    async with gateway_with(queue_auto_assign=False) as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 800}) as page:
            add_agent(gateway.settings, "dana@shop.example", "Dana")
            await sign_in(page, gateway, "dana@shop.example")
            await expect(page.locator("#me")).to_have_text("Dana")

            async with connect(gateway.url) as ws:
                shopper = ChatClient(ws)
                cart = {"items": [{"sku": "TENT-2P", "qty": 1, "price": 249.0}],
                        "total": 249.0, "currency": "EUR"}
                await shopper.hello(page={"url": "https://shop.example/checkout",
                                          "type": "checkout", "cart": cart})
                await shopper.turn("hi")
                await shopper.say("I want to talk to a real person please")
                await shopper.recv_until(lambda f: f.get("mode") == "queued")

                entry = page.locator("#queue li").filter(has_text="checkout")
                await expect(entry).to_have_count(1)
                await entry.get_by_role("button", name="Claim").click()
                transcript = page.locator("#transcript")
                await expect(transcript.locator("li.shopper").first).to_contain_text("hi")
                await expect(transcript.locator("li.shopper .badge").first).to_contain_text("greet")
                await expect(page.locator("#context")).to_contain_text("checkout")
                await expect(page.locator("#context")).to_contain_text("TENT-2P")
                await shopper.recv_until(lambda f: f.get("mode") == "agent")

                await page.fill("#reply", "Hi, I'm Dana. How can I help?")
                await page.press("#reply", "Enter")
                got = await shopper.recv_until(
                    lambda f: f["type"] == "message" and f["author"] == "agent")
                assert got[-1]["text"] == "Hi, I'm Dana. How can I help?"

                await shopper.say(XSS)
                await expect(transcript.locator("li.shopper").last).to_contain_text("<img src=x")
                assert await page.evaluate("window.__xss") is None
                assert await transcript.locator("img, script").count() == 0

                await page.check("#as-note")
                await page.fill("#reply", "Customer is VIP, waive the fee")
                await page.press("#reply", "Enter")
                await expect(page.locator("#notes")).to_contain_text("VIP, waive the fee")
                await page.uncheck("#as-note")

                await page.screenshot(path=str(artifacts / "console.png"))
                await page.select_option("#resolution", "resolved")
                await page.click("#close")
                frames = await shopper.recv_until(lambda f: f["type"] == "csat_request")
                assert "VIP" not in json.dumps(frames)


async def test_the_sign_in_form_works_with_the_keyboard_alone(
    browser: Browser, gateway: Gateway
) -> None:
    add_agent(gateway.settings, "kim@shop.example", "Kim")
    async with open_page(browser) as page:
        await page.goto(f"{gateway.http}/console/")
        await expect(page.locator("#email")).to_be_focused()
        await page.keyboard.type("kim@shop.example")
        await page.keyboard.press("Tab")
        await page.keyboard.type("wrong password")
        await page.keyboard.press("Enter")
        await expect(page.locator("#signin-error")).to_have_text("Wrong email or password.")
        await page.focus("#password")
        await page.fill("#password", "")
        await page.keyboard.type(AGENT_PASSWORD)
        await page.keyboard.press("Enter")
        await expect(page.locator("#me")).to_have_text("Kim")
        # Signing out ends the session: the stored token no longer opens the socket.
        await page.click("#signout")
        await expect(page.locator("#signin-error")).to_have_text("You signed out.")




async def test_the_console_has_a_main_heading_and_a_transcript_the_keyboard_can_scroll(
    browser: Browser, gateway: Gateway
) -> None:
    add_agent(gateway.settings, "lee@shop.example", "Lee")
    async with open_page(browser, viewport={"width": 1280, "height": 520}) as page:
        await sign_in(page, gateway, "lee@shop.example")
        await expect(page.locator("#me")).to_have_text("Lee")
        await expect(page.get_by_role("heading", level=1)).to_have_text("shopchat agent console")

        async with connect(gateway.url) as ws:
            shopper = ChatClient(ws)
            await shopper.hello()
            await shopper.turn("hi")
            await shopper.say("I want to talk to a real person please")
            await shopper.recv_until(lambda f: f.get("mode") == "agent")
            for n in range(8):
                await shopper.say(f"one more detail, number {n}")
            transcript = page.get_by_role("list", name="Transcript")
            await expect(transcript.locator("li.shopper").last).to_contain_text("number 7")
            assert await transcript.evaluate("t => t.scrollHeight > t.clientHeight")

            # A scrolling region without a focusable child: Tab must reach it, and the
            # keys then scroll it.
            await page.locator("#close").focus()
            for _ in range(10):
                await page.keyboard.press("Tab")
                if await transcript.evaluate("t => document.activeElement === t"):
                    break
            else:
                pytest.fail("Tab never reaches the transcript")
            for key, at in (("Home", "t.scrollTop === 0"),
                            ("End", "t.scrollTop + t.clientHeight >= t.scrollHeight - 2")):
                await page.keyboard.press(key)
                await page.wait_for_function(
                    f"() => {{ const t = document.getElementById('transcript'); return {at}; }}")
