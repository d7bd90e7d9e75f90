"""What the knowledge base answered, and whether it helped: ``var/kb.db``.

Content staff read these tables to find gaps: questions below the threshold,
articles marked not helpful.

- ``kb_answers``: one row per question: ``conversation_id``, ``query``,
  ``outcome`` (answer, choose, none, fallback_answer, fallback_none),
  ``article_id`` and ``score`` of the best match, ``second_id``,
  ``second_score``, ``ts``.
- ``kb_feedback``: ``conversation_id``, ``article_id``, ``helpful`` (0/1), ``ts``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

if TYPE_CHECKING:  # the index (FAISS) is not loaded by what only reads the log
    from bot.kb.index import Match

__all__ = ["UNHELPFUL_QUESTIONS", "KBLog"]

#: (conversation_id, feedback time, question) for every "not helpful": the question is
#: the last one answered with that article in the same conversation before the feedback.
UNHELPFUL_QUESTIONS = (
    "SELECT f.conversation_id, f.ts, (SELECT a.query FROM kb_answers a WHERE "
    "a.conversation_id = f.conversation_id AND a.article_id = f.article_id AND a.ts <= f.ts "
    "ORDER BY a.ts DESC LIMIT 1) FROM kb_feedback f WHERE f.helpful = 0 AND f.ts >= ?"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    query TEXT NOT NULL,
    outcome TEXT NOT NULL,
    article_id TEXT,
    score REAL,
    second_id TEXT,
    second_score REAL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kb_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    ts REAL NOT NULL
);
"""


class KBLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def answered(self, conversation_id: str, query: str, outcome: str,
                 matches: list[Match] | tuple[Match, ...]) -> None:
        first = matches[0] if matches else None
        second = matches[1] if len(matches) > 1 else None
        with self.db.conn:
            self.db.table("kb_answers").insert({
                "conversation_id": conversation_id, "query": query, "outcome": outcome,
                "article_id": first.article_id if first else None,
                "score": first.score if first else None,
                "second_id": second.article_id if second else None,
                "second_score": second.score if second else None,
                "ts": time.time(),
            })

    def feedback(self, conversation_id: str, article_id: str, helpful: bool) -> None:
        with self.db.conn:
            self.db.table("kb_feedback").insert({
                "conversation_id": conversation_id, "article_id": article_id,
                "helpful": int(helpful), "ts": time.time(),
            })

    def close(self) -> None:
        self.db.conn.close()
