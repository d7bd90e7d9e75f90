"""How the dense and lexical scores of an article become one score: a pure function.

The fused score is the dense cosine similarity plus a bounded lexical bonus,

    score = cosine + weight * min(bm25 / cap, 1)

so it stays on the cosine scale the answer thresholds are written in: an
article that shares no word with the question keeps its cosine, and words in
common add at most ``weight``. Reciprocal-rank fusion was measured too and
ranked worse (hit@1 0.92 against 0.95 on the calibration queries, 0.83
against 0.90 on the held-out ones; see ``bench/kb_fusion.py``): with a few
dozen articles the ranks throw away how far apart the scores are, and a rank
carries no absolute confidence to decide "answer or admit there is none" with.
The weight and cap are the bench's choice on the calibration queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Fusion", "fuse"]


@dataclass(frozen=True)
class Fusion:
    #: The most the lexical match adds to the cosine.
    weight: float = 0.2
    #: The BM25 score at which the lexical bonus is full (several rare words in common).
    cap: float = 8.0


DEFAULT_FUSION = Fusion()


def fuse(dense: Mapping[str, float], lexical: Mapping[str, float],
         fusion: Fusion = DEFAULT_FUSION) -> dict[str, float]:
    """One score per article in either mapping. An article missing from ``dense``
    has no known cosine and counts as 0; missing from ``lexical``, no bonus."""
    return {
        article: dense.get(article, 0.0)
        + fusion.weight * min(max(lexical.get(article, 0.0), 0.0) / fusion.cap, 1.0)
        for article in dense.keys() | lexical.keys()
    }
