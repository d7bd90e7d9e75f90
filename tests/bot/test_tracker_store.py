"""bot/tracker_store.py, run where Rasa runs (``.venv-rasa``): the tuned store keeps Rasa's
SQL tracker store's table and behaviour, with SQLite in WAL mode and synchronous=NORMAL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from shopchat.rasa_env import rasa_env, rasa_python

pytestmark = pytest.mark.slow

#: How the scripts run inside .venv-rasa begin: Rasa's imports every script uses and a
#: small domain with an ``order_id`` slot.
PRELUDE = r'''
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
domain = Domain.from_yaml("""
version: "3.1"
intents: [greet, track_order]
entities: [order_id]
slots:
  order_id: {type: text, mappings: [{type: from_entity, entity: order_id}]}
responses: {utter_greet: [{text: hi}]}
""")
'''

#: Runs inside .venv-rasa; prints one JSON object.
SCRIPT = PRELUDE + r'''
import sqlite3
from rasa.shared.core.events import (
    ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered, deserialise_events)
from bot.tracker_store import ShopTrackerStore, deserialise_events as fast_deserialise

db = sys.argv[1]

def turn(tracker, text, intent, order=None):
    entities = [{"entity": "order_id", "value": order}] if order else []
    tracker.update(UserUttered(text, {"name": intent, "confidence": 0.9}, entities))
    if order:
        tracker.update(SlotSet("order_id", order))
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(BotUttered("hi", {"elements": None}, {"utter_action": "utter_greet"}))
    tracker.update(ActionExecuted("action_listen"))

def new_session(tracker):
    for event in (ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen")):
        tracker.update(event)

async def main():
    ours = ShopTrackerStore(domain=domain, dialect="sqlite", db=db)
    stock = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    out = {}
    with ours.engine.connect() as c:
        out["journal_mode"] = c.exec_driver_sql("PRAGMA journal_mode").scalar()
        out["synchronous"] = c.exec_driver_sql("PRAGMA synchronous").scalar()
        first = c.connection.dbapi_connection
    with ours.engine.connect() as c:
        out["kept_open"] = c.connection.dbapi_connection is first

    tracker = DialogueStateTracker("anna", domain.slots)
    new_session(tracker)
    turn(tracker, "hello", "greet")
    await ours.save(tracker)
    # A second turn saved by the stock store (another writer): ours must read it all.
    again = await stock.retrieve("anna")
    turn(again, "where is SC-1", "track_order", "SC-1")
    await stock.save(again)

    mine = await ours.retrieve("anna")
    theirs = await stock.retrieve("anna")
    out["same_events"] = list(mine.events) == list(theirs.events)
    out["n_events"] = len(mine.events)
    out["slot"] = mine.get_slot("order_id")
    out["same_state"] = mine.current_state() == theirs.current_state()
    out["missing"] = await ours.retrieve("nobody") is None

    # A new session: only its events are read back, as by Rasa's own store.
    new_session(mine)
    turn(mine, "hi again", "greet")
    await ours.save(mine)
    latest = await ours.retrieve("anna")
    full = await ours.retrieve_full_tracker("anna")
    out["latest_session_same"] = (
        list(latest.events) == list((await stock.retrieve("anna")).events))
    out["latest_n"] = len(latest.events)
    out["full_n"] = len(full.events)

    rows = [json.loads(d) for (d,) in sqlite3.connect(db).execute(
        "SELECT data FROM events ORDER BY id")]
    out["rows"] = len(rows)
    out["fast_equals_rasa"] = fast_deserialise(rows) == deserialise_events(rows)
    try:
        fast_deserialise([{"event": "no_such_event"}])
        out["unknown"] = "accepted"
    except ValueError as error:
        out["unknown"] = str(error)
    print(json.dumps(out))

asyncio.run(main())
'''


def run_in_rasa(script: str, *args: str, **env: str) -> dict[str, Any]:
    """Run ``script`` with ``args`` in .venv-rasa (with ``env`` on Rasa's environment);
    the JSON object it printed last."""
    settings = Settings()
    result = subprocess.run(
        [str(rasa_python(settings)), "-c", script, *args],
        env=rasa_env(settings, **env), capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_tuned_store_reads_and_writes_what_rasas_own_store_does(tmp_path: Path) -> None:
    out = run_in_rasa(SCRIPT, str(tmp_path / "tracker.db"))
    # WAL and synchronous=NORMAL (1): a commit no longer waits for fsyncs.
    assert out["journal_mode"] == "wal"
    assert out["synchronous"] == 1
    # One connection kept, not one opened and closed (with a checkpoint) per session.
    assert out["kept_open"]
    # Rows written by either store are read back identically by both.
    assert out["same_events"] and out["same_state"]
    # The latest session: SessionStarted, action_listen and two turns (4 + 5 events).
    assert out["n_events"] == 11 and out["slot"] == "SC-1"
    assert out["missing"]
    # Only the latest session is read, as Rasa's store does; the full tracker has all.
    assert out["latest_session_same"]
    assert out["latest_n"] < out["full_n"] == out["rows"] == 19
    # The class table gives the very events Rasa's own lookup gives, and refuses the unknown.
    assert out["fast_equals_rasa"]
    assert out["unknown"] == "Unknown event name 'no_such_event'."
