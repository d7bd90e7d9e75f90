"""The console answers an offline message by email, in a real browser: the agent opens
the ticket, writes, the mail reaches a real SMTP server (aiosmtpd), and the shopper's
reply, posted to the inbound endpoint, appears live in the console's transcript (as
text, never as HTML); axe finds nothing to fix on the way. The assistant is the
scripted stand-in: no Rasa needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.conftest import open_page
from tests.browser.test_accessibility import audit
from tests.browser.test_console import sign_in
from tests.conftest import add_agent
from tests.mail.conftest import leave_message, post_mail, reply_to, shopper
from tests.mailbox import Mailbox

XSS = '<img src=x onerror="window.__xss=1">'


async def test_an_agent_answers_an_offline_message_and_the_reply_appears_in_the_console(
    browser: Browser, mail_gateway: Callable[..., Any], mailbox: Mailbox, artifacts: Path,
) -> None:
    async with mail_gateway() as gateway, \
            open_page(browser, viewport={"width": 1280, "height": 800}) as page:
        add_agent(gateway.settings, "dana@shop.example", "Dana")
        async with shopper(gateway) as client:
            await leave_message(client, "sam@example.org", "My tent pole broke.")

        await sign_in(page, gateway, "dana@shop.example")
        ticket = page.locator("#tickets li").filter(has_text="sam@example.org")
        await expect(ticket).to_have_count(1)
        await ticket.get_by_role("button", name="Answer").click()
        transcript = page.locator("#transcript")
        await expect(page.locator("#reply")).to_be_enabled()
        await expect(page.locator("#reply")).to_have_attribute(
            "placeholder", "Answer by email to sam@example.org (Enter sends, Shift+Enter "
            "for a new line)")
        await page.fill("#reply", "Sorry about that, a new pole is on its way.")
        await page.press("#reply", "Enter")
        await expect(transcript.locator("li.agent").last).to_contain_text("sent by email")
        await expect(transcript.locator("li.agent").last).to_contain_text(
            "a new pole is on its way")

        [mail] = await mailbox.wait_for(1)
        assert mail["To"] == "sam@example.org"
        assert "a new pole is on its way" in mail.get_body(
            preferencelist=("plain",)).get_content()

        status, answer = await post_mail(
            gateway, reply_to(mail, "sam@example.org", f"Thanks, Dana! {XSS}"))
        assert status == 200 and answer["outcome"] == "appended", answer
        reply = transcript.locator("li.shopper").last
        await expect(reply).to_contain_text("by email")
        await expect(reply).to_contain_text(f"Thanks, Dana! {XSS}")
        assert await transcript.locator("img").count() == 0
        assert await page.evaluate("window.__xss") is None
        await page.screenshot(path=str(artifacts / "console-email.png"))
        await audit(page)  # the ticket, the outgoing mail list, the email labels
