"""Benchmark: bot turns through the gateway with one Rasa replica against two, on the same
PostgreSQL tracker store and Redis lock store, in one run.

Starts throwaway PostgreSQL and Redis servers (tests/scaleout/servers.py), then
`shopchat up --rasa-replicas 2` (two Rasa servers, each with its own action server, and a
gateway that spreads turns over both), and a second gateway process that uses only the
first replica; for reference, the default stack too (one Rasa on SQLite, `shopchat up`).
The gateways get the same load in alternating rounds: ``--shoppers`` concurrent
shoppers, ``--turns`` turns each, the text mix of bench/bot_turn.py. Prints a table and
writes bench/results/rasa_replicas.json (medians over the rounds). Not a test: nothing
here asserts a speed. On a machine with few cores, two replicas compete with each other,
the action servers and the gateways for the same cores.

    flock /tmp/bench.lock .venv/bin/python bench/rasa_replicas.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# tests/ is no installed package (the throwaway servers live with the scale-out tests), and
# bench/bot_turn.py has the shopper and the summary this compares with.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bot_turn import TEXTS, gateway_shopper, save, summarise

from bot.settings import PROJECT_DIR, Settings
from shopchat.stack import free_port, settings_env, spawn, wait_until_healthy
from shopchat.training import current_model
from tests.scaleout.servers import running_postgres, running_redis

RESULTS = PROJECT_DIR / "bench" / "results" / "rasa_replicas.json"


async def load(port: int, shoppers: int, turns: int) -> dict[str, float]:
    """``shoppers`` concurrent shoppers of ``turns`` turns each through the gateway."""
    started = time.perf_counter()
    url = f"ws://127.0.0.1:{port}/ws/chat"
    results = await asyncio.gather(*(gateway_shopper(url, turns) for _ in range(shoppers)))
    return summarise([t for r in results for t in r], time.perf_counter() - started)


def replica_requests(port: int) -> list[int]:
    """Requests the gateway sent to each Rasa replica so far (its /healthz)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        rasa = json.loads(response.read())["dependencies"]["rasa"]
    return [replica["requests"] for replica in rasa.get("replicas", [])]


def measure(gateways: dict[str, int], rounds: int, shoppers: int,
            turns: int) -> dict[str, Any]:
    for port in gateways.values():  # warm-up: model graphs, connections, caches
        asyncio.run(load(port, 2, 4))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in gateways}
    names = list(gateways)
    for n in range(rounds):
        # Rotate the order so no setup always runs first, on a cooler machine.
        for name in names[n % len(names):] + names[:n % len(names)]:
            runs[name].append(asyncio.run(load(gateways[name], shoppers, turns)))
    return {name: {"rounds": rows, **{key: statistics.median(row[key] for row in rows)
                                      for key in ("p50_ms", "p95_ms", "turns_per_s")}}
            for name, rows in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="turns per shopper")
    parser.add_argument("--shoppers", type=int, default=20, help="concurrent shoppers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setup")
    args = parser.parse_args()
    console = Console()
    model = current_model(Settings())
    load_before = os.getloadavg()[0]
    with running_postgres() as postgres, running_redis() as redis, \
            tempfile.TemporaryDirectory(prefix="shopchat-bench-") as tmp:
        token = uuid.uuid4().hex
        stack = spawn(Path(tmp) / "var", model, token, rasa_replicas=2,
                      env={"SHOPCHAT_DATABASE_URL": postgres.url,
                           "SHOPCHAT_REDIS_URL": redis.url})
        default = spawn(Path(tmp) / "var-sqlite", model, token)
        single: subprocess.Popen[bytes] | None = None
        try:
            stack.wait_for_line("ready:", timeout=300)
            default.wait_for_line("ready:", timeout=300)
            # A second gateway, on the first replica only (rasa_replicas=1 gives it only
            # the first of the stack's Rasa servers and action servers).
            one = stack.settings.model_copy(update={
                "port": free_port(), "var_dir": Path(tmp) / "var-one", "rasa_replicas": 1})
            single = subprocess.Popen([sys.executable, "-m", "handoff"],
                                      env=settings_env(one, token), cwd=PROJECT_DIR,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not wait_until_healthy(f"http://127.0.0.1:{one.port}/healthz", 120):
                raise RuntimeError("the one-replica gateway did not become healthy")
            gateways = {"one replica": one.port, "two replicas": stack.settings.port,
                        "sqlite, one rasa": default.settings.port}
            figures = measure(gateways, args.rounds, args.shoppers, args.turns)
            split = replica_requests(stack.settings.port)
            left_out = [line.split("left out: ", 1)[1].strip() for line in stack.lines
                        if "left out: " in line]
        finally:
            if single is not None:
                single.terminate()
                single.wait(timeout=30)
            stack.stop()
            default.stop()
    result = {
        "benchmark": "rasa_replicas",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_before": round(load_before, 2)},
        "model": model.name,
        "texts": TEXTS,
        "shoppers": args.shoppers,
        "turns_per_shopper": args.turns,
        "setups": figures,
        "two_replicas_requests_per_replica": split,
        "two_replicas_left_out_because": left_out,
        "speedup_turns_per_s": round(figures["two replicas"]["turns_per_s"]
                                     / figures["one replica"]["turns_per_s"], 3),
    }
    table = Table(title=f"bot turns through the gateway, {args.shoppers} shoppers, "
                        f"{os.cpu_count()} cores (median of {args.rounds} rounds)")
    for column in ("setup", "turns/s", "p50 ms", "p95 ms", "turns/s per round"):
        table.add_column(column, justify="right")
    for name, row in figures.items():
        table.add_row(name, str(row["turns_per_s"]), str(row["p50_ms"]), str(row["p95_ms"]),
                      " ".join(str(r["turns_per_s"]) for r in row["rounds"]))
    console.print(table)
    console.print(f"two replicas / one: {result['speedup_turns_per_s']}x turns/s; requests "
                  f"per replica with two: {split}; a replica left out {len(left_out)} times")
    save(RESULTS, result, console)


if __name__ == "__main__":
    main()
