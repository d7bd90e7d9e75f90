"""What the knowledge base is missing: the questions it could not answer, grouped by meaning.

Sources: in the answer log (``var/kb.db``), questions the KB found no article
for (``none``, and ``fallback_none`` for messages the NLU could not place) and
questions whose answer the shopper marked "not helpful"; in the gateway
database, messages staff marked "new FAQ needed" in the review inbox. Each is
embedded with the same MiniLM model as the articles and grouped greedily by
cosine similarity, so staff see the top missing topics with real phrasings
and, for each, the closest existing article (extend it, or write a new one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.kb.articles import DRAFT_MARKER, ID_PATTERN
from bot.kb.index import Match, Retriever
from bot.kb.log import UNHELPFUL_QUESTIONS
from bot.readonly import read_rows
from handoff.db.review import new_faq_texts

__all__ = ["DraftError", "Gap", "find_gaps", "group_vectors", "scaffold",
           "unanswered_questions", "write_draft"]



class DraftError(ValueError):
    """A draft that cannot be written (bad id, existing file, no such gap); says which."""

#: Two questions belong to one topic at this cosine similarity (MiniLM, unit vectors).
SAME_TOPIC = 0.6


@dataclass(frozen=True)
class Gap:
    label: str
    questions: tuple[str, ...]
    nearest: Match | None

    @property
    def count(self) -> int:
        return len(self.questions)

    def as_dict(self, number: int) -> dict[str, Any]:
        return {"gap": number, "count": self.count, "label": self.label,
                "questions": list(self.questions),
                "nearest": {"article_id": self.nearest.article_id,
                            "title": self.nearest.title,
                            "score": round(self.nearest.score, 3)} if self.nearest else None}


def unanswered_questions(log_db: Path, since: float,
                         gateway_db: Path | None = None) -> list[str]:
    """Questions without a good answer since ``since`` (unix time), oldest first, then
    those staff marked "new FAQ needed" (when ``gateway_db`` is given)."""
    rows = read_rows(log_db, "SELECT query FROM kb_answers WHERE outcome IN "
                             "('none', 'fallback_none') AND ts >= ?", [since])
    rows += [(query,) for _, _, query in read_rows(log_db, UNHELPFUL_QUESTIONS, [since])]
    if gateway_db is not None:
        rows += [(text,) for text in new_faq_texts(gateway_db, since)]
    return [row[0] for row in rows if row[0] and not row[0].startswith("/")]


def group_vectors(vectors: np.ndarray[Any, np.dtype[np.float32]],
                  threshold: float = SAME_TOPIC) -> list[list[int]]:
    """Greedy grouping of unit vectors: each joins the closest group centroid above
    ``threshold`` or starts a new group. Biggest groups first."""
    groups: list[list[int]] = []
    centroids: list[np.ndarray[Any, np.dtype[np.float32]]] = []
    for i, vector in enumerate(vectors):
        best, score = -1, threshold
        for g, centroid in enumerate(centroids):
            similarity = float(vector @ centroid / (np.linalg.norm(centroid) or 1.0))
            if similarity >= score:
                best, score = g, similarity
        if best < 0:
            groups.append([i])
            centroids.append(vector.astype(np.float32).copy())
        else:
            groups[best].append(i)
            centroids[best] = centroids[best] + vector
    return sorted(groups, key=lambda members: (-len(members), members[0]))


def find_gaps(questions: list[str], retriever: Retriever,
              threshold: float = SAME_TOPIC) -> list[Gap]:
    """Group ``questions`` by topic; label each by its most central question."""
    unique = list(dict.fromkeys(q.strip() for q in questions if q.strip()))
    if not unique:
        return []
    vectors = retriever.embedder.encode(unique)
    gaps = []
    for members in group_vectors(vectors, threshold):
        centroid = vectors[members].mean(axis=0)
        label = unique[max(members, key=lambda i: float(vectors[i] @ centroid))]
        try:
            matches = retriever.index().search(centroid / np.linalg.norm(centroid), 1)
        except Exception:  # no index yet: the gaps are still worth seeing
            matches = []
        gaps.append(Gap(label, tuple(unique[i] for i in members),
                        matches[0] if matches else None))
    return gaps


def scaffold(article_id: str, title: str, gap: Gap) -> str:
    """A draft article for a gap: front matter with the shoppers' own phrasings."""
    questions = "\n".join(f"  - {_yaml_string(q)}" for q in gap.questions[:8])
    return (f"---\nid: {article_id}\ntitle: {_yaml_string(title)}\nquestions:\n{questions}\n"
            f"---\n{DRAFT_MARKER} (then move this file from data/kb/drafts/ to data/kb/ "
            "and run `shopchat kb build`).\n")


def write_draft(articles_dir: Path, article_id: str, gap: Gap, title: str | None = None) -> Path:
    """Write the draft for ``gap`` to ``articles_dir/drafts/<id>.md``; never overwrites."""
    if not re.match(ID_PATTERN, article_id):
        raise DraftError("The id must be a lowercase slug, like gift-wrapping.")
    if (articles_dir / f"{article_id}.md").exists():
        raise DraftError(f"data/kb/{article_id}.md exists already.")
    target = articles_dir / "drafts" / f"{article_id}.md"
    if target.exists():
        raise DraftError(f"data/kb/drafts/{article_id}.md exists already.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(scaffold(article_id, title or gap.label, gap), encoding="utf-8")
    return target


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
