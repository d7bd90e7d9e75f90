"""Support figures from a seeded gateway database, KB log and Rasa tracker store."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.kb.log import KBLog
from handoff.analytics import build_report
from handoff.db.conversations import ConversationStore
from tests.conftest import run_shopchat

DAY1 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC).timestamp()
SINCE, UNTIL = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)


@pytest.fixture
def var(tmp_path: Path) -> Path:
    store = ConversationStore(tmp_path / "gateway.db")
    ids = []
    for n, created in enumerate([DAY1, DAY1, DAY1, DAY1, DAY2, DAY2]):
        conversation, _ = store.create_conversation(None)
        if n < 5:  # the sixth opened the chat and never wrote: not a conversation
            store.append_shopper_message(conversation.id, f"m{n}",
                                         {"type": "message", "author": "shopper", "text": "hi"})
        store.db.execute("UPDATE conversations SET created_at = ? WHERE id = ?",
                         [created, conversation.id])
        ids.append(conversation.id)
    store.set_lang(ids[0], "de")
    store.set_lang(ids[4], "fr")
    for agent_id, name in (("ag_1", "Ada"), ("ag_2", "Bo")):
        store.db.execute("INSERT INTO agents (id, email, name, capacity, password_hash, "
                         "created_at) VALUES (?, ?, ?, 3, 'x', 0)",
                         [agent_id, f"{name}@example.com", name])
    handoffs = [  # trigger, queued, assigned, first response, resolution, csat, agent, ended
        (ids[0], "requested", DAY1 + 100, DAY1 + 130, DAY1 + 160, "resolved", 5, "ag_1",
         DAY1 + 430),
        (ids[1], "fallback", DAY1 + 200, DAY1 + 290, DAY1 + 300, "resolved", 3, "ag_2",
         DAY1 + 890),
        (ids[4], "complaint", DAY2 + 300, None, None, None, None, None, None),
    ]
    for row in handoffs:
        store.db.execute(
            "INSERT INTO handoffs (conversation_id, state, trigger, reason, queued_at, "
            "assigned_at, first_response_at, resolution, csat_score, agent_id, ended_at) "
            "VALUES (?, 'closed', ?, 'r', ?, ?, ?, ?, ?, ?, ?)", list(row))
    store.db.execute("INSERT INTO tickets (conversation_id, email, message, created_at) "
                     "VALUES (?, 'a@example.com', 'help', ?)", [ids[4], DAY2 + 400])
    store.close()

    log = KBLog(tmp_path / "kb.db")
    for helpful in (True, True, False):
        log.db.execute("INSERT INTO kb_feedback (conversation_id, article_id, helpful, ts) "
                       "VALUES (?, 'refunds', ?, ?)", [ids[1], int(helpful), DAY1 + 50])
    log.db.conn.commit()

    # Rasa's SQL tracker store table, as rasa 3.6 creates it.
    tracker = sqlite3.connect(tmp_path / "tracker.db")
    tracker.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) "
                    "NOT NULL, type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name "
                    "VARCHAR(255), action_name VARCHAR(255), data TEXT)")
    intents = ["greet"] * 3 + ["faq"] * 3 + ["nlu_fallback"] * 2 + ["out_of_scope",
                                                                     "track_order"]
    for n, intent in enumerate(intents):
        data = {"event": "user", "parse_data": {"intent": {"name": intent,
                                                           "confidence": 0.5 + n / 100}}}
        tracker.execute("INSERT INTO events (sender_id, type_name, timestamp, intent_name, data)"
                        " VALUES (?, 'user', ?, ?, ?)", [ids[n % 5], DAY1 + n, intent,
                                                         json.dumps(data)])
    agent_mode = {"event": "user", "metadata": {"to": "agent"},
                  "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.1}}}
    tracker.execute("INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
                    "VALUES (?, 'user', ?, 'nlu_fallback', ?)",
                    [ids[0], DAY1 + 500, json.dumps(agent_mode)])
    tracker.execute("INSERT INTO events (sender_id, type_name, timestamp, action_name, data) "
                    "VALUES (?, 'action', ?, 'action_listen', '{}')", [ids[0], DAY1 + 1])
    tracker.commit()
    tracker.close()
    return tmp_path


def test_the_figures_match_the_seeded_data(var: Path) -> None:
    report = build_report(var / "gateway.db", var / "kb.db", var / "tracker.db", SINCE, UNTIL)
    totals = report["totals"]
    assert (totals["conversations"], totals["handoffs"]) == (5, 3)
    assert (totals["containment_rate"], totals["handoff_rate"]) == (0.4, 0.6)
    assert totals["handoff_reasons"] == {"requested": 1, "fallback": 1, "complaint": 1}
    assert totals["queue_wait_seconds"] == {"n": 2, "median": 60.0, "p90": 90.0}
    assert totals["first_response_seconds"] == {"n": 2, "median": 20.0, "p90": 30.0}
    assert totals["resolutions"] == {"resolved": 2}
    assert totals["csat"] == {"responses": 2, "average": 4.0,
                              "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}}
    assert totals["kb"]["helpful"] == 2 and totals["kb"]["helpful_ratio"] == 0.6667
    # 10 bot-handled messages, 3 of them misses; the agent-mode one is not counted.
    assert (totals["shopper_messages"], totals["fallback_rate"]) == (10, 0.3)
    assert totals["offline_tickets"] == 1
    assert [(d["day"], d["conversations"], d["handoffs"]) for d in report["days"]] == \
        [("2026-11-02", 4, 2), ("2026-11-03", 1, 1)]
    day1, day2 = report["days"]
    assert day1["first_response_seconds"] == {"n": 2, "median": 20.0, "p90": 30.0}
    assert day1["csat"]["average"] == 4.0 and day1["kb"]["helpful_ratio"] == 0.6667
    assert day2["handoff_reasons"] == {"complaint": 1} and day2["queue_wait_seconds"]["n"] == 0
    # Messages n go to conversation n % 5: greet → 0, 1, 2; faq → 3, 4, 0;
    # nlu_fallback → 1, 2; out_of_scope → 3; track_order → 4.
    intents = {i["intent"]: i for i in report["intents"]}
    assert [i["intent"] for i in report["intents"]][:2] == ["faq", "greet"]
    assert intents["greet"]["messages"] == 3 and intents["nlu_fallback"]["messages"] == 2
    assert (intents["greet"]["conversations"], intents["greet"]["handoffs"]) == (3, 2)
    assert intents["greet"]["handoff_reasons"] == {"requested": 1, "fallback": 1}
    assert intents["nlu_fallback"]["csat"]["average"] == 3.0
    assert intents["track_order"]["handoff_reasons"] == {"complaint": 1}
    assert intents["track_order"]["containment_rate"] == 0.0
    assert intents["out_of_scope"]["containment_rate"] == 1.0
    # Per agent: the chats each had, how fast they answered, how it ended.
    assert [(a["agent"], a["chats"]) for a in report["agents"]] == [("Ada", 1), ("Bo", 1)]
    ada, bo = report["agents"]
    assert ada["first_response_seconds"]["median"] == 30.0 and ada["csat"]["average"] == 5.0
    assert bo["first_response_seconds"]["median"] == 10.0
    assert bo["queue_wait_seconds"]["median"] == 90.0
    assert (ada["handling_seconds"]["median"], bo["handling_seconds"]["median"]) == (300.0, 600.0)
    # Per language: the conversations in it (English unless the widget said otherwise).
    languages = {row["lang"]: row for row in report["languages"]}
    assert [row["lang"] for row in report["languages"]] == ["en", "de", "fr"]
    assert [(languages[lang]["conversations"], languages[lang]["handoffs"])
            for lang in ("en", "de", "fr")] == [(3, 1), (1, 1), (1, 1)]
    assert languages["de"]["handoff_reasons"] == {"requested": 1}
    assert languages["fr"]["containment_rate"] == 0.0 and languages["en"]["containment_rate"] == \
        round(2 / 3, 4)


def test_an_empty_installation_reports_zeros_not_errors(tmp_path: Path) -> None:
    report = build_report(tmp_path / "none.db", tmp_path / "none.db", tmp_path / "none.db",
                          SINCE, UNTIL)
    assert report["totals"]["conversations"] == 0
    assert report["totals"]["containment_rate"] is None and report["days"] == []


def test_shopchat_report_prints_json_and_writes_csv(var: Path, tmp_path: Path) -> None:
    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return run_shopchat("report", "--days", "3650", *args,
                            env={"SHOPCHAT_VAR_DIR": str(var)})

    out = tmp_path / "days.csv"
    completed = report("--json", "--csv", str(out))
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["totals"]["conversations"] == 5
    with out.open(newline="") as handle:
        days = list(csv.DictReader(handle))
    assert [(d["day"], d["conversations"], d["first_response_median"]) for d in days] == [
        ("2026-11-02", "4", "20.0"), ("2026-11-03", "1", "")]
    assert days[0]["handoff_reasons"] == "requested: 1; fallback: 1"
    agents = tmp_path / "agents.csv"
    assert report("--csv", str(agents), "--by", "agents").returncode == 0
    with agents.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["agent"], r["chats"], r["handling_median"]) for r in rows] == [
        ("Ada", "1", "300.0"), ("Bo", "1", "600.0")]
    refused = report("--csv", str(agents), "--by", "weeks")
    assert refused.returncode == 2 and "'weeks' is not one of" in refused.stderr
