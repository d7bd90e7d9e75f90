"""Counting misses and reading handoff payloads."""

from __future__ import annotations

from typing import Any

from bot.escalation import consecutive_misses, handoff_payload, parse_handoff


def user(intent: str) -> dict[str, Any]:
    return {"event": "user", "parse_data": {"intent": {"name": intent, "confidence": 0.5}}}


BOT = {"event": "bot", "text": "..."}


def test_no_events_no_misses() -> None:
    assert consecutive_misses([]) == 0


def test_counts_fallbacks_and_out_of_scope_in_a_row() -> None:
    events = [user("greet"), BOT, user("nlu_fallback"), BOT, user("out_of_scope")]
    assert consecutive_misses(events) == 2


def test_an_understood_message_ends_the_streak() -> None:
    events = [user("nlu_fallback"), BOT, user("faq"), BOT, user("nlu_fallback")]
    assert consecutive_misses(events) == 1


def test_a_new_session_ends_the_streak() -> None:
    events = [user("nlu_fallback"), {"event": "session_started"}, user("nlu_fallback")]
    assert consecutive_misses(events) == 1


def test_handoff_payload_round_trips() -> None:
    payload = handoff_payload("shopper complained", "complaint")
    assert parse_handoff(payload) == {"reason": "shopper complained", "trigger": "complaint"}


def test_other_custom_payloads_are_not_handoffs() -> None:
    assert parse_handoff({"carousel": []}) is None
    assert parse_handoff("handoff") is None
    assert parse_handoff({"handoff": "yes"}) is None
