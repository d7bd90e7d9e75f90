"""The custom payloads actions send beside their messages, read where they arrive, and the
button payloads the bot (its actions, and the gateway's order updates) offers shoppers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["custom_body", "intent_payload"]


def custom_body(custom: object, key: str) -> Mapping[str, Any] | None:
    """The object under ``key`` in a message's custom payload, or None if there is none.

    The payload comes over the wire (Rasa's REST replies), so anything that is not
    an object holding an object under ``key`` is nothing.
    """
    if not isinstance(custom, Mapping):
        return None
    body = custom.get(key)
    return body if isinstance(body, Mapping) else None


def intent_payload(intent: str, **entities: str) -> str:
    """A button payload Rasa reads as ``intent`` with ``entities`` (the gateway only
    forwards payloads the bot offered, so these cannot be forged by a client)."""
    if not entities:
        return f"/{intent}"
    return f"/{intent}" + json.dumps(entities, separators=(",", ":"))
