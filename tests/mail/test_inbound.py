"""Incoming mail: replies posted to /api/v1/inbound-mail join the conversation of the
ticket they answer (stored, seq'd, live in the console) only with the ticket's token and
from the ticket's address; anything else opens a new ticket; bounces and automatic
replies are recognised and dropped; the endpoint is signed and bounded."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from handoff.inbound_mail import SIGNATURE_HEADER, read_mail, sign_mail
from tests.conftest import AgentClient, ChatClient, Gateway, add_agent, agent_console
from tests.mail.conftest import INBOUND_SECRET, leave_message, post_mail, reply_to, shopper
from tests.mailbox import Mailbox

SAM = "sam@example.org"


@asynccontextmanager
async def answered_ticket(
    mail_gateway: Callable[..., Any], mailbox: Mailbox, **overrides: Any,
) -> AsyncIterator[tuple[Gateway, AgentClient, ChatClient, dict[str, Any], EmailMessage]]:
    """A gateway where Sam left a message, Cleo answered it by mail (and follows the
    conversation in her console): the gateway, Cleo, Sam's socket, the ticket, the mail."""
    async with mail_gateway(**overrides) as gateway:
        add_agent(gateway.settings, "cleo@shop.example", "Cleo")
        async with shopper(gateway) as client:
            await leave_message(client, SAM, "My tent pole broke, order 10023.")
            async with agent_console(gateway.http, "cleo@shop.example") as cleo:
                state = await cleo.expect(lambda f: f["type"] == "state" and f["tickets"])
                ticket = state["tickets"][0]
                await cleo.do("open", conversation_id=ticket["conversation_id"], last_seq=0)
                await cleo.expect(lambda f: f["type"] == "opened")
                await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r1",
                              text="A new pole is on its way.")
                await cleo.expect(lambda f: f["type"] == "ack")
                [mail] = await mailbox.wait_for(1)
                await client.recv_until(lambda f: f.get("author") == "agent")
                yield gateway, cleo, client, ticket, mail


def conversations(gateway: Gateway) -> list[str]:
    with sqlite3.connect(gateway.settings.gateway_db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM conversations ORDER BY rowid")]


def shopper_texts(gateway: Gateway, conversation_id: str) -> list[str]:
    with sqlite3.connect(gateway.settings.gateway_db) as conn:
        bodies = [json.loads(b) for (b,) in conn.execute(
            "SELECT body FROM events WHERE conversation_id = ? AND type = 'message' "
            "ORDER BY seq", [conversation_id])]
    return [b["text"] for b in bodies if b["author"] == "shopper"]


async def test_a_reply_lands_in_the_same_conversation_and_live_in_the_console(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with answered_ticket(mail_gateway, mailbox) as (gateway, cleo, client, ticket, mail):
        raw = reply_to(mail, f"Sam Rivera <{SAM}>", "Thanks! Will it come by Friday?")
        for duplicate in (False, True):  # the provider delivers it twice: stored once
            status, answer = await post_mail(gateway, raw)
            assert status == 200, answer
            assert answer == {"outcome": "appended", "duplicate": duplicate,
                              "conversation_id": ticket["conversation_id"],
                              "ticket_id": ticket["id"]}

        # Live in the console that follows the conversation, as a seq'd event …
        frame = await cleo.expect(lambda f: f["type"] == "event"
                                  and f["event"].get("author") == "shopper"
                                  and f["event"].get("via") == "email")
        assert frame["conversation_id"] == ticket["conversation_id"]
        assert frame["event"]["text"] == "Thanks! Will it come by Friday?"  # no quote, no sig
        alert = await cleo.expect(lambda f: f["type"] == "alert")
        assert alert["kind"] == "ticket" and alert["conversation_id"] == ticket["conversation_id"]
        # … and in the shopper's own conversation, in order.
        got = await client.recv_until(lambda f: f.get("via") == "email")
        assert got[-1]["seq"] == frame["event"]["seq"]
        assert shopper_texts(gateway, ticket["conversation_id"]).count(
            "Thanks! Will it come by Friday?") == 1

        # Cleo answers again: threaded after Sam's reply, same reply address.
        await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r2", text="Yes!")
        await cleo.expect(lambda f: f["type"] == "ack")
        _, second = await mailbox.wait_for(2)
        sent = read_mail(raw)
        assert second["In-Reply-To"] == sent.message_id
        assert mail["Message-ID"] in second["References"]
        assert second["Reply-To"] == mail["Reply-To"]


async def test_the_reply_address_alone_routes_a_reply_even_without_threading_headers(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with answered_ticket(mail_gateway, mailbox) as (gateway, _, _client, ticket, mail):
        raw = reply_to(mail, SAM.upper(), "Got it, thanks")  # addresses match in any case
        bare = read_mail(raw)
        assert bare.token()
        message = EmailMessage()
        message["From"], message["To"] = SAM, str(mail["Reply-To"]).upper()
        message["Subject"], message["Message-ID"] = "pole", "<fresh@client.example>"
        message.set_content("Got it, thanks")
        status, answer = await post_mail(gateway, bytes(message))
        assert status == 200 and answer["outcome"] == "appended", answer
        assert answer["conversation_id"] == ticket["conversation_id"]


@pytest.mark.parametrize("case", ["forged_sender", "no_token", "unknown_token"])
async def test_a_forged_or_tokenless_reply_opens_a_new_ticket(
    mail_gateway: Callable[..., Any], mailbox: Mailbox, case: str,
) -> None:
    async with answered_ticket(mail_gateway, mailbox) as (gateway, cleo, _c, ticket, mail):
        if case == "forged_sender":  # the right reply address, someone else's From
            raw = reply_to(mail, "mallory@example.net", "Send the refund to my account")
            reason = "sender_differs"
        elif case == "no_token":  # Sam writes to the shop's address afresh
            message = EmailMessage()
            message["From"], message["To"] = SAM, "help@shop.example"
            message["Subject"], message["Message-ID"] = "Another question", "<new@c.example>"
            message.set_content("Send the refund to my account")
            raw, reason = bytes(message), "no_token"
        else:  # a made-up token in the right shape
            forged = EmailMessage()
            forged["From"], forged["To"] = SAM, "reply+" + "a" * 24 + "@mail.shop.example"
            forged["Subject"], forged["Message-ID"] = "Re: pole", "<guess@c.example>"
            forged.set_content("Send the refund to my account")
            raw, reason = bytes(forged), "unknown_token"
        status, answer = await post_mail(gateway, raw)
        assert status == 200 and answer["outcome"] == "new_ticket", answer
        assert answer["reason"] == reason and not answer["duplicate"]
        assert answer["conversation_id"] != ticket["conversation_id"]
        assert "Send the refund to my account" not in shopper_texts(
            gateway, ticket["conversation_id"])
        assert shopper_texts(gateway, answer["conversation_id"]) == [
            "Send the refund to my account"]
        state = await cleo.expect(lambda f: f["type"] == "state" and len(f["tickets"]) == 2)
        new = next(t for t in state["tickets"] if t["id"] == answer["ticket_id"])
        assert new["conversation_id"] == answer["conversation_id"]
        # Delivered again, it is still one ticket.
        status, again = await post_mail(gateway, raw)
        assert again["ticket_id"] == answer["ticket_id"] and again["duplicate"]
        assert len(conversations(gateway)) == 2


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"},
    {"Precedence": "bulk"},
    {"Precedence": "junk"},
    {"X_Autoreply": "yes"},
])
async def test_an_automatic_reply_is_ignored(
    mail_gateway: Callable[..., Any], mailbox: Mailbox, headers: dict[str, str],
) -> None:
    async with answered_ticket(mail_gateway, mailbox) as (gateway, _, _client, ticket, mail):
        raw = reply_to(mail, SAM, "I am out of the office until Monday.", **headers)
        status, answer = await post_mail(gateway, raw)
        assert status == 200 and answer["outcome"] == "ignored", answer
        assert "I am out of the office until Monday." not in shopper_texts(
            gateway, ticket["conversation_id"])
        assert len(conversations(gateway)) == 1
        # Auto-Submitted: no is a person's mail.
        raw = reply_to(mail, SAM, "Back now, thanks", Auto_Submitted="no")
        status, answer = await post_mail(gateway, raw)
        assert answer["outcome"] == "appended", answer


async def test_a_bounce_is_ignored_and_marks_the_mail_failed(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with answered_ticket(mail_gateway, mailbox) as (gateway, cleo, _c, _t, mail):
        bounce = EmailMessage()
        bounce["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
        bounce["To"] = "help@shop.example"
        bounce["Subject"] = "Undelivered Mail Returned to Sender"
        bounce.set_content("This is the mail system. The mailbox does not exist.")
        returned = EmailMessage()
        returned["Message-ID"] = str(mail["Message-ID"])
        returned["To"] = SAM
        bounce.add_attachment(returned)
        status, answer = await post_mail(gateway, bytes(bounce))
        assert status == 200 and answer == {"outcome": "ignored", "reason": "bounce"}
        # Earlier state frames (the answer queued, then sent) may still be unread: the
        # one that matters shows the mail failed.
        state = await cleo.expect(lambda f: f["type"] == "state" and bool(f["mail"])
                                  and f["mail"][0]["status"] == "failed")
        assert state["mail"][0]["error"] == "bounced"
        assert len(conversations(gateway)) == 1


async def test_the_endpoint_is_signed_bounded_and_explains_bad_input(
    mail_gateway: Callable[..., Any], scripted_gateway_with: Callable[..., Any],
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SAM, "help@shop.example", "Hi"
    message.set_content("Hello")
    raw = bytes(message)
    async with mail_gateway(inbound_mail_max_bytes=20_000) as gateway:
        status, answer = await post_mail(gateway, raw, secret="another-secret-of-enough-length")
        assert status == 401 and answer["code"] == "bad_signature"
        status, answer = await post_mail(gateway, raw, signature="sha256=nothex")
        assert status == 401 and answer["code"] == "unauthorised"
        assert SIGNATURE_HEADER in answer["detail"]
        big = raw + b"x" * 30_000
        status, answer = await post_mail(gateway, big)
        assert status == 413 and answer["code"] == "too_large"
        status, answer = await post_mail(gateway, b"\x00\x01 not a mail")
        assert status == 400 and answer["code"] == "bad_mail"
        nobody = EmailMessage()
        nobody["To"], nobody["Subject"] = "help@shop.example", "Hi"
        nobody.set_content("Hello")
        status, answer = await post_mail(gateway, bytes(nobody))
        assert status == 400 and "From" in answer["detail"]
        assert len(conversations(gateway)) == 0
        # A tampered body does not match its signature.
        async with aiohttp.ClientSession() as session, session.post(
                f"{gateway.http}/api/v1/inbound-mail", data=raw + b"!",
                headers={SIGNATURE_HEADER: sign_mail(INBOUND_SECRET, raw)}) as response:
            assert response.status == 401
            assert response.content_type == "application/problem+json"


async def test_the_endpoint_is_off_without_a_secret(
    scripted_gateway_with: Callable[..., Any],
) -> None:
    async with scripted_gateway_with() as gateway:
        status, answer = await post_mail(gateway, b"From: a@b.example\r\n\r\nhi\r\n")
        assert status == 404 and "SHOPCHAT_INBOUND_MAIL_SECRET" in answer["detail"]


def test_html_only_replies_are_read_as_text_without_the_quoted_part() -> None:
    message = EmailMessage()
    message["From"], message["To"] = SAM, "reply+" + "b" * 24 + "@mail.shop.example"
    message.set_content("<p>Yes &amp; thanks<br>Sam</p><blockquote>On Monday you wrote: "
                        "old text</blockquote>", subtype="html")
    incoming = read_mail(bytes(message))
    assert incoming.text == "Yes & thanks\nSam"
    assert incoming.token() == "b" * 24


async def test_a_mail_that_opens_a_ticket_announces_it_to_webhooks_with_the_ticket(
    mail_gateway: Callable[..., Any],
) -> None:
    """A mail that opens a ticket queues one ticket.created event for the new
    conversation (written with the ticket, in its transaction), also when the mail is
    delivered twice."""
    async with mail_gateway(webhook_urls=["http://127.0.0.1:9/hooks"],
                            webhook_secret="a-webhook-secret-of-enough-length") as gateway:
        message = EmailMessage()
        message["From"], message["To"] = SAM, "help@shop.example"
        message["Subject"], message["Message-ID"] = "A question", "<first@c.example>"
        message.set_content("Do you ship to Norway?")
        for _ in range(2):
            status, answer = await post_mail(gateway, bytes(message))
            assert status == 200 and answer["outcome"] == "new_ticket", answer
        with sqlite3.connect(gateway.settings.gateway_db) as conn:
            bodies = [json.loads(body) for (body,) in conn.execute(
                "SELECT body FROM webhook_outbox WHERE event = 'ticket.created'")]
        assert [b["data"] for b in bodies] == [{
            "conversation_id": answer["conversation_id"], "handoff_id": None,
            "email": SAM, "message": "Do you ship to Norway?", "channel": "email"}]
