"""Gateways with mail on (a real local SMTP server, tests/mailbox.py), and shoppers who
leave offline messages, for the email channel's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect

from handoff.inbound_mail import SIGNATURE_HEADER, sign_mail
from tests.conftest import ChatClient, Gateway
from tests.mailbox import Mailbox

#: The inbound endpoint's shared secret in these tests.
INBOUND_SECRET = "inbound-secret-for-tests-only-0123456789"
MAIL_FROM = "Trailhead support <help@shop.example>"
REPLY_TO = "reply@mail.shop.example"


def mail_settings(port: int, **overrides: Any) -> dict[str, Any]:
    """Settings with mail on, through the SMTP server on ``port`` (plain, on loopback)."""
    return {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False,
            "mail_from": MAIL_FROM, "mail_reply_to": REPLY_TO, "mail_retry_base": 0.2,
            "inbound_mail_secret": SecretStr(INBOUND_SECRET), "presence_grace": 0.2,
            **overrides}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A running SMTP server that keeps what it is sent."""
    with Mailbox() as box:
        yield box


@pytest.fixture
def mail_gateway(scripted_gateway_with: Callable[..., Any], mailbox: Mailbox
                 ) -> Callable[..., Any]:
    """A fast-tier gateway (scripted assistant) that mails through ``mailbox``:
    ``async with mail_gateway(**overrides) as gateway``."""
    return lambda **overrides: scripted_gateway_with(**mail_settings(mailbox.port,
                                                                     **overrides))


@asynccontextmanager
async def shopper(gateway: Gateway) -> AsyncIterator[ChatClient]:
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        await client.hello()
        yield client


async def leave_message(client: ChatClient, email: str, text: str) -> None:
    """Ask for a person with nobody online, and leave a message for the team."""
    await client.say("I want to talk to a real person please")
    await client.recv_until(lambda f: f["type"] == "offline_form")
    await client.send({"type": "offline_message", "client_id": "off-1", "email": email,
                       "text": text})
    await client.recv_until(lambda f: f["type"] == "ack")


async def post_mail(gateway: Gateway, raw: bytes, *, secret: str = INBOUND_SECRET,
                    signature: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST a raw message to the inbound endpoint, signed; its status and JSON answer."""
    headers = {SIGNATURE_HEADER: signature or sign_mail(secret, raw),
               "Content-Type": "message/rfc822"}
    async with aiohttp.ClientSession() as session, session.post(
            f"{gateway.http}/api/v1/inbound-mail", data=raw, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def reply_to(mail: EmailMessage, sender: str, text: str, **headers: str) -> bytes:
    """A shopper's reply to ``mail`` as their mail client sends it: to its Reply-To,
    threaded, with the original quoted and a signature."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = str(mail["Reply-To"])
    reply["Subject"] = "Re: " + str(mail["Subject"])
    reply["Message-ID"] = f"<reply-{abs(hash(text))}@client.example>"
    reply["In-Reply-To"] = str(mail["Message-ID"])
    reply["References"] = str(mail["Message-ID"])
    for name, value in headers.items():
        reply[name.replace("_", "-")] = value
    original = mail.get_body(preferencelist=("plain",))
    assert original is not None
    quoted = "\n".join("> " + line for line in original.get_content().splitlines())
    reply.set_content(f"{text}\n\n--\nSam Rivera\nSent from my phone\n\n"
                      f"On Mon, 7 Dec 2026 at 10:00, {mail['From']} wrote:\n{quoted}\n")
    return bytes(reply)
