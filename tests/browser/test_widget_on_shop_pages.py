"""The widget on shops' own pages, as real shops build them: another origin than the
gateway, a strict Content-Security-Policy, site storage blocked, a transformed <body>;
and what a shopper sees on them: the unread badge after a reload, the queue banner, the
launcher's label, touch targets on a phone, focus rings."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from bot.settings import Settings
from shopchat.stack import free_port
from tests.browser.conftest import open_page
from tests.browser.test_widget import GREETING, chat, open_widget, say
from tests.conftest import Gateway, add_agent, agent_console

pytestmark = pytest.mark.stack

#: The bot's answer to "are you a bot?" (bot/domain.yml, utter_iamabot).
BOT = "I'm a bot, the shop's virtual assistant"


@dataclass
class Shop:
    """The shop's own web server: another origin than the gateway's (another port; a
    loopback one, since Chromium keeps public pages from loading loopback scripts)."""

    origin: str
    #: path -> (HTML, response headers)
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    port = free_port()
    served = Shop(f"http://127.0.0.1:{port}")

    async def page(request: web.Request) -> web.Response:
        if request.path not in served.pages:
            raise web.HTTPNotFound()
        html, headers = served.pages[request.path]
        return web.Response(text=html, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/{path:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest.fixture
async def shop_gateway(gateway_settings: Settings, shop: Shop) -> AsyncIterator[Gateway]:
    """A gateway that lets the shop's origin open chats (SHOPCHAT_ALLOWED_ORIGINS)."""
    gateway = Gateway(gateway_settings.model_copy(update={"allowed_origins": [shop.origin]}))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def shop_page(shop: Shop, gateway: Gateway, *, body: str = "", style: str = "",
              commands: tuple[tuple[str, object], ...] = (), csp: str | None = None,
              lang: str = "en") -> str:
    """A page of the shop embedding the widget with one tag, after queueing ``commands``
    with the README's snippet; returns its URL."""
    queue = ""
    if commands:
        queue = ("<script>window.shopchat = window.shopchat || function () {"
                 "(shopchat.q = shopchat.q || []).push(arguments); };"
                 + "".join(f"shopchat({json.dumps(name)}, {json.dumps(arg)});"
                           for name, arg in commands) + "</script>")
    html = (f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>A shop</title>{style and f'<style>{style}</style>'}{queue}</head>"
            f"<body>{body}"
            f"<script src='{gateway.http}/widget.js' async></script></body></html>")
    shop.pages["/"] = (html, {"Content-Security-Policy": csp} if csp else {})
    return f"{shop.origin}/"


async def test_a_strict_csp_shop_gets_a_styled_chat_that_answers(
    browser: Browser, shop: Shop, shop_gateway: Gateway
) -> None:
    gateway = shop_gateway.http
    # The policy the README asks of a shop: the gateway for the script and the socket,
    # and nothing for styles beyond the shop's own.
    csp = (f"default-src 'none'; script-src {gateway}; "
           f"connect-src {gateway} {gateway.replace('http', 'ws')}; style-src 'self'")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        url = shop_page(shop, shop_gateway, body="<h1>Strict shop</h1>", csp=csp)
        page = await context.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text)
                if "Content Security Policy" in m.text else None)
        await page.goto(url)
        launcher = chat(page).locator(".launcher")
        await expect(launcher).to_be_visible()
        assert await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == \
            "rgb(31, 95, 74)"
        assert await chat(page).evaluate("h => getComputedStyle(h).position") == "fixed"
        await open_widget(page)
        box = await chat(page).locator(".panel").bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 300
        await say(page, "hi")
        await expect(chat(page).locator(".msg.bot").last).to_contain_text(GREETING)
        assert refused == []
    finally:
        await context.close()


async def test_commands_queued_before_the_script_loads_are_all_kept(
    browser: Browser, shop: Shop, shop_gateway: Gateway
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        url = shop_page(shop, shop_gateway, commands=(
            ("config", {"greeting": "Hello from the shop!", "strings": {"title": "Help"}}),
            ("page", {"type": "cart"}), ("open", None)))
        page = await context.new_page()
        await page.goto(url)
        await expect(chat(page).locator(".panel")).to_be_visible()
        await expect(chat(page).locator(".head .title")).to_have_text("Help")
        await expect(chat(page).locator(".msg.bot").first).to_have_text("Hello from the shop!")
    finally:
        await context.close()


BLOCK_STORAGE = """
for (const name of ["localStorage", "sessionStorage"]) {
  Object.defineProperty(window, name, { configurable: true, get() {
    throw new DOMException("The user denied access to site storage.", "SecurityError");
  } });
}
"""


async def test_with_site_storage_blocked_the_chat_still_connects_and_answers(
    browser: Browser, shop: Shop, shop_gateway: Gateway
) -> None:
    context = await browser.new_context()
    try:
        await context.add_init_script(BLOCK_STORAGE)
        url = shop_page(shop, shop_gateway)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(url)
        with pytest.raises(Exception, match="denied access"):
            await page.evaluate("localStorage.length")
        await open_widget(page)
        await say(page, "hi")
        await expect(chat(page).locator(".msg.bot").last).to_contain_text(GREETING)
        await expect(chat(page).locator(".msg.shopper.pending")).to_have_count(0)
        assert errors == []
    finally:
        await context.close()


@pytest.mark.parametrize("effect", ["transform: translateZ(0)", "filter: saturate(1)",
                                    "will-change: transform", "contain: paint"])
async def test_a_body_that_makes_a_containing_block_cannot_move_the_launcher(
    browser: Browser, shop: Shop, shop_gateway: Gateway, effect: str
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        url = shop_page(shop, shop_gateway, style=f"body {{ margin: 0; {effect}; }}",
                        body="<main style='height: 5000px'>A long page</main>")
        page = await context.new_page()
        await page.goto(url)
        launcher = chat(page).locator(".launcher")
        await expect(launcher).to_be_visible()
        for scroll in (0, 2000):
            await page.evaluate(f"window.scrollTo(0, {scroll})")
            box = await launcher.bounding_box()
            assert box is not None
            # 20 px from the viewport's bottom-right corner, at its own size, wherever the
            # page is scrolled to.
            assert abs(box["x"] + box["width"] - 1260) <= 1, box
            assert abs(box["y"] + box["height"] - 780) <= 1, box
            assert box["width"] >= 60 and box["height"] >= 44, box
        await open_widget(page)
        panel = await chat(page).locator(".panel").bounding_box()
        assert panel is not None and panel["width"] == 370 and panel["y"] >= 0
    finally:
        await context.close()


async def badge(page: Page) -> str | None:
    """The unread count on the launcher, or None when the badge is hidden."""
    shown = await chat(page).locator(".badge").evaluate("b => b.hidden ? null : b.textContent")
    return None if shown is None else str(shown)


async def test_messages_seen_before_a_reload_are_not_counted_as_unread(
    browser: Browser, gateway: Gateway
) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{gateway.http}/demo/")
        await open_widget(page)
        log = chat(page).locator(".log")
        await say(page, "hi")
        await expect(log.locator(".msg.bot").last).to_contain_text(GREETING)
        # The answer to this one arrives with the chat closed: that one is unread.
        await chat(page).locator("form.compose").evaluate("""f => {
            f.elements.text.value = "are you a bot?";
            f.requestSubmit();
            window.shopchat("close"); }""")  # closed before any answer can arrive
        await expect(chat(page).locator(".panel")).to_be_hidden()
        await expect(log.locator(".msg.bot").last).to_contain_text(BOT)
        unread = await badge(page)
        assert unread is not None and int(unread) >= 1

        # The new page replays the whole transcript: the count stays what it was.
        await page.reload()
        await expect(log.locator(".msg.bot").last).to_contain_text(BOT)
        assert await badge(page) == unread

        await open_widget(page)
        assert await badge(page) is None
        await chat(page).locator(".launcher").click()
        await page.goto(f"{gateway.http}/demo/cart.html")
        await expect(log.locator(".msg.bot").last).to_contain_text(BOT)
        assert await badge(page) is None


async def test_the_queue_banner_keeps_the_newest_message_in_view(
    browser: Browser, gateway_with: Callable[..., Any]
) -> None:
    # Auto-assign off and one agent online: the shopper waits in the queue under a banner.
    async with gateway_with(queue_auto_assign=False) as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 420}) as page:
        add_agent(gateway.settings, "kai@shop.example", "Kai")
        async with agent_console(gateway.http, "kai@shop.example"):
            await page.goto(f"{gateway.http}/demo/")
            await open_widget(page)
            await say(page, "hi")
            await expect(chat(page).locator(".msg.bot").last).to_contain_text(GREETING)
            await say(page, "I want to talk to a real person please")
            banner = chat(page).locator(".status")
            await expect(banner).to_contain_text("Waiting for a person")
            await expect(chat(page).locator(".head .sub")).to_have_text(re.compile(
                r"A person from our team will answer (shortly|in about \d+ min)"))
            await page.wait_for_timeout(300)  # any later frame would scroll the list anyway
            log = chat(page).locator(".log")
            at_end = await log.evaluate(
                "l => l.scrollHeight - l.scrollTop - l.clientHeight < 4")
            assert await log.evaluate("l => l.scrollHeight > l.clientHeight")
            assert at_end, "the newest message is hidden under the queue banner"
            # Exactly one message after the request says a person is coming.
            announced = await log.evaluate("""l => {
                const msgs = [...l.querySelectorAll('.msg')];
                const asked = msgs.findLastIndex(m => m.classList.contains('shopper'));
                return msgs.slice(asked + 1).map(m => m.textContent)
                           .filter(t => /person|someone/i.test(t)); }""")
            assert len(announced) == 1, announced


async def test_the_launcher_says_what_it_does_and_the_focus_ring_is_not_clipped(
    browser: Browser, gateway: Gateway
) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{gateway.http}/demo/")
        launcher = chat(page).locator(".launcher")
        await expect(launcher).to_have_attribute("aria-label", "Open chat")
        await launcher.focus()
        await page.keyboard.press("Enter")
        await expect(launcher).to_have_attribute("aria-label", "Close chat")
        await expect(launcher).to_have_attribute("aria-expanded", "true")

        panel = await chat(page).locator(".panel").bounding_box()
        assert panel is not None
        for target in ("form.compose input", "form.compose button"):
            field = chat(page).locator(target)
            await field.focus()
            # The ring is drawn outside the border box by outline-offset + outline-width;
            # the panel clips everything outside its own box (overflow: hidden).
            ring = await field.evaluate("""f => { const s = getComputedStyle(f);
                const r = f.getBoundingClientRect();
                const out = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth);
                return { style: s.outlineStyle, left: r.left - out, right: r.right + out,
                         top: r.top - out, bottom: r.bottom + out }; }""")
            assert ring["style"] != "none", target
            assert ring["left"] >= panel["x"] and ring["top"] >= panel["y"], (target, ring)
            assert ring["right"] <= panel["x"] + panel["width"], (target, ring)
            assert ring["bottom"] <= panel["y"] + panel["height"], (target, ring)

        await launcher.click()
        await expect(launcher).to_have_attribute("aria-label", "Open chat")


async def test_every_button_is_a_44px_touch_target_on_a_phone(
    browser: Browser, shop: Shop, shop_gateway: Gateway
) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 700},
                                        is_mobile=True, has_touch=True)
    try:
        url = shop_page(shop, shop_gateway,
                        commands=(("config", {"proactive": [{"text": "Need a hand?"}]}),))
        page = await context.new_page()
        await page.goto(url)
        await expect(chat(page).locator(".bubble")).to_be_visible()
        sizes = {}
        for target in (".launcher", ".bubble .dismiss"):
            sizes[target] = await chat(page).locator(target).bounding_box()
        await chat(page).locator(".launcher").tap()
        for target in (".head .close", "form.compose button"):
            sizes[target] = await chat(page).locator(target).bounding_box()
        small = {t: (b and (round(b["width"]), round(b["height"]))) for t, b in sizes.items()
                 if not b or b["width"] < 44 or b["height"] < 44}
        assert small == {}
    finally:
        await context.close()
