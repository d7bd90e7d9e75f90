"""KB gaps: unanswered and unhelpful questions grouped by topic, and drafts made from them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bot.kb.articles import ArticleError, parse_article
from bot.kb.gaps import find_gaps, group_vectors, unanswered_questions
from bot.kb.index import Match, Retriever
from bot.kb.log import KBLog
from bot.settings import Settings
from handoff.db.schema import migrate

WRAPPING = ["do you offer gift wrapping?", "can you gift wrap my order",
            "is gift wrap available for presents"]
MARS = ["do you deliver to mars", "can you ship an order to mars?"]


def seed(var: Path) -> None:
    log = KBLog(var / "kb.db")
    for n, question in enumerate(WRAPPING + MARS):
        log.answered(f"c{n}", question, "none" if n % 2 else "fallback_none", [])
    found = Match("refunds", "Refunds", None, "We refund...", 0.7)
    log.answered("c9", "why is my refund so slow", "answer", [found])
    log.answered("c10", "how do refunds work", "answer", [found])
    log.feedback("c9", "refunds", helpful=False)  # this question counts as a gap
    log.feedback("c10", "refunds", helpful=True)  # this one does not
    log.answered("c11", '/faq{"article_id":"refunds"}', "answer", [found])
    log.close()


def mark_new_faq(var: Path, *texts: str) -> None:
    """Staff marked these messages "new FAQ needed" in the review inbox."""
    with sqlite3.connect(var / "gateway.db") as conn:
        migrate(conn)
        for n, text in enumerate(texts):
            conn.execute("INSERT INTO review_verdicts VALUES (?, ?, 'new_faq', 'kim', ?)",
                         [f"i{n}", text, time.time()])
        conn.execute("INSERT INTO review_verdicts VALUES ('x', 'where is it', 'track_order', "
                     "'kim', ?)", [time.time()])


def test_unanswered_and_unhelpful_questions_are_collected(tmp_path: Path) -> None:
    seed(tmp_path)
    questions = unanswered_questions(tmp_path / "kb.db", time.time() - 3600)
    assert sorted(questions) == sorted([*WRAPPING, *MARS, "why is my refund so slow"])
    assert unanswered_questions(tmp_path / "kb.db", time.time() + 60) == []
    assert unanswered_questions(tmp_path / "missing.db", 0) == []
    # Questions staff marked "new FAQ needed" count too (intent verdicts do not).
    mark_new_faq(tmp_path, "can i pay in crypto coins")
    questions = unanswered_questions(tmp_path / "kb.db", time.time() - 3600,
                                     tmp_path / "gateway.db")
    assert sorted(questions) == sorted([*WRAPPING, *MARS, "why is my refund so slow",
                                        "can i pay in crypto coins"])


def test_vectors_are_grouped_by_similarity_biggest_first() -> None:
    a, b = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    near_b = np.array([0.1, 0.995], dtype=np.float32)
    assert group_vectors(np.stack([a, b, near_b, b])) == [[1, 2, 3], [0]]


@pytest.mark.slow
def test_real_questions_fall_into_their_topics() -> None:
    settings = Settings()
    gaps = find_gaps([*WRAPPING, *MARS, WRAPPING[0]], Retriever(settings.kb_index_path))
    assert [set(g.questions) for g in gaps[:2]] == [set(WRAPPING), set(MARS)]
    assert gaps[0].count == 3 and gaps[0].label in WRAPPING
    assert gaps[1].nearest is not None  # the closest existing article, to extend or not


@pytest.mark.slow
def test_kb_gaps_and_kb_new_make_a_draft_the_build_refuses_until_written(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "data" / "kb").mkdir(parents=True)
    seed(tmp_path / "var")
    mark_new_faq(tmp_path / "var", "can i pay in crypto coins")
    env = {**os.environ, "SHOPCHAT_PROJECT_DIR": str(project),
           "SHOPCHAT_VAR_DIR": str(tmp_path / "var")}
    shopchat = str(Path(sys.executable).parent / "shopchat")
    listed = subprocess.run([shopchat, "kb", "gaps", "--json"], capture_output=True, text=True,
                            env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    gaps = json.loads(listed.stdout.strip().splitlines()[-1])["gaps"]
    assert gaps[0]["count"] == 3 and set(gaps[0]["questions"]) == set(WRAPPING)
    assert any("can i pay in crypto coins" in gap["questions"] for gap in gaps)
    made = subprocess.run([shopchat, "kb", "new", "gift-wrapping", "--gap", "1", "--title",
                           "Gift wrapping"], capture_output=True, text=True, env=env,
                          check=False)
    assert made.returncode == 0, made.stderr
    draft = project / "data" / "kb" / "drafts" / "gift-wrapping.md"
    with pytest.raises(ArticleError, match="still a draft"):
        parse_article(draft)
    text = draft.read_text().replace(draft.read_text().split("---\n")[2],
                                     "Yes: add gift wrapping at checkout for €4.\n")
    draft.write_text(text)
    article = parse_article(draft)
    assert article.title == "Gift wrapping" and set(article.questions) == set(WRAPPING)
    again = subprocess.run([shopchat, "kb", "new", "gift-wrapping", "--gap", "9"],
                           capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 1 and "gaps" in again.stderr
    for bad, why in (("Gift_Wrap", "lowercase slug"), ("gift-wrapping", "exists already")):
        refused = subprocess.run([shopchat, "kb", "new", bad, "--gap", "1"],
                                 capture_output=True, text=True, env=env, check=False)
        assert refused.returncode == 1 and why in refused.stderr
