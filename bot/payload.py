"""The custom payloads actions send beside their messages, read where they arrive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["custom_body"]


def custom_body(custom: object, key: str) -> Mapping[str, Any] | None:
    """The object under ``key`` in a message's custom payload, or None if there is none.

    The payload comes over the wire (Rasa's REST replies), so anything that is not
    an object holding an object under ``key`` is nothing.
    """
    if not isinstance(custom, Mapping):
        return None
    body = custom.get(key)
    return body if isinstance(body, Mapping) else None
