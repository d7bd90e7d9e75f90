"""The email channel's pure parts, called directly: the desk's decision on an answer by
mail, the agent frame that asks for it, and how a received message is read."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest

from handoff import decisions
from handoff.agent_protocol import TicketReply, parse_agent_frame
from handoff.db.agents import Agent
from handoff.exceptions import ProtocolError
from handoff.handoff_states import Ticket
from handoff.inbound_mail import read_mail
from handoff.mail import new_reply_token, reply_address

ANNA = Agent("a1", "anna@shop.example", "Anna", "agent", 2)
TICKET = Ticket(7, "c" * 32, 3, "sam@example.org", "My pole broke", "open", 0.0)


def test_any_agent_may_answer_an_open_ticket_once_per_client_id() -> None:
    answer = decisions.answer_ticket(ANNA, TICKET, "r1", "On its way", mail_on=True)
    assert answer.frames == [{"type": "message", "author": "agent", "agent": {"name": "Anna"},
                              "text": "On its way", "via": "email"}]
    assert answer.client_id == "agent:a1:r1" and answer.ticket is TICKET


@pytest.mark.parametrize(("ticket", "mail_on", "code"), [
    (TICKET, False, "mail_off"),
    (None, True, "unknown_ticket"),
    (Ticket(7, "c" * 32, 3, "sam@example.org", "x", "done", 0.0), True, "unknown_ticket"),
])
def test_an_answer_by_mail_is_refused(ticket: Ticket | None, mail_on: bool, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        decisions.answer_ticket(ANNA, ticket, "r1", "Hi", mail_on=mail_on)
    assert refused.value.code == code and refused.value.client_id == "r1"


def test_a_conversation_with_an_open_ticket_may_be_opened_by_any_agent() -> None:
    assert not decisions.may_view(ANNA, None)
    assert decisions.may_view(ANNA, None, open_ticket=True)


def test_the_ticket_reply_frame_is_validated_like_the_others() -> None:
    frame = parse_agent_frame(json.dumps({"type": "ticket_reply", "ticket_id": 7,
                                          "client_id": "r1", "text": "Hi"}))
    assert isinstance(frame, TicketReply) and frame.ticket_id == 7
    for bad, code in [({"ticket_id": 0}, "bad_frame"), ({"client_id": "no spaces"}, "bad_frame"),
                      ({"text": "x" * 5000}, "text_too_long"), ({"text": "  "}, "empty_text"),
                      ({"ticket_id": "7; DROP"}, "bad_frame")]:
        raw = {"type": "ticket_reply", "ticket_id": 7, "client_id": "r1", "text": "Hi", **bad}
        with pytest.raises(ProtocolError) as refused:
            parse_agent_frame(json.dumps(raw))
        assert refused.value.code == code, bad


def test_reply_tokens_are_unguessable_and_survive_lower_casing() -> None:
    tokens = {new_reply_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 24 and t == t.lower() for t in tokens)
    assert reply_address("Shop <reply@mail.shop.example>", "abc") == "reply+abc@mail.shop.example"


def test_a_delivery_report_is_a_bounce_naming_the_mail_it_returns() -> None:
    report = EmailMessage()
    report["From"] = "mailer@mx.example.org"
    report["To"] = "help@shop.example"
    report.set_content("Delivery failed")
    returned = EmailMessage()
    returned["Message-ID"] = "<abc@shop.example>"
    report.add_attachment(returned)
    report.replace_header("Content-Type", report["Content-Type"].replace(
        "multipart/mixed", "multipart/report"))
    incoming = read_mail(bytes(report))
    assert incoming.ignored == "bounce" and incoming.bounced == "<abc@shop.example>"
    assert incoming.text == ""


def test_a_list_mail_and_our_own_headers_are_read() -> None:
    message = EmailMessage()
    message["From"] = "Sam <sam@example.org>"
    message["Delivered-To"] = "reply+" + "c" * 24 + "@mail.shop.example"
    message["To"] = "someone@else.example"
    message["Message-ID"] = "<m1@client.example>"
    message["In-Reply-To"] = "<a@shop.example>"
    message["References"] = "<z@shop.example> <a@shop.example>"
    message.set_content("Hello")
    incoming = read_mail(bytes(message))
    assert incoming.sender == "sam@example.org" and incoming.token() == "c" * 24
    assert incoming.answers == ["<a@shop.example>", "<z@shop.example>", "<a@shop.example>"]
    assert incoming.message_id == "<m1@client.example>" and incoming.ignored is None
    message["List-Id"] = "<news.example.org>"
    assert read_mail(bytes(message)).ignored == "mailing-list mail (List-Id)"
