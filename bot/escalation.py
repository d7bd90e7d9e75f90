"""When the bot gives up and hands a conversation to a person.

Pure functions over tracker events (as rasa-sdk passes them: plain dicts), and
the handoff payload that the handoff action emits and the gateway recognises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.intents import FALLBACK_INTENT
from bot.payload import custom_body

__all__ = [
    "HANDOFF_KEY",
    "MISS_INTENTS",
    "STRIKES_BEFORE_OFFER",
    "consecutive_misses",
    "handoff_payload",
    "parse_handoff",
]

#: Intents that count as "the bot could not help with this message".
MISS_INTENTS = frozenset({FALLBACK_INTENT, "out_of_scope"})

#: On this many misses in a row the bot offers a person.
STRIKES_BEFORE_OFFER = 2

#: Key of the custom JSON message that asks the gateway to queue the chat.
HANDOFF_KEY = "handoff"


def consecutive_misses(events: Iterable[Mapping[str, Any]]) -> int:
    """Count the shopper's most recent messages in a row the bot could not handle.

    Only user events are looked at; bot utterances and slot events between them
    do not break a streak. A new session ends it.
    """
    misses = 0
    for event in reversed(list(events)):
        kind = event.get("event")
        if kind == "session_started":
            break
        if kind != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in MISS_INTENTS:
            break
        misses += 1
    return misses


def handoff_payload(reason: str, trigger: str) -> dict[str, Any]:
    """The custom message body that tells the gateway to hand the chat to a person.

    ``trigger`` is machine-readable (``requested``, ``fallback``, ``complaint``);
    ``reason`` is the one line an agent reads.
    """
    return {HANDOFF_KEY: {"reason": reason, "trigger": trigger}}


def parse_handoff(custom: object) -> dict[str, str] | None:
    """Return the handoff request inside a bot message's custom payload, if any."""
    body = custom_body(custom, HANDOFF_KEY)
    if body is None:
        return None
    reason = body.get("reason")
    trigger = body.get("trigger")
    return {
        "reason": reason if isinstance(reason, str) else "shopper asked for a person",
        "trigger": trigger if isinstance(trigger, str) else "requested",
    }
