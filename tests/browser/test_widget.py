"""The widget on the demo shop in a real browser: FAQ answers, reload, a person taking
over from the console in a second browser context, XSS as text, keyboard only, phones,
and a hostile shop stylesheet."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.conftest import open_page
from tests.browser.test_console import XSS, sign_in
from tests.conftest import Gateway, add_agent

pytestmark = pytest.mark.stack

REFUND = "We refund within 3 working days"
GREETING = "I'm the shop's assistant"


def chat(page: Page) -> Locator:
    return page.locator("shop-chat")


async def open_widget(page: Page) -> None:
    await chat(page).locator(".launcher").click()
    await expect(chat(page).locator(".panel")).to_be_visible()


async def say(page: Page, text: str) -> None:
    box = chat(page).locator("form.compose input")
    await box.fill(text)
    await box.press("Enter")


async def test_faq_answer_reload_and_a_person_taking_over(
    browser: Browser, gateway: Gateway, artifacts: Path
) -> None:
    add_agent(gateway.settings, "ola@shop.example", "Ola")
    shop = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await shop.new_page()
        await page.goto(f"{gateway.http}/demo/product.html?sku=TENT-RIDGE-2P")
        await open_widget(page)
        log = chat(page).locator(".log")
        header = chat(page).locator(".head .sub")
        await expect(header).to_have_text("Our assistant answers right away")
        await say(page, "how long does a refund take?")
        answer = log.locator(".msg.bot").last
        await expect(answer).to_contain_text(REFUND)
        # A card: the article's title, the answer, a "Read more" link, not a bare URL.
        await expect(answer.locator("strong")).to_have_text("Refunds")
        link = answer.locator("a.more")
        await expect(link).to_have_text("Read more")
        await expect(link).to_have_attribute("href", "https://trailhead.example/help/refunds")
        assert "https://" not in await answer.inner_text()
        # Every stored message carries its time, in the shopper's clock.
        asked = log.locator(".msg.shopper").last
        for said in (asked, answer):
            await expect(said).to_have_attribute("data-time", re.compile(r"^\d{1,2}.\d{2}"))
        await expect(log.locator(".buttons button").filter(has_text="that helped")).to_be_visible()
        # The picture for the README: the answer's card from its title.
        await answer.evaluate("e => e.scrollIntoView({ block: 'start' })")
        await page.screenshot(path=str(artifacts / "widget-desktop.png"))

        # Reload: the open chat stays open and the transcript comes back.
        await page.reload()
        await expect(chat(page).locator(".panel")).to_be_visible()
        await expect(log.locator(".msg.shopper").first).to_have_text("how long does a refund take?")
        await expect(log.locator(".msg.bot").last).to_contain_text(REFUND)

        agent = await console.new_page()
        await sign_in(agent, gateway, "ola@shop.example")
        await expect(agent.locator("#me")).to_have_text("Ola")
        await say(page, "I want to talk to a real person please")
        joined = log.locator(".msg.system").filter(has_text="Ola joined the chat")
        await expect(joined).to_be_visible()
        await expect(agent.locator("#transcript li.shopper").last).to_contain_text("real person")

        await agent.fill("#reply", "Hi, Ola here. I can see you asked about refunds.")
        await agent.press("#reply", "Enter")
        reply = log.locator(".msg.agent").last
        await expect(reply).to_contain_text("Ola here")
        await expect(reply.locator(".who")).to_contain_text("Ola")
        await expect(reply.locator(".who .av")).to_have_text("O")
        await expect(header).to_have_text("Ola from our team is answering")

        await say(page, XSS)
        await expect(agent.locator("#transcript li.shopper").last).to_contain_text("<img src=x")
        await expect(log.locator(".msg.shopper").last).to_contain_text("<script>")
        for p in (page, agent):
            assert await p.evaluate("window.__xss") is None
        assert await chat(page).locator(".log img, .log script").count() == 0

        await agent.select_option("#resolution", "resolved")
        await agent.click("#close")
        rating = log.locator(".card").filter(has_text="How did Ola do?")
        await expect(rating).to_be_visible()
        await rating.get_by_role("button", name="Rate 5 out of 5").click()
        await expect(log.locator(".msg.system").last).to_have_text("Thank you for your feedback!")
        await expect(rating).to_have_count(0)
    finally:
        await shop.close()
        await console.close()


async def test_keyboard_only_reaches_and_sends_a_message(browser: Browser,
                                                         gateway: Gateway) -> None:
    async with open_page(browser) as page:
        await page.goto(f"{gateway.http}/demo/")
        launcher = chat(page).locator(".launcher")
        for _ in range(30):  # tab through the shop until the chat's launcher has focus
            await page.keyboard.press("Tab")
            if await launcher.evaluate("b => b.getRootNode().activeElement === b"):
                break
        else:
            pytest.fail("the chat launcher cannot be reached with Tab")
        await page.keyboard.press("Enter")
        box = chat(page).locator("form.compose input")
        await expect(box).to_be_focused()
        await page.keyboard.type("hi")
        await page.keyboard.press("Enter")
        await expect(chat(page).locator(".msg.bot").last).to_contain_text(GREETING)
        await page.keyboard.press("Escape")
        await expect(chat(page).locator(".panel")).to_be_hidden()


async def test_with_nobody_online_the_shopper_leaves_a_message_and_is_told_once(
    browser: Browser, gateway: Gateway
) -> None:
    async with open_page(browser) as page:
        await page.goto(f"{gateway.http}/demo/")
        await open_widget(page)
        log = chat(page).locator(".log")
        await say(page, "I want to talk to a real person please")
        form = log.locator(".card").filter(has_text="Leave us a message")
        await expect(form).to_be_visible()
        # The header says how the team answers now; one message says why, none says
        # that a person is on the way.
        await expect(chat(page).locator(".head .sub")).to_have_text(
            "Our assistant is here; our team replies by email")
        notices = log.locator(".msg:not(.shopper)").filter(has_text=re.compile(
            "person|online", re.I))
        await expect(notices).to_have_count(1)
        await expect(notices).to_contain_text("No one from our team is online")
        await form.get_by_label("Your email").fill("sam@example.com")
        await form.get_by_label("Your message").fill("Can I change the colour of my tent?")
        await form.get_by_role("button", name="Send message").click()
        await expect(form).to_have_count(0)
        with sqlite3.connect(gateway.settings.gateway_db) as conn:
            stored = conn.execute("SELECT message FROM tickets WHERE email = ?",
                                  ["sam@example.com"]).fetchall()
        assert stored == [("Can I change the colour of my tent?",)]


async def test_phone_layout_fills_the_screen_and_keeps_16px_input(
    browser: Browser, gateway: Gateway, artifacts: Path
) -> None:
    async with open_page(browser, viewport={"width": 375, "height": 700},
                         is_mobile=True, has_touch=True) as page:
        await page.goto(f"{gateway.http}/demo/")
        await open_widget(page)
        panel = chat(page).locator(".panel")
        box = await panel.bounding_box()
        assert box is not None and box["width"] == 375 and box["height"] >= 690
        font = await chat(page).locator("form.compose input").evaluate(
            "i => getComputedStyle(i).fontSize")
        assert font == "16px"
        await say(page, "hi")
        await expect(chat(page).locator(".msg.bot").last).to_contain_text(GREETING)
        await page.screenshot(path=str(artifacts / "widget-375.png"))


async def test_a_hostile_shop_stylesheet_cannot_break_the_chat(browser: Browser,
                                                                gateway: Gateway) -> None:
    async with open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{gateway.http}/demo/hostile.html")
        host = chat(page)
        position = await host.evaluate("h => getComputedStyle(h).position")
        assert position == "fixed"
        await open_widget(page)
        panel = await host.locator(".panel").bounding_box()
        assert panel is not None and panel["width"] >= 300 and panel["height"] >= 300
        color = await host.locator(".head").evaluate("h => getComputedStyle(h).color")
        assert color == "rgb(255, 255, 255)"
        await say(page, "hi")
        await expect(host.locator(".msg.bot").last).to_contain_text(GREETING)
