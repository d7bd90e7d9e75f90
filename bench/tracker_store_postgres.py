"""Benchmark: one turn's tracker read and write on PostgreSQL, shopchat's tracker store
(bot/tracker_store.py) against Rasa's own SQLTrackerStore, in one run.

Starts a throwaway PostgreSQL server (tests/scaleout/servers.py) and runs, inside
``.venv-rasa``, 30 conversations of 12 turns with each store (5 events a turn, the
project's domain), each store in its own schema, in alternating rounds. A turn is what
Rasa does with its tracker store in a turn: read the tracker back, add the turn's
events, save. Prints and writes bench/results/tracker_store_postgres.json (milliseconds
per turn, the median of each round). Not a test: nothing here asserts a speed.

    flock /tmp/bench.lock .venv/bin/python bench/tracker_store_postgres.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

# tests/ is no installed package (the throwaway server lives with the scale-out tests).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import PROJECT_DIR, Settings
from shopchat.rasa_env import rasa_env, rasa_python
from tests.scaleout.servers import running_postgres

RESULTS = PROJECT_DIR / "bench" / "results" / "tracker_store_postgres.json"

#: Runs inside .venv-rasa: argv[1] the database URL, argv[2] the rounds; prints JSON.
SCRIPT = r'''
import asyncio, json, statistics, sys, time
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker
from bot.tracker_store import ShopTrackerStore, postgres_schema_url

url, rounds = sys.argv[1], int(sys.argv[2])
domain = Domain.load("bot/domain.yml")

def turn(tracker, n):
    tracker.update(UserUttered(f"text {n}", {"name": "greet", "confidence": 0.9}, []))
    tracker.update(SlotSet("order_id", f"SC-{n}"))
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(BotUttered("hi", {"elements": None}, {"utter_action": "utter_greet"}))
    tracker.update(ActionExecuted("action_listen"))

async def conversations(store, tag):
    times = []
    for c in range(30):
        sender = f"{tag}-{c}"
        tracker = DialogueStateTracker(sender, domain.slots)
        for event in (ActionExecuted("action_session_start"), SessionStarted(),
                      ActionExecuted("action_listen")):
            tracker.update(event)
        await store.save(tracker)
        for n in range(12):
            started = time.perf_counter()
            tracker = await store.retrieve(sender)
            turn(tracker, n)
            await store.save(tracker)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000

async def main():
    stores = {
        "rasa SQLTrackerStore": SQLTrackerStore(
            domain=domain, dialect="postgresql", host=postgres_schema_url(url, "stock")),
        "shopchat ShopTrackerStore": ShopTrackerStore(
            domain=domain, dialect="postgresql", host=url, schema="rasa"),
    }
    out = {name: [] for name in stores}
    for r in range(rounds):
        for name in (list(stores) if r % 2 == 0 else list(reversed(stores))):
            out[name].append(round(await conversations(stores[name], f"{r}{name[:4]}"), 2))
    print(json.dumps(out))

asyncio.run(main())
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    load_before = os.getloadavg()[0]
    with running_postgres() as postgres:
        result = subprocess.run(
            [str(rasa_python(settings)), "-c", SCRIPT, postgres.url, str(args.rounds)],
            env=rasa_env(settings, SQL_POOL_SIZE="2", SQL_MAX_OVERFLOW="2"),
            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=1200, check=False)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    rounds: dict[str, list[float]] = json.loads(result.stdout.strip().splitlines()[-1])
    figures = {name: {"ms_per_turn_rounds": values,
                      "ms_per_turn_median": round(statistics.median(values), 2)}
               for name, values in rounds.items()}
    output = {
        "benchmark": "tracker_store_postgres",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_before": round(load_before, 2)},
        "postgres": "15, fsync=off, loopback",
        "stores": figures,
    }
    for name, row in figures.items():
        print(f"{name:28} {row['ms_per_turn_median']:7.2f} ms per turn "
              f"(rounds: {', '.join(map(str, row['ms_per_turn_rounds']))})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(PROJECT_DIR)}")


if __name__ == "__main__":
    main()
