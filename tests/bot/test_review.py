"""The review inbox: what gets listed, verdicts, and the training file they produce."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.kb.index import Match
from bot.kb.log import KBLog
from bot.review import ReviewError, decide, list_items, write_training_file
from bot.settings import PROJECT_DIR, Settings
from handoff.db.conversations import ConversationStore
from shopchat.rasa_env import RASA_DATA_DIRS, rasa_env, rasa_executable

NOW = time.time()


def user_event(text: str, intent: str, confidence: float, **metadata: str) -> str:
    return json.dumps({"event": "user", "text": text, "metadata": metadata,
                       "parse_data": {"intent": {"name": intent, "confidence": confidence}}})


def seed(var: Path) -> None:
    var.mkdir(parents=True, exist_ok=True)
    tracker = sqlite3.connect(var / "tracker.db")
    tracker.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) "
                    "NOT NULL, type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name "
                    "VARCHAR(255), action_name VARCHAR(255), data TEXT)")
    rows = [
        ("c1", NOW - 50, user_event("can i pay in crypto coins", "nlu_fallback", 0.41)),
        ("c1", NOW - 40, user_event("wheres my stuff at", "track_order", 0.55)),
        ("c2", NOW - 30, user_event("where is my order", "track_order", 0.99)),
        ("c2", NOW - 20, user_event("this is taking forever", "complain", 0.93)),
        ("c2", NOW - 10, user_event("are you still there", "nlu_fallback", 0.2, to="agent")),
        ("c3", NOW - 5, user_event('/faq{"article_id":"refunds"}', "faq", 1.0)),
        ("c3", NOW - 4, user_event("where is my shipment", "track_order", 0.5)),
    ]
    for sender, ts, data in rows:
        tracker.execute("INSERT INTO events (sender_id, type_name, timestamp, data) "
                        "VALUES (?, 'user', ?, ?)", [sender, ts, data])
    tracker.commit()
    tracker.close()
    store = ConversationStore(var / "gateway.db")
    store.db.execute("INSERT INTO conversations (id, token_hash, created_at, updated_at) "
                     "VALUES ('c2', 'x', ?, ?)", [NOW - 30, NOW])
    store.db.execute("INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at) "
                     "VALUES ('c2', 'closed', 'complaint', 'r', ?)", [NOW - 15])
    store.close()
    log = KBLog(var / "kb.db")
    log.answered("c4", "my refund never showed up", "answer",
                 [Match("refunds", "Refunds", None, "...", 0.6)])
    log.feedback("c4", "refunds", helpful=False)
    log.close()


def items(var: Path, **options: bool) -> list:  # type: ignore[type-arg]
    return list_items(var / "gateway.db", var / "tracker.db", var / "kb.db", NOW - 3600,
                      **options)


def test_the_inbox_lists_misses_doubts_unhelpful_answers_and_handoffs(tmp_path: Path) -> None:
    seed(tmp_path)
    found = {(i.kind, i.text) for i in items(tmp_path)}
    assert found == {
        ("fallback", "can i pay in crypto coins"),
        ("low_confidence", "wheres my stuff at"),
        ("low_confidence", "where is my shipment"),
        ("handoff", "this is taking forever"),
        ("kb_not_helpful", "my refund never showed up"),
    }


def test_verdicts_become_training_examples_without_contradictions(tmp_path: Path) -> None:
    seed(tmp_path)
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "data" / "nlu", project / "data" / "nlu")
    inbox = items(tmp_path)
    by_text = {i.text: i.id for i in inbox}
    decide(tmp_path / "gateway.db", inbox, [by_text["wheres my stuff at"]], "track_order", "kim")
    decide(tmp_path / "gateway.db", inbox, [by_text["can i pay in crypto coins"]], "new_faq",
           "kim")
    # Already a training example of track_order: labelling it refund_status would contradict.
    decide(tmp_path / "gateway.db", inbox, [by_text["where is my shipment"]], "refund_status",
           "kim")
    written = write_training_file(tmp_path / "gateway.db", project)
    text = (project / "data" / "nlu" / "reviewed.yml").read_text()
    assert "- intent: track_order\n  examples: |\n    - wheres my stuff at" in text
    assert "crypto" not in text and "where is my shipment" not in text
    assert written["skipped"] == [{"text": "where is my shipment", "intent": "refund_status",
                                   "reason": "already an example of track_order"}]
    assert {i.text for i in items(tmp_path)} == {"this is taking forever",
                                                  "my refund never showed up"}
    with pytest.raises(ReviewError, match="unknown verdict"):
        decide(tmp_path / "gateway.db", inbox, [inbox[0].id], "buy_stuff", "kim")
    with pytest.raises(ReviewError, match="no such review item"):
        decide(tmp_path / "gateway.db", inbox, ["0000"], "faq", "kim")


@pytest.mark.slow
def test_the_reviewed_file_passes_rasa_data_validate(tmp_path: Path) -> None:
    seed(tmp_path)
    project = tmp_path / "project"
    for folder in RASA_DATA_DIRS:
        shutil.copytree(PROJECT_DIR / folder, project / folder)
    (project / "bot").mkdir()
    shutil.copy(PROJECT_DIR / "bot" / "domain.yml", project / "bot" / "domain.yml")
    shutil.copy(PROJECT_DIR / "config.yml", project / "config.yml")
    inbox = items(tmp_path)
    decide(tmp_path / "gateway.db", inbox,
           [i.id for i in inbox if i.text == "wheres my stuff at"], "track_order", "kim")
    decide(tmp_path / "gateway.db", inbox,
           [i.id for i in inbox if i.text == "this is taking forever"], "complain", "kim")
    write_training_file(tmp_path / "gateway.db", project)
    settings = Settings()
    completed = subprocess.run(
        [str(rasa_executable(settings)), "data", "validate", "--fail-on-warnings",
         "--config", "config.yml", "--domain", "bot/domain.yml", "--data", *RASA_DATA_DIRS],
        cwd=project, env=rasa_env(settings), capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.mark.slow
def test_the_review_commands(tmp_path: Path) -> None:
    seed(tmp_path / "var")
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "data" / "nlu", project / "data" / "nlu")
    env = {**os.environ, "SHOPCHAT_VAR_DIR": str(tmp_path / "var"),
           "SHOPCHAT_PROJECT_DIR": str(project)}
    shopchat = str(Path(sys.executable).parent / "shopchat")
    listed = subprocess.run([shopchat, "review", "list", "--json"], capture_output=True,
                            text=True, env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    inbox = json.loads(listed.stdout.strip().splitlines()[-1])["items"]
    target = next(i["id"] for i in inbox if i["text"] == "wheres my stuff at")
    labelled = subprocess.run([shopchat, "review", "label", "track_order", target],
                              capture_output=True, text=True, env=env, check=False)
    assert labelled.returncode == 0 and "1 examples" in labelled.stdout
    bad = subprocess.run([shopchat, "review", "label", "nonsense", target],
                         capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1 and "unknown verdict" in bad.stderr
    # Taken back: the message returns to the inbox and leaves the training file.
    taken = subprocess.run([shopchat, "review", "unlabel", target], capture_output=True,
                           text=True, env=env, check=False)
    assert taken.returncode == 0 and "Took back 1" in taken.stdout
    assert not (project / "data" / "nlu" / "reviewed.yml").exists()
    again = subprocess.run([shopchat, "review", "unlabel", target], capture_output=True,
                           text=True, env=env, check=False)
    assert again.returncode == 1 and "none of these items has a verdict" in again.stderr
