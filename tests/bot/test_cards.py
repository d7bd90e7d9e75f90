"""The card an action attaches to its answer, and what the gateway makes of it."""

from __future__ import annotations

import pytest

from bot.cards import card_payload, parse_card
from bot.escalation import handoff_payload
from handoff.rasa_bridge import replies_to_frames


def test_card_payload_round_trips() -> None:
    payload = card_payload("Refunds", "https://shop.example/help/refunds")
    assert parse_card(payload) == {"title": "Refunds",
                                      "url": "https://shop.example/help/refunds"}


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/help/refunds", "https://", 42,
                                 "data:text/html,hi", "https://x.example/" + "a" * 3000])
def test_only_absolute_web_links_are_kept(url: object) -> None:
    assert parse_card({"card": {"title": "Refunds", "url": url}}) == {
        "title": "Refunds", "url": None}


@pytest.mark.parametrize("custom", [None, "card", {"card": "Refunds"},
                                    {"card": {"url": "https://x.example"}},
                                    {"card": {"title": "  "}}, handoff_payload("r", "t")])
def test_anything_else_is_not_a_card(custom: object) -> None:
    assert parse_card(custom) is None


def test_the_card_joins_the_answer_it_follows() -> None:
    # Rasa's REST channel sends an action's text and its custom payload as two replies.
    replies = [
        {"recipient_id": "c", "text": "We refund within 3 working days.",
         "buttons": [{"title": "Yes, that helped", "payload": "/faq"}]},
        {"recipient_id": "c", "custom": card_payload("Refunds", "https://x.example/r")},
    ]
    (frame,) = replies_to_frames(replies, reply_to=4)
    assert frame == {"type": "message", "author": "bot", "reply_to": 4,
                     "text": "We refund within 3 working days.",
                     "buttons": [{"title": "Yes, that helped", "payload": "/faq"}],
                     "card": {"title": "Refunds", "url": "https://x.example/r"}}


def test_a_card_in_the_same_reply_as_its_text_is_kept_too() -> None:
    replies = [{"text": "Answer.", "custom": card_payload("Shipping", None)}]
    (frame,) = replies_to_frames(replies, reply_to=1)
    assert frame["card"] == {"title": "Shipping", "url": None}


def test_a_card_with_no_message_before_it_is_dropped() -> None:
    replies = [{"custom": card_payload("Refunds", "https://x.example/r")},
               {"custom": handoff_payload("asked", "requested")}]
    assert [f["type"] for f in replies_to_frames(replies, reply_to=1)] == ["handoff"]
