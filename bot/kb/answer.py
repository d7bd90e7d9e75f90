"""What to do with the ranked articles for a shopper's question: a pure decision.

- the best article clears the threshold and nothing else is close → answer with it;
- two (or three) articles clear it within ``margin`` of each other → ask which one;
- nothing clears it → say so honestly and offer a person.

The fallback path (a message the NLU could not place) uses the stricter
``fallback`` threshold: there the question was not even recognised as one.

The scores are the fused dense + lexical scores of :mod:`bot.kb.fusion` (a
cosine plus at most 0.2 for words in common). The thresholds were calibrated
on ``tests/kb/calibration_queries.csv`` (108 shopper phrasings, three per
article, and 27 off-topic questions; none is in the held-out set the tests
report) with ``bench/kb_fusion.py``: the best off-topic question scored 0.494,
so 0.50 leaves every one of them unanswered while 93 % of the right first
articles score above it. Three of the five wrong first articles were within
0.03 of the right one, hence the 0.05 margin (a wider one turns right answers
into needless choices). The fallback keeps its 0.10 above the answer bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.kb.index import Match

__all__ = ["Decision", "Thresholds", "decide"]


@dataclass(frozen=True)
class Thresholds:
    #: Fused score the best article needs for an answer to an FAQ question.
    answer: float = 0.50
    #: Two articles closer than this are both offered.
    margin: float = 0.05
    #: Stricter bar when the NLU did not recognise an FAQ at all.
    fallback: float = 0.60


@dataclass(frozen=True)
class Decision:
    kind: Literal["answer", "choose", "none"]
    matches: tuple[Match, ...]

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None


DEFAULT_THRESHOLDS = Thresholds()


def decide(matches: Sequence[Match], thresholds: Thresholds = DEFAULT_THRESHOLDS,
           strict: bool = False) -> Decision:
    """Answer, ask which article, or admit there is none. ``matches`` are best first."""
    bar = thresholds.fallback if strict else thresholds.answer
    passing = [m for m in matches if m.score >= bar]
    if not passing:
        return Decision("none", tuple(matches[:1]))
    close = [m for m in passing if passing[0].score - m.score < thresholds.margin]
    if len(close) > 1 and not strict:
        return Decision("choose", tuple(close[:3]))
    return Decision("answer", (passing[0],))
