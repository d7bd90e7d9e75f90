"""``shopchat eval kb`` and ``shopchat kb build|search`` on the real knowledge base."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.kb.index import Embedder
from bot.settings import PROJECT_DIR
from shopchat.kb_eval import evaluate_kb

SHOPCHAT = str(Path(sys.executable).parent / "shopchat")
KB = PROJECT_DIR / "data" / "kb"
HELDOUT = PROJECT_DIR / "tests" / "kb" / "heldout_queries.csv"


def test_heldout_paraphrases_find_the_right_article(embedder: Embedder) -> None:
    report = evaluate_kb(KB, HELDOUT, embedder)
    assert report["n"] >= 60
    assert report["hit@1"] >= 0.85, report["errors"]
    assert report["hit@3"] >= 0.95
    # Off-topic questions are (nearly) never answered with an article.
    assert report["off_topic"]["correctly_unanswered"] >= 0.9


def test_heldout_queries_are_not_copies_of_article_questions() -> None:
    from bot.kb.articles import load_articles

    def norm(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    questions = {norm(q) for a in load_articles(KB) for q in (a.title, *a.questions)}
    lines = HELDOUT.read_text().splitlines()[1:]
    assert not [line for line in lines if norm(line.rsplit(",", 1)[0]) in questions]


def test_eval_kb_prints_json_last(tmp_path: Path) -> None:
    queries = tmp_path / "q.csv"
    queries.write_text("query,article_id\nhow much is postage to germany,shipping-costs\n"
                       "tell me a joke,\n")
    completed = subprocess.run([SHOPCHAT, "eval", "kb", "--articles", str(KB), "--queries",
                                str(queries), "--json"], capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["n"] == 1 and report["hit@1"] == 1.0
    assert {"hit@3", "mrr", "p50_ms", "p95_ms"} <= set(report)


def test_eval_kb_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    queries = tmp_path / "q.csv"
    queries.write_text("query,article_id\nwhere is it,no-such-article\n")
    completed = subprocess.run([SHOPCHAT, "eval", "kb", "--articles", str(KB), "--queries",
                                str(queries)], capture_output=True, text=True, check=False)
    assert completed.returncode == 1
    assert "q.csv:2: no article with id 'no-such-article'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_kb_build_fails_on_a_broken_article_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text("---\nid: bad\ntitle: [oops\n---\nBody\n")
    completed = subprocess.run(
        [SHOPCHAT, "kb", "build", "--articles", str(tmp_path)], capture_output=True, text=True,
        check=False, env={"SHOPCHAT_MODELS_DIR": str(tmp_path / "models"), "PATH": "/usr/bin"},
    )
    assert completed.returncode == 1
    assert f"{tmp_path / 'bad.md'}:" in completed.stderr and "bad YAML" in completed.stderr
    assert not (tmp_path / "models" / "kb" / "current.json").exists()


def test_kb_search_shows_scores_and_the_decision(tmp_path: Path) -> None:
    env = {"SHOPCHAT_MODELS_DIR": str(tmp_path / "models"), "PATH": "/usr/bin",
           "HF_HUB_OFFLINE": "1"}
    built = subprocess.run([SHOPCHAT, "kb", "build"], capture_output=True, text=True,
                           check=False, env=env)
    assert built.returncode == 0, built.stderr
    assert "embedded" in built.stdout
    found = subprocess.run([SHOPCHAT, "kb", "search", "how long does a refund take"],
                           capture_output=True, text=True, check=False, env=env)
    assert found.returncode == 0, found.stderr
    assert "refunds" in found.stdout and "The bot would: answer (refunds)" in found.stdout
