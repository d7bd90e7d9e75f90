"""The catalogs of what the gateway says to shoppers (bot/i18n/): every language has
every English text, with the same placeholders; a text is filled in and falls back to
English for a language there is no catalog for."""

from __future__ import annotations

import re

import pytest

from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog, text
from handoff.protocol import LANGUAGES as WIRE_LANGUAGES


def placeholders(template: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", template))


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE])
def test_every_language_has_every_text_with_the_same_placeholders(lang: str) -> None:
    english, translated = catalog(DEFAULT_LANGUAGE), catalog(lang)
    assert translated.keys() == english.keys()
    for key, template in translated.items():
        assert template.strip() and template != english[key], f"{lang}: {key} untranslated"
        assert placeholders(template) == placeholders(english[key]), f"{lang}: {key}"


def test_the_catalogs_speak_the_languages_the_widget_may_ask_for() -> None:
    assert set(LANGUAGES) == set(WIRE_LANGUAGES)


def test_a_text_is_filled_in_and_falls_back_to_english() -> None:
    assert text("handoff.joined", "fr", agent="Ola") == "Ola a rejoint la conversation."
    assert text("handoff.joined", "xx", agent="Ola") == "Ola joined the chat."
    assert text("handoff.joined", None, agent="Ola") == "Ola joined the chat."
