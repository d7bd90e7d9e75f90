"""What the gateway and the bot say to shoppers, in every language the widget speaks: one
catalog per language (``bot/i18n/<lang>.yml``), the same keys in each.

Today the gateway's own messages (the handoff, the queue, the message form, ratings, a
missed backlog, a mailed transcript) come from here; the bot's responses and the texts
the actions compose are still English and move here next. ``tests/bot/test_i18n.py``
fails when a key or a placeholder is missing in any language. A text is looked up in the
conversation's language and, failing that, in English.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "catalog", "text"]

#: The languages the widget and these catalogs speak; widget/i18n/ has the widget's own.
LANGUAGES = ("en", "de", "fr", "es")
DEFAULT_LANGUAGE = "en"
_DIR = Path(__file__).parent


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """Every text of one language, by key (read once)."""
    loaded: Any = YAML(typ="safe").load((_DIR / f"{lang}.yml").read_text(encoding="utf-8"))
    return {str(key): str(value) for key, value in loaded.items()}


def text(key: str, lang: str | None, **values: object) -> str:
    """The text ``key`` in ``lang`` (English if the language or the key is missing there),
    with its ``{placeholders}`` filled from ``values``."""
    chosen = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    template = catalog(chosen).get(key) or catalog(DEFAULT_LANGUAGE)[key]
    return template.format(**values)
