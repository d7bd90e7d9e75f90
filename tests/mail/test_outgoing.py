"""Outgoing mail: an agent answers an offline message in the console, the answer is
stored in the conversation and arrives at a real SMTP server (aiosmtpd) with the
headers a mail client threads and answers by; with the SMTP server down, mail waits in
the queue (shown to agents as pending) and is delivered once when it is back."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.settings import Settings
from handoff.db.conversations import ConversationStore
from handoff.mail import Mailer, compose
from tests.conftest import Gateway, add_agent, agent_console
from tests.mail.conftest import MAIL_FROM, leave_message, mail_settings, shopper
from tests.mailbox import Mailbox

XSS = "<b>bold</b> & <script>alert(1)</script>"


async def _ticket(agent: Any) -> dict[str, Any]:
    state = await agent.expect(lambda f: f["type"] == "state" and f["tickets"])
    ticket: dict[str, Any] = state["tickets"][0]
    return ticket


@asynccontextmanager
async def cleo_with_a_ticket(gateway: Gateway, message: str
                             ) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """Agent Cleo signed in to the console, with the ticket sam@example.org left."""
    add_agent(gateway.settings, "cleo@shop.example", "Cleo")
    async with shopper(gateway) as client:
        await leave_message(client, "sam@example.org", message)
    async with agent_console(gateway.http, "cleo@shop.example") as cleo:
        yield cleo, await _ticket(cleo)


async def test_an_answer_from_the_console_arrives_by_smtp_with_the_right_headers(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway() as gateway:
        add_agent(gateway.settings, "cleo@shop.example", "Cleo")
        async with shopper(gateway) as client:
            await leave_message(client, "sam@example.org", "My tent pole broke. " + XSS)
            async with agent_console(gateway.http, "cleo@shop.example") as cleo:
                ticket = await _ticket(cleo)
                for _ in range(2):  # a resent answer is stored and mailed once
                    await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r-1",
                                  text="Sorry about that! A new pole is on its way. " + XSS)
                    ack = await cleo.expect(lambda f: f["type"] == "ack")
                assert ack["conversation_id"] == ticket["conversation_id"] and ack["duplicate"]

                # The answer is in the conversation: seq'd, live for the shopper too.
                frames = await client.recv_until(
                    lambda f: f["type"] == "message" and f["author"] == "agent")
                assert frames[-1]["via"] == "email" and frames[-1]["seq"] == ack["seq"]

        [mail] = await mailbox.wait_for(1)
        await asyncio.sleep(0.5)
        assert len(mailbox.messages) == 1, "the resent answer was mailed twice"
        [(recipients, _)] = mailbox.received
        assert recipients == ["sam@example.org"]
        assert mail["To"] == "sam@example.org"
        assert mail["From"].addresses[0].addr_spec == "help@shop.example"
        assert "Cleo" in mail["From"].addresses[0].display_name
        reply_to = mail["Reply-To"].addresses[0].addr_spec
        assert re.fullmatch(r"reply\+[a-z2-7]{24}@mail\.shop\.example", reply_to), reply_to
        assert re.fullmatch(r"<[0-9a-f]{32}@shop\.example>", mail["Message-ID"])
        assert mail["Subject"].startswith("Re: My tent pole broke.")
        assert mail["Date"] and "List-Unsubscribe" not in mail  # a person's answer, not bulk
        assert mail.get_content_type() == "multipart/alternative"
        text = mail.get_body(preferencelist=("plain",)).get_content()
        markup = mail.get_body(preferencelist=("html",)).get_content()
        assert "A new pole is on its way. " + XSS in text
        assert "> My tent pole broke." in text  # the shopper's message, quoted
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup and "<script>" not in markup
        assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in markup


async def test_each_ticket_has_its_own_reply_token_and_the_thread_keeps_it(
    mail_gateway: Callable[..., Any], mailbox: Mailbox,
) -> None:
    async with mail_gateway() as gateway:
        add_agent(gateway.settings, "cleo@shop.example", "Cleo")
        for email in ("sam@example.org", "kim@example.org"):
            async with shopper(gateway) as client:
                await leave_message(client, email, f"A question from {email}")
        async with agent_console(gateway.http, "cleo@shop.example") as cleo:
            state = await cleo.expect(lambda f: f["type"] == "state" and len(f["tickets"]) == 2)
            sam, kim = state["tickets"]
            for n, ticket in enumerate((sam, kim, sam)):
                await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id=f"r{n}",
                              text=f"Answer {n}")
                await cleo.expect(lambda f: f["type"] == "ack")
        first, other, second = await mailbox.wait_for(3)
    assert first["To"] == second["To"] == "sam@example.org"
    assert first["Reply-To"] == second["Reply-To"] != other["Reply-To"]
    assert second["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in second["References"]
    assert first["Subject"] == second["Subject"]


async def test_answering_by_mail_is_refused_when_mail_is_off(
    scripted_gateway_with: Callable[..., Any],
) -> None:
    # No SMTP server set.
    async with scripted_gateway_with(presence_grace=0.2) as gateway, \
            cleo_with_a_ticket(gateway, "Hello?") as (cleo, ticket):
        await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r1", text="Hi")
        error = await cleo.expect(lambda f: f["type"] == "error")
        assert error["code"] == "mail_off" and "SHOPCHAT_SMTP_HOST" in error["reason"]


async def test_answering_by_mail_is_refused_when_the_ticket_is_done_or_the_text_empty(
    mail_gateway: Callable[..., Any],
) -> None:
    async with mail_gateway() as gateway, \
            cleo_with_a_ticket(gateway, "Hello?") as (cleo, ticket):
        await cleo.do("ticket_done", ticket_id=ticket["id"])
        await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r1", text="Hi")
        error = await cleo.expect(lambda f: f["type"] == "error")
        assert error["code"] == "unknown_ticket"
        await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r2", text=" ")
        error = await cleo.expect(lambda f: f["type"] == "error")
        assert error["code"] == "empty_text"


async def test_with_smtp_down_mail_waits_shows_as_pending_and_is_delivered_once_later(
    scripted_gateway_with: Callable[..., Any],
) -> None:
    down = Mailbox()  # its port is chosen, nothing listens on it yet
    async with scripted_gateway_with(**mail_settings(down.port)) as gateway:
        add_agent(gateway.settings, "cleo@shop.example", "Cleo")
        for n in range(3):
            async with shopper(gateway) as client:
                await leave_message(client, f"shopper{n}@example.org", f"Question {n}")
        async with agent_console(gateway.http, "cleo@shop.example") as cleo:
            state = await cleo.expect(lambda f: f["type"] == "state" and len(f["tickets"]) == 3)
            for ticket in state["tickets"]:
                await cleo.do("ticket_reply", ticket_id=ticket["id"],
                              client_id=f"r{ticket['id']}", text=f"Answer to {ticket['id']}")
                await cleo.expect(lambda f: f["type"] == "ack")
            # The console shows them waiting, with the attempts and the last error.
            state = await cleo.expect(lambda f: f["type"] == "state" and len(f["mail"]) == 3
                                      and all(m["attempts"] >= 1 for m in f["mail"]))
            assert {m["status"] for m in state["mail"]} == {"pending"}
            assert all("Connect" in (m["error"] or "") or "refused" in (m["error"] or "")
                       for m in state["mail"]), state["mail"]
            assert {m["to"] for m in state["mail"]} == {f"shopper{n}@example.org"
                                                         for n in range(3)}
            down.start()  # the SMTP server is back
            try:
                mails = await down.wait_for(3, timeout=30)
                await cleo.expect(lambda f: f["type"] == "state" and not f["mail"], timeout=30)
                await asyncio.sleep(1.0)  # nothing more comes
                assert len(down.messages) == 3
            finally:
                down.stop()
    assert sorted(str(m["To"]) for m in mails) == [f"shopper{n}@example.org" for n in range(3)]
    assert len({m["Message-ID"] for m in mails}) == 3
    with sqlite3.connect(gateway.settings.gateway_db) as conn:
        rows = conn.execute("SELECT attempts >= 2, delivered_at IS NOT NULL, failed_at "
                            "FROM mail_outbox").fetchall()
    assert rows == [(1, 1, None)] * 3


async def test_a_mail_is_given_up_after_its_attempts_and_shown_as_failed(
    scripted_gateway_with: Callable[..., Any],
) -> None:
    down = Mailbox()
    async with scripted_gateway_with(**mail_settings(down.port, mail_max_attempts=2,
                                                     mail_retry_base=0.1)) as gateway, \
            cleo_with_a_ticket(gateway, "Question") as (cleo, ticket):
        await cleo.do("ticket_reply", ticket_id=ticket["id"], client_id="r", text="Hi")
        state = await cleo.expect(
            lambda f: f["type"] == "state" and [m["status"] for m in f["mail"]]
            == ["failed"])
        assert state["mail"][0]["attempts"] == 2


def test_list_unsubscribe_only_when_asked_for_and_one_click_for_https() -> None:
    plain = compose(sender="Shop <help@shop.example>", to="sam@example.org", subject="Hi",
                    paragraphs=["Hello"], now=0)
    assert "List-Unsubscribe" not in plain.message
    bulk = compose(sender="Shop <help@shop.example>", to="sam@example.org", subject="Hi",
                   paragraphs=["Your order shipped"], now=0, automatic=True,
                   unsubscribe="https://shop.example/unsubscribe?t=abc")
    assert bulk.message["List-Unsubscribe"] == "<https://shop.example/unsubscribe?t=abc>"
    assert bulk.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert bulk.message["Auto-Submitted"] == "auto-generated"


async def test_senders_of_two_gateway_processes_send_each_mail_once(
    tmp_path: Path, mailbox: Mailbox,
) -> None:
    settings = Settings(var_dir=tmp_path / "var", **mail_settings(mailbox.port))
    first, second = ConversationStore(settings.gateway_db), ConversationStore(settings.gateway_db)
    try:
        for n in range(6):
            composed = compose(sender=MAIL_FROM, to=f"shopper{n}@example.org", subject="Hi",
                               paragraphs=[f"Mail {n}"], now=0)
            first.db.execute(*composed.row("ticket_reply", None, None))
        mailers = [Mailer(first, settings), Mailer(second, settings)]
        await asyncio.gather(*(mailer.deliver_due() for mailer in mailers))
        await asyncio.sleep(0.3)
        assert sorted(str(m["To"]) for m in mailbox.messages) == [
            f"shopper{n}@example.org" for n in range(6)]
        assert first.db.execute("SELECT count(*) FROM mail_outbox WHERE delivered_at IS NULL"
                                ).fetchone() == (0,)
    finally:
        first.close()
        second.close()
