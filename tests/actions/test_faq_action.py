"""The FAQ action with rasa-sdk's real dispatcher and tracker, over the real knowledge base."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq, KnowledgeBase


def faq_tracker(text: str, entities: list[dict[str, Any]] | None = None) -> Tracker:
    parse = {"intent": {"name": "faq", "confidence": 1.0}, "entities": entities or [],
             "text": text}
    event = {"event": "user", "text": text, "parse_data": parse}
    return Tracker("shopper-faq", {}, parse, [event], False, None, {}, "action_listen")


async def ask(text: str, entities: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq().run(dispatcher, faq_tracker(text, entities), {})
    return dispatcher.messages


@pytest.mark.slow
async def test_close_articles_are_offered_and_picking_one_answers_it(kb: KnowledgeBase) -> None:
    (choice,) = await ask("returns")
    assert "Which one do you mean?" in choice["text"]
    offered = [b["payload"] for b in choice["buttons"]]
    assert '/faq{"article_id":"how-to-return"}' in offered
    assert '/faq{"article_id":"returns-policy"}' in offered
    (answer,) = await ask('/faq{"article_id":"returns-policy"}',
                          [{"entity": "article_id", "value": "returns-policy"}])
    assert answer["text"].startswith("You can return unused items")
    assert [b["title"] for b in answer["buttons"]] == ["Yes, that helped", "Not really"]


@pytest.mark.slow
async def test_feedback_is_stored_and_unknown_questions_are_logged(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    await ask("/faq", [{"entity": "article_id", "value": "gift-cards"},
                       {"entity": "kb_feedback", "value": "no"}])
    (reply,) = await ask("is the moon made of cheese?")
    assert reply["buttons"] == [{"title": "Talk to a person", "payload": "/human_handoff"}]
    db = kb.log.db.conn
    assert db.execute("SELECT article_id, helpful FROM kb_feedback").fetchall() == [
        ("gift-cards", 0)]
    outcome = db.execute("SELECT outcome, query FROM kb_answers").fetchall()
    assert ("none", "is the moon made of cheese?") in outcome
    assert isinstance(db, sqlite3.Connection)


@pytest.mark.slow
@pytest.mark.parametrize("worker", [True, False], ids=["sanic worker", "sanic manager"])
def test_the_warm_up_loads_the_model_in_the_worker_before_it_can_listen(
    kb: KnowledgeBase, tmp_path: Path, worker: bool,
) -> None:
    """`import actions` is what the action server's worker does before it listens: with
    the warm-up on, the model and the index are loaded when the import returns, so its
    health check (and so the stack's "ready") never comes before the first FAQ answer
    can. Its manager process, which serves nothing, never loads the model."""
    script = ("import multiprocessing, actions, actions.faq as faq\n"
              "kb = faq._instance\n"
              "print(kb is not None and kb.retriever._embedder is not None"
              " and kb.retriever._index is not None,"
              " multiprocessing.get_start_method(allow_none=True))")
    env = {**os.environ, "SHOPCHAT_KB_WARM_UP": "true", "SHOPCHAT_VAR_DIR": str(tmp_path),
           "HF_HUB_OFFLINE": "1"}
    env.pop("SANIC_WORKER_NAME", None)
    if worker:
        env["SANIC_WORKER_NAME"] = "Sanic-Server-0-0"  # what Sanic sets in its worker
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded, start_method = result.stdout.strip().splitlines()[-1].split()
    assert loaded == str(worker)
    if not worker:  # Sanic may still choose how to start its worker
        assert start_method == "None"
