"""FAQ answers end to end: websocket → gateway → Rasa → action server → knowledge base."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from shopchat.stack import StackHandle
from tests.conftest import is_bot_message

pytestmark = pytest.mark.stack


def bot_messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if is_bot_message(f)]


async def test_a_faq_question_is_answered_from_the_article_and_feedback_is_stored(
    chat: Any, stack: StackHandle,
) -> None:
    async with chat() as client:
        await client.hello()
        frames = await client.turn("how long does it take to get a refund?")
        (answer,) = bot_messages(frames)
        assert "We refund within 3 working days" in answer["text"]
        # The article travels as a card beside the answer, not as a URL glued to its end.
        assert answer["card"] == {"title": "Refunds",
                                     "url": "https://trailhead.example/help/refunds"}
        assert "https://" not in answer["text"]
        helped = next(b for b in answer["buttons"] if "helped" in b["title"])
        frames = await client.turn(helped["title"], payload=helped["payload"])
        assert "glad that helped" in bot_messages(frames)[0]["text"]
    with sqlite3.connect(stack.settings.kb_log_db) as conn:
        answers = conn.execute(
            "SELECT outcome, article_id FROM kb_answers WHERE conversation_id = ?",
            [client.conversation_id]).fetchall()
        feedback = conn.execute(
            "SELECT article_id, helpful FROM kb_feedback WHERE conversation_id = ?",
            [client.conversation_id]).fetchall()
    assert answers == [("answer", "refunds")] and feedback == [("refunds", 1)]


async def test_an_unhelpful_answer_offers_a_person(chat: Any) -> None:
    async with chat() as client:
        await client.hello()
        (answer,) = bot_messages(await client.turn("do you ship to canada?"))
        assert "United States and Canada" in answer["text"]
        no = next(b for b in answer["buttons"] if "Not really" in b["title"])
        (reply,) = bot_messages(await client.turn(no["title"], payload=no["payload"]))
        assert any(b["payload"] == "/human_handoff" for b in reply["buttons"])


async def test_a_question_the_kb_cannot_answer_is_said_honestly(chat: Any) -> None:
    async with chat() as client:
        await client.hello()
        frames = await client.turn("do you sell canoe paddles for left handed people?")
        texts = " ".join(f["text"] for f in bot_messages(frames))
        # The NLU may read it as an FAQ (the KB finds no article), a product question (the
        # catalogue has no such product) or nothing: never a made-up answer, never a dead end.
        assert "We refund" not in texts and "€4.95" not in texts
        buttons = [b for f in bot_messages(frames) for b in f.get("buttons", [])]
        assert any(b["payload"] == "/human_handoff" for b in buttons) or \
            "outside what I can help with" in texts or "rephrase" in texts
