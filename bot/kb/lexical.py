"""The lexical half of the knowledge-base index: SQLite FTS5 with BM25 ranking.

Dense embeddings read meaning but blur rare words: a carrier's name, a payment
scheme, a product code, a street. BM25 over the articles' words finds exactly
those. One FTS5 row per article, with its title, questions and body as
columns; the file (``lexical.db``) sits beside the vectors in each index
version and is built the same way: a copy of the previous version's file with
only the changed articles deleted and re-inserted.

Queries are the shopper's words, OR-ed, each quoted (so nothing a shopper
types is read as FTS5 syntax), without the few words that every article has.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.kb.articles import Article

__all__ = ["FILENAME", "LexicalIndex", "build_lexical", "fts_query"]

FILENAME = "lexical.db"
#: unicode61 keeps product codes and accents apart from their neighbours; remove_diacritics
#: lets "creme" find "crème". No stemmer: Porter measured worse on the calibration set.
TOKENIZER = "unicode61 remove_diacritics 2"
#: Words too common in the articles to say which one is meant.
STOP_WORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "for", "is", "are", "do",
    "does", "i", "my", "me", "you", "your", "it",
})
#: How many lexical candidates a search looks at.
CANDIDATES = 64

_WORD = re.compile(r"\w+")


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text: its words OR-ed, or None if it has none."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]
    if not words:
        return None
    return " OR ".join(f'"{word}"' for word in dict.fromkeys(words))


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS articles USING fts5("
        f"article_id UNINDEXED, title, questions, body, tokenize='{TOKENIZER}')"
    )
    return connection


def build_lexical(target: Path, articles: Sequence[Article], changed: Iterable[str],
                  previous: Path | None) -> None:
    """Write ``target``: ``previous`` (if any) with every article id in ``changed``
    replaced by its current text, and articles no longer in ``articles`` deleted.

    ``changed`` must name every article whose content differs from ``previous``;
    without a previous file every article is inserted.
    """
    if previous is not None and (previous / FILENAME).is_file():
        shutil.copyfile(previous / FILENAME, target)
        rewrite = set(changed)
    else:
        rewrite = {a.id for a in articles}
    keep = {a.id for a in articles}
    with _connect(target) as connection:
        stored = {row[0] for row in connection.execute("SELECT article_id FROM articles")}
        for article_id in sorted((stored - keep) | (stored & rewrite)):
            connection.execute("DELETE FROM articles WHERE article_id = ?", (article_id,))
        for article in sorted(articles, key=lambda a: a.id):
            if article.id in rewrite or article.id not in stored:
                connection.execute(
                    "INSERT INTO articles (article_id, title, questions, body) VALUES (?, ?, ?, ?)",
                    (article.id, article.title, "\n".join(article.questions), article.body),
                )
        # A merged b-tree makes the file smaller and its reads independent of edit history.
        connection.execute("INSERT INTO articles(articles) VALUES ('optimize')")
    connection.close()


class LexicalIndex:
    """One version's ``lexical.db``, opened read-only."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                           check_same_thread=False)
        # The action server searches from several worker threads.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, version_dir: Path) -> LexicalIndex | None:
        """The version's lexical index, or None for a version built before it existed."""
        path = version_dir / FILENAME
        return cls(path) if path.is_file() else None

    def scores(self, text: str, limit: int = CANDIDATES) -> dict[str, float]:
        """BM25 per matching article (higher is better; absent: no word in common)."""
        query = fts_query(text)
        if query is None:
            return {}
        with self._lock:
            rows = self._connection.execute(
                "SELECT article_id, -bm25(articles) FROM articles WHERE articles MATCH ? "
                "ORDER BY bm25(articles), article_id LIMIT ?", (query, limit),
            ).fetchall()
        return {str(article_id): float(score) for article_id, score in rows}

    def close(self) -> None:
        self._connection.close()
