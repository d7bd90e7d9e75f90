"""Transcripts by email: the shopper asks (with their conversation's resume token) and
the whole conversation, escaped, is mailed to the address the conversation already has
(the one left with a message, or a signed-in customer's in the shop's records), never
to another; rate-limited per conversation and per address; shop pages only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import SecretStr
from websockets.asyncio.client import connect

from bot.identity import sign_identity
from bot.store.demo import ensure_demo_data
from tests.conftest import IDENTITY_SECRET, ChatClient, Gateway
from tests.mail.conftest import leave_message, shopper
from tests.mailbox import Mailbox

XSS = '<img src=x onerror="alert(1)"> & "quotes"'
SHOP_PAGE = "https://shop.example"


async def ask(gateway: Gateway, client: ChatClient, token: str | None = None,
              origin: str | None = None) -> tuple[int, dict[str, Any], Any]:
    """Ask for a transcript as the widget does; status, JSON body, headers."""
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session, session.post(
            f"{gateway.http}/api/chat/transcript", headers=headers,
            json={"conversation_id": client.conversation_id,
                  "resume_token": token or client.resume_token}) as response:
        return response.status, await response.json(content_type=None), response.headers


async def test_the_whole_conversation_escaped_is_mailed_to_the_ticket_address(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway() as gateway, shopper(gateway) as client:
        await client.turn(f"hi {XSS}")
        await leave_message(client, "sam@example.org", f"My pole broke {XSS}")
        status, body, _ = await ask(gateway, client)
        assert status == 200 and body["to"] == "s…@example.org", body
        notice = await client.recv_until(lambda f: f.get("transcript") is True)
        assert notice[-1]["author"] == "system" and "s…@example.org" in notice[-1]["text"]
        assert notice[-1]["seq"] == body["seq"]

        [mail] = await mailbox.wait_for(1)
        assert mailbox.received[0][0] == ["sam@example.org"]
        assert mail["Auto-Submitted"] == "auto-generated" and "List-Unsubscribe" not in mail
        assert mail["Subject"] == "Your conversation with Trailhead support"
        text = mail.get_body(preferencelist=("plain",)).get_content()
        markup = mail.get_body(preferencelist=("html",)).get_content()
        # Every message of the conversation, in order: the shopper's, the bot's, the
        # system's (the offline form), up to the confirmation of the left message.
        assert text.index("You, ") < text.index(f"hi {XSS}") < text.index(
            "I want to talk to a real person please") < text.index(
            "No one from our team is online") < text.index("We have your message")
        assert "Trailhead support assistant, " in text
        assert "<img" not in markup and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" \
            " &amp; &quot;quotes&quot;" in markup
        assert "You left a message, " in text and f"My pole broke {XSS}" in text
        assert markup.count("&lt;img") == text.count("<img") == 2  # said, and left


async def test_no_address_wrong_token_and_other_origins_are_refused(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway(allowed_origins=[SHOP_PAGE]) as gateway, \
            shopper(gateway) as client:
        await client.turn("hi")
        status, body, _ = await ask(gateway, client)
        assert status == 409 and body["code"] == "no_address"
        status, body, _ = await ask(gateway, client, token="x" * 32)
        assert status == 401 and body["code"] == "resume_rejected"
        async with aiohttp.ClientSession() as session, session.post(  # no address of one's own
                f"{gateway.http}/api/chat/transcript", json={
                    "conversation_id": client.conversation_id,
                    "resume_token": client.resume_token, "email": "victim@example.org"},
        ) as response:
            assert response.status == 400
        await leave_message(client, "sam@example.org", "Hello")
        status, body, _ = await ask(gateway, client, origin="https://evil.example")
        assert status == 403 and body["code"] == "forbidden_origin"
        async with aiohttp.ClientSession() as session, session.options(
                f"{gateway.http}/api/chat/transcript",
                headers={"Origin": SHOP_PAGE, "Access-Control-Request-Method": "POST"}
        ) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == SHOP_PAGE
        status, body, headers = await ask(gateway, client, origin=SHOP_PAGE)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == SHOP_PAGE
        # Too soon for another copy of this conversation (and the refusal is readable
        # by the shop's page).
        status, body, headers = await ask(gateway, client, origin=SHOP_PAGE)
        assert status == 429 and body["code"] == "too_many"
        assert headers["Access-Control-Allow-Origin"] == SHOP_PAGE
        assert int(headers["Retry-After"]) == 600
        assert len(await mailbox.wait_for(1)) == 1


async def test_one_address_gets_a_few_transcripts_a_day_whatever_the_conversation(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway(transcript_interval=0, transcript_daily_limit=2) as gateway:
        statuses = []
        for _ in range(3):  # someone leaving messages with the same address three times
            async with shopper(gateway) as client:
                await leave_message(client, "victim@example.org", "Hello")
                statuses.append((await ask(gateway, client))[0])
        assert statuses == [200, 200, 429]
        await mailbox.wait_for(2)


async def test_a_signed_in_customer_gets_it_at_their_shop_account_address(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway(identity_secret=SecretStr(IDENTITY_SECRET)) as gateway:
        ensure_demo_data(gateway.settings)
        async with connect(gateway.url) as ws:
            client = ChatClient(ws)
            await client.hello(identity=sign_identity("cus_0001", IDENTITY_SECRET))
            await client.turn("hi")
            status, body, _ = await ask(gateway, client)
        assert status == 200 and body["to"] == "a…@example.com", body
        [mail] = await mailbox.wait_for(1)
        assert mail["To"] == "anna.berg@example.com"


async def test_transcripts_are_off_without_mail(scripted_gateway_with: Callable[..., Any]
                                                ) -> None:
    async with scripted_gateway_with(presence_grace=0.2) as gateway, \
            shopper(gateway) as client:
        await leave_message(client, "sam@example.org", "Hello")
        status, body, _ = await ask(gateway, client)
        assert status == 404 and body["code"] == "mail_off"
