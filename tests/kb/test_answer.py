"""When the bot answers, asks which article, or admits it has none."""

from __future__ import annotations

from bot.kb.answer import Thresholds, decide
from bot.kb.index import Match

T = Thresholds(answer=0.45, margin=0.05, fallback=0.55)


def m(article_id: str, score: float) -> Match:
    return Match(article_id, article_id.title(), None, "body", score)


def test_a_clear_winner_is_answered() -> None:
    decision = decide([m("refunds", 0.80), m("returns", 0.60)], T)
    assert decision.kind == "answer" and decision.best is not None
    assert decision.best.article_id == "refunds"


def test_two_close_candidates_are_offered_as_a_choice() -> None:
    decision = decide([m("refunds", 0.62), m("returns", 0.60), m("klarna", 0.40)], T)
    assert decision.kind == "choose"
    assert [x.article_id for x in decision.matches] == ["refunds", "returns"]


def test_below_the_threshold_is_no_answer() -> None:
    assert decide([m("refunds", 0.44)], T).kind == "none"
    assert decide([], T).kind == "none"


def test_the_fallback_path_is_stricter_and_never_asks() -> None:
    assert decide([m("refunds", 0.50)], T, strict=True).kind == "none"
    close = decide([m("refunds", 0.70), m("returns", 0.69)], T, strict=True)
    assert close.kind == "answer"
