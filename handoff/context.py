"""The context packet an agent reads when they take a chat.

Built once when the chat is queued, from the gateway's transcript and Rasa's
tracker, so the shopper never has to repeat themselves: every message (bot
and shopper), what the bot understood of each shopper message and how sure it
was, the slots it filled, where the shopper is and what is in their cart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a record type only: building the packet reads nothing
    from handoff.db.conversations import StoredEvent

__all__ = ["build_context", "display_name"]

#: Slots that are the bot's own bookkeeping, not facts about the shopper.
_INTERNAL_SLOTS = frozenset({"human_offered", "requested_slot", "session_started_metadata"})


def display_name(conversation_id: str, slots: Mapping[str, Any]) -> str:
    """What the agent calls the shopper: their first name if the bot knows it."""
    for key in ("customer_name", "first_name"):
        value = slots.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return f"Shopper {conversation_id[:6]}"


def _understood(tracker: Mapping[str, Any] | None) -> dict[int, dict[str, Any]]:
    """Rasa's reading of each shopper message, keyed by the gateway ``seq`` sent as metadata."""
    readings: dict[int, dict[str, Any]] = {}
    for event in (tracker or {}).get("events") or []:
        if not isinstance(event, Mapping) or event.get("event") != "user":
            continue
        seq = (event.get("metadata") or {}).get("seq")
        intent = (event.get("parse_data") or {}).get("intent") or {}
        if isinstance(seq, int) and intent.get("name"):
            readings[seq] = {
                "intent": intent["name"],
                "confidence": round(float(intent.get("confidence") or 0.0), 3),
            }
    return readings


def build_context(
    conversation_id: str,
    events: Iterable[StoredEvent],
    tracker: Mapping[str, Any] | None,
    page: Mapping[str, Any] | None,
    handoff: Mapping[str, Any],
    customer_id: str | None = None,
    lang: str = "en",
) -> dict[str, Any]:
    """The packet, as JSON-ready data. ``tracker`` may be ``None`` if Rasa was unreachable."""
    readings = _understood(tracker)
    transcript: list[dict[str, Any]] = []
    for event in events:
        frame = event.frame
        if frame.get("type") != "message":
            continue
        turn: dict[str, Any] = {
            "seq": event.seq,
            "author": frame.get("author"),
            "text": frame.get("text"),
            "ts": frame.get("ts"),
        }
        if frame.get("author") == "shopper" and event.seq in readings:
            turn.update(readings[event.seq])
        transcript.append(turn)
    raw_slots = (tracker or {}).get("slots") or {}
    slots = {
        name: value
        for name, value in raw_slots.items()
        if value not in (None, "", [], {}) and name not in _INTERNAL_SLOTS
    }
    verified = customer_id or slots.get("customer_id")
    page = dict(page or {})
    return {
        "reason": handoff.get("reason"),
        "trigger": handoff.get("trigger"),
        "shopper": {
            "name": display_name(conversation_id, slots),
            "customer_id": verified,
            "verified": bool(verified),
            "email": slots.get("email"),
        },
        #: The language the shopper's widget speaks.
        "lang": lang,
        "order_id": slots.get("order_id"),
        "page": {k: page[k] for k in ("url", "type", "title") if k in page},
        "sku": page.get("sku"),
        "cart": page.get("cart"),
        "slots": slots,
        "transcript": transcript,
        "intents_available": tracker is not None,
    }
