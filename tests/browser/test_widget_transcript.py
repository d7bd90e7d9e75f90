"""The widget's "Email me a copy" in a real browser: after the shopper leaves a message,
one click mails the whole conversation (escaped) to the address they left, through a
real SMTP server (aiosmtpd); the card gives way to the notice. Scripted assistant: no
Rasa needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.conftest import open_page
from tests.browser.test_widget import chat, open_widget, say
from tests.mailbox import Mailbox

XSS = '<img src=x onerror="window.__xss=1">'


async def test_the_shopper_gets_the_conversation_by_email_after_leaving_a_message(
    browser: Browser, mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway() as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        await page.goto(f"{gateway.http}/demo/")
        await open_widget(page)
        log = chat(page).locator(".log")
        await say(page, f"hello {XSS}")
        await say(page, "I want to talk to a real person please")
        form = log.locator(".card").filter(has_text="Leave us a message")
        await form.get_by_label("Your email").fill("sam@example.com")
        await form.get_by_label("Your message").fill("Can I change my tent's colour?")
        await form.get_by_role("button", name="Send message").click()
        card = log.locator(".card").filter(has_text="Want a copy of this conversation")
        await card.get_by_role("button", name="Email me a copy").click()
        await expect(card).to_have_count(0)
        await expect(log.locator(".msg").last).to_contain_text(
            "We emailed a copy of this conversation to s…@example.com")

        [mail] = await mailbox.wait_for(1)
        assert mail["To"] == "sam@example.com"
        text = mail.get_body(preferencelist=("plain",)).get_content()
        markup = mail.get_body(preferencelist=("html",)).get_content()
        for said in (f"hello {XSS}", "I want to talk to a real person please",
                     "Can I change my tent's colour?"):
            assert said in text
        assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in markup
        assert "<img" not in markup

        # Reloaded, the page replays the conversation: the card stays answered.
        await page.reload()  # the chat stays open across pages
        await expect(log.locator(".msg").last).to_contain_text("We emailed a copy")
        await expect(log.locator(".card").filter(
            has_text="Want a copy of this conversation")).to_have_count(0)
