"""The widget in the shopper's language, on a shop's own page (another origin): German on a
page that says lang="de" (its strings fetched from the gateway across origins), the
conversation kept in German at the gateway, the shopper switching to French in the
chat's header, that choice kept on the next page, and the agent who takes the chat
seeing it is in French."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import open_page
from tests.browser.test_console import sign_in
from tests.browser.test_widget import chat, open_widget, say
from tests.browser.test_widget_on_shop_pages import (  # noqa: F401  (fixtures)
    BOT,
    Shop,
    shop,
    shop_gateway,
    shop_page,
)
from tests.conftest import Gateway, add_agent

pytestmark = pytest.mark.stack


async def conversation_id(page: Page) -> str:
    """The conversation the widget keeps in the shop's local storage, once it has one."""
    handle = await page.wait_for_function(
        """() => { for (const [key, value] of Object.entries(localStorage)) {
                     if (key.startsWith("shopchat:")) {
                       const state = JSON.parse(value);
                       if (state.conversation_id) return JSON.stringify(state); } }
                   return null; }""")
    return str(json.loads(await handle.json_value())["conversation_id"])


async def test_the_widget_speaks_the_pages_language_and_then_the_shoppers_choice(
    browser: Browser, shop: Shop, shop_gateway: Gateway  # noqa: F811
) -> None:
    url = shop_page(shop, shop_gateway, body="<h1>Zelte</h1>", lang="de")
    async with open_page(browser, viewport={"width": 1280, "height": 800},
                         locale="en-US") as page:
        await page.goto(url)
        widget = chat(page)
        launcher = widget.locator(".launcher")
        await expect(launcher).to_have_attribute("aria-label", "Chat öffnen")
        await open_widget(page)
        await expect(widget.locator(".title")).to_have_text("Schreiben Sie uns")
        await expect(widget.locator(".sub")).to_have_text("Unser Assistent antwortet sofort")
        await expect(widget.locator("form.compose input")).to_have_attribute(
            "placeholder", "Ihre Nachricht …")
        await expect(widget.locator("select.lang")).to_have_value("de")
        await say(page, "are you a bot?")
        await expect(widget.locator(".msg.bot").last).to_contain_text(BOT)
        conversation = await conversation_id(page)
        assert shop_gateway.stored(conversation).lang == "de"

        await widget.locator("select.lang").select_option("fr")
        await expect(widget.locator(".title")).to_have_text("Discutez avec nous")
        await expect(widget.locator("form.compose button")).to_have_text("Envoyer")
        await expect(widget.locator(".panel")).to_have_attribute("lang", "fr")
        for _ in range(50):
            if shop_gateway.stored(conversation).lang == "fr":
                break
            await page.wait_for_timeout(100)
        assert shop_gateway.stored(conversation).lang == "fr"

        # The shopper's choice wins over the page's language on the next page too.
        await page.reload()
        await expect(launcher).to_have_attribute("aria-label", "Fermer le chat")
        await expect(widget.locator(".title")).to_have_text("Discutez avec nous")
        await expect(widget.locator(".msg.bot").last).to_contain_text(BOT)

        # The agent who takes the chat reads its language in the context.
        add_agent(shop_gateway.settings, "ola@shop.example", "Ola")
        async with open_page(browser, viewport={"width": 1280, "height": 800}) as console:
            await sign_in(console, shop_gateway, "ola@shop.example")
            await say(page, "I want to talk to a real person please")
            await expect(widget.locator(".sub")).to_have_text("Ola, de notre équipe, vous répond")
            language = console.locator("#context dt").filter(has_text="Language")
            await expect(language.locator("xpath=following-sibling::dd[1]")).to_have_text(
                "French (fr)")
