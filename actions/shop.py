"""The shop store the action server uses, and small pieces the shop actions share."""

from __future__ import annotations

import json
import threading
from typing import Any

from rasa_sdk import Tracker

from bot.payload import intent_payload
from bot.settings import Settings
from bot.store.base import ShopStore

__all__ = [
    "HUMAN_BUTTON",
    "intent_payload",
    "payload_value",
    "settings",
    "shop",
    "use_shop",
]

HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/human_handoff"}

_lock = threading.Lock()
_settings: Settings | None = None
_store: ShopStore | None = None


def settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = Settings()
        return _settings


def shop() -> ShopStore:
    """The process's store, opened on first use (SQLite file or the shop's API)."""
    global _store
    from bot.store.factory import open_store

    current = settings()
    with _lock:
        if _store is None:
            _store = open_store(current)
        return _store


def use_shop(store: ShopStore, new_settings: Settings | None = None) -> None:
    """Tests: run the actions against ``store`` (and ``new_settings``)."""
    global _store, _settings
    with _lock:
        _store = store
        if new_settings is not None:
            _settings = new_settings


def payload_value(value: Any, key: str) -> str | None:
    """A slot filled from a button's raw payload text holds ``/intent{...}``: take ``key``."""
    if not isinstance(value, str):
        return None if value is None else str(value)
    text = value.strip()
    if text.startswith("/") and "{" in text:
        try:
            data = json.loads(text[text.index("{"):])
        except ValueError:
            return None
        found = data.get(key) if isinstance(data, dict) else None
        return str(found) if found is not None else None
    return text


def latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def page_metadata(tracker: Tracker) -> dict[str, Any]:
    metadata = tracker.latest_message.get("metadata") or {}
    page = metadata.get("page") if isinstance(metadata, dict) else None
    return page if isinstance(page, dict) else {}
