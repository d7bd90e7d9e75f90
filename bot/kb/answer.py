"""What to do with the ranked articles for a shopper's question: a pure decision.

- the best article clears the threshold and nothing else is close → answer with it;
- two (or three) articles clear it within ``margin`` of each other → ask which one;
- nothing clears it → say so honestly and offer a person.

The fallback path (a message the NLU could not place) uses the stricter
``fallback`` threshold: there the question was not even recognised as one.
The thresholds were calibrated on ``tests/kb/calibration_queries.csv`` (36
short shopper phrasings, one per article, and 12 off-topic questions; none is
in the held-out set the tests report): at 0.45 no off-topic question was
answered (the highest scored 0.41) while 86 % of the right articles scored
above it; every wrong first article was within 0.05 of the next, hence the
margin. The fallback path (the NLU did not see an FAQ) asks for 0.55.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.kb.index import Match

__all__ = ["Decision", "Thresholds", "decide"]


@dataclass(frozen=True)
class Thresholds:
    #: Cosine similarity the best article needs for an answer to an FAQ question.
    answer: float = 0.45
    #: Two articles closer than this are both offered.
    margin: float = 0.05
    #: Stricter bar when the NLU did not recognise an FAQ at all.
    fallback: float = 0.55


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
