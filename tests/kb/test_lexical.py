"""The FTS5 half of the index: query building and incremental builds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.kb.articles import load_articles
from bot.kb.lexical import FILENAME, LexicalIndex, build_lexical, fts_query
from tests.kb.conftest import write_article


def test_shopper_text_is_never_read_as_fts5_syntax(tmp_path: Path) -> None:
    write_article(tmp_path / "kb", "payments", "Payment methods",
                  "We accept iDEAL, Bancontact and Klarna.")
    target = tmp_path / FILENAME
    build_lexical(target, load_articles(tmp_path / "kb"), [], None)
    index = LexicalIndex(target)
    for text in ['"unbalanced', "NEAR(ideal klarna)", "ideal AND NOT klarna", "klarna*",
                 "col:ideal", "^ideal", "(((", "ideal OR"]:
        try:
            index.scores(text)
        except sqlite3.Error as error:
            pytest.fail(f"{text!r}: {error}")
    assert set(index.scores("do you take IDEAL?")) == {"payments"}


@pytest.mark.parametrize("text", ["", "   ", "?!", "is it the"])
def test_text_without_a_searchable_word_gives_no_query(text: str) -> None:
    assert fts_query(text) is None


def test_accents_and_case_do_not_matter(tmp_path: Path) -> None:
    write_article(tmp_path / "kb", "care", "Care", "Use a crème wax on the leather.")
    target = tmp_path / FILENAME
    build_lexical(target, load_articles(tmp_path / "kb"), [], None)
    assert set(LexicalIndex(target).scores("CREME wax")) == {"care"}


def test_an_incremental_build_rewrites_only_what_it_is_told_changed(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    write_article(kb, "stores", "Our stores", "Amsterdam, Overtoom 120.")
    write_article(kb, "repairs", "Repairs", "Our workshop in Utrecht fixes zips.")
    first, second = tmp_path / "v1", tmp_path / "v2"
    first.mkdir()
    second.mkdir()
    build_lexical(first / FILENAME, load_articles(kb), [], None)

    write_article(kb, "repairs", "Repairs", "Our workshop in Rotterdam fixes zips.")
    write_article(kb, "gift-cards", "Gift cards", "From €10 to €500.")
    (kb / "stores.md").unlink()
    # "gift-cards" is new, so it is inserted even though only "repairs" is named.
    build_lexical(second / FILENAME, load_articles(kb), ["repairs"], first)
    index = LexicalIndex(second / FILENAME)
    assert index.scores("overtoom") == {}
    assert index.scores("utrecht") == {}
    assert set(index.scores("rotterdam")) == {"repairs"}
    assert set(index.scores("gift")) == {"gift-cards"}
    # The previous version's file is left as it was, for readers still holding it.
    assert set(LexicalIndex(first / FILENAME).scores("utrecht")) == {"repairs"}
