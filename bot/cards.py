"""The card beside a bot answer: the page it comes from (a help article, a product).

An action answers with text and, beside it, this custom payload; the gateway
folds it into that message frame as ``card: {"title", "url"}`` so the widget
can show a card (the title, the answer, a "Read more" link) instead of a block
of text ending in a bare URL. Shared by the action server (which builds it) and
the gateway (which trusts only what parses here).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bot.payload import custom_body

__all__ = ["CARD_KEY", "card_payload", "parse_card"]

#: Key of the custom JSON message that carries the card.
CARD_KEY = "card"

MAX_TITLE = 200
MAX_URL = 2000


def card_payload(title: str, url: str | None) -> dict[str, Any]:
    """The custom message body for the page an answer comes from."""
    return {CARD_KEY: {"title": title, "url": url}}


def parse_card(custom: object) -> dict[str, Any] | None:
    """``{"title", "url"}`` from a custom payload, or None if it is not a valid card.

    The URL is kept only when it is an absolute http(s) link, so nothing else
    (``javascript:``, relative paths) ever becomes a link in a shopper's page.
    """
    card = custom_body(custom, CARD_KEY)
    if card is None:
        return None
    title = card.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    url = card.get("url")
    if not (isinstance(url, str) and len(url) <= MAX_URL and _is_web_link(url)):
        url = None
    return {"title": title.strip()[:MAX_TITLE], "url": url}


def _is_web_link(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
