"""bot/tracker_store.py on a real PostgreSQL server, run where Rasa runs (``.venv-rasa``):
the events table in its own schema, created by replicas starting at once, read back as
Rasa's own store reads it, with the pool sizes `shopchat up` sets."""

from __future__ import annotations

import pytest

from tests.bot.test_tracker_store import PRELUDE, run_in_rasa
from tests.scaleout.servers import Postgres

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

#: Runs inside .venv-rasa; prints one JSON object.
SCRIPT = PRELUDE + r'''
from concurrent.futures import ThreadPoolExecutor
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from bot.tracker_store import ShopTrackerStore, postgres_schema_url

url = sys.argv[1]

def make(_):
    return ShopTrackerStore(domain=domain, dialect="postgresql", host=url, schema="rasa")

async def main():
    out = {}
    # Two replicas starting at once both create the schema and the table.
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(make, range(4)))
    ours, other = stores[0], stores[1]
    out["pool"] = [ours.engine.pool.size(), ours.engine.pool._max_overflow]
    stock = SQLTrackerStore(domain=domain, dialect="postgresql",
                            host=postgres_schema_url(url, "rasa"))

    tracker = DialogueStateTracker("anna", domain.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen"),
                  UserUttered("where is SC-1", {"name": "track_order", "confidence": 0.9}),
                  SlotSet("order_id", "SC-1"), ActionExecuted("action_listen")):
        tracker.update(event)
    await ours.save(tracker)
    theirs = await other.retrieve("anna")
    out["slot_on_other"] = theirs.get_slot("order_id")
    theirs.update(UserUttered("thanks", {"name": "greet", "confidence": 0.9}))
    await other.save(theirs)
    mine, rasas = await ours.retrieve("anna"), await stock.retrieve("anna")
    out["same_events"] = list(mine.events) == list(rasas.events)
    out["latest"] = mine.latest_message.text
    try:
        ShopTrackerStore(domain=domain, dialect="sqlite", db="x.db", schema="rasa")
        out["schema_on_sqlite"] = "accepted"
    except ValueError as error:
        out["schema_on_sqlite"] = str(error)
    print(json.dumps(out))

asyncio.run(main())
'''


def test_the_store_keeps_its_table_in_its_schema_shared_by_every_replica(
    postgres: Postgres,
) -> None:
    out = run_in_rasa(SCRIPT, postgres.url, SQL_POOL_SIZE="2", SQL_MAX_OVERFLOW="3")
    # The pool `shopchat up` sizes (SQL_POOL_SIZE, SQL_MAX_OVERFLOW), not Rasa's 50 + 100.
    assert out["pool"] == [2, 3]
    # What one store saved, another (another replica) reads, and adds to; Rasa's own store
    # on the same schema reads the very same events.
    assert out["slot_on_other"] == "SC-1"
    assert out["same_events"] and out["latest"] == "thanks"
    assert "schema needs dialect postgresql" in out["schema_on_sqlite"]
    assert postgres.psql("SELECT count(*) FROM rasa.events WHERE sender_id = 'anna'") == "7"
    assert postgres.schemas_with_rasa_events() == ["rasa"]
