"""How dense and lexical scores combine: a bounded bonus on the cosine scale."""

from __future__ import annotations

from bot.kb.fusion import Fusion, fuse

F = Fusion(weight=0.2, cap=8.0)


def test_words_in_common_lift_an_article_past_a_slightly_closer_meaning() -> None:
    scores = fuse({"exchanges": 0.58, "sizing": 0.60}, {"exchanges": 8.0}, F)
    assert max(scores, key=lambda a: scores[a]) == "exchanges"
    assert scores["sizing"] == 0.60


def test_the_lexical_bonus_never_exceeds_its_weight() -> None:
    scores = fuse({"a": 0.30}, {"a": 1_000.0}, F)
    assert abs(scores["a"] - 0.50) < 1e-9


def test_an_article_found_only_by_its_words_gets_only_the_bonus() -> None:
    assert fuse({}, {"stove-recall": 4.0}, F) == {"stove-recall": 0.1}


def test_no_words_in_common_leaves_the_cosine_as_it_was() -> None:
    assert fuse({"a": 0.7, "b": 0.4}, {}, F) == {"a": 0.7, "b": 0.4}
