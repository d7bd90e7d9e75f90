"""Benchmark: one bot turn (shopper text in → last bot reply out).

Measured in the same run two ways, against one `shopchat up` stack:
- through the gateway's websocket (`/ws/chat`: store, relay to Rasa, store, fan out);
- straight against Rasa's REST webhook (the baseline: what the gateway adds is the ratio).
Each at 1 and at 20 concurrent shoppers. Prints a table and writes
bench/results/bot_turn.json. Not a test: nothing here asserts a speed.

    .venv/bin/python bench/bot_turn.py [--turns 10] [--shoppers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect

from bot.settings import PROJECT_DIR, Settings
from shopchat.stack import spawn
from shopchat.training import current_model

#: A mix of turns: rules only (greet, thanks), and ones that call the action server.
TEXTS = ["hi", "are you a bot?", "what's the weather in Oslo tomorrow", "thanks a lot"]
RESULTS = PROJECT_DIR / "bench" / "results" / "bot_turn.json"


def summarise(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "turns": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "turns_per_s": round(len(ordered) / wall, 1),
    }


async def rasa_shopper(session: aiohttp.ClientSession, url: str, turns: int) -> list[float]:
    sender = uuid.uuid4().hex
    latencies = []
    for i in range(turns):
        started = time.perf_counter()
        body = {"sender": sender, "message": TEXTS[i % len(TEXTS)]}
        async with session.post(url, json=body) as response:
            replies = await response.json()
        latencies.append(time.perf_counter() - started)
        assert replies, "Rasa sent no reply"
    return latencies


async def gateway_shopper(url: str, turns: int) -> list[float]:
    latencies = []
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        for i in range(turns):
            started = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "client_id": f"b{i}",
                                      "text": TEXTS[i % len(TEXTS)]}))
            got_reply = False
            # The turn ends when the bot stops typing, right after its last reply.
            while True:
                frame = json.loads(await ws.recv())
                got_reply |= frame.get("author") == "bot"
                if frame["type"] == "typing" and not frame["on"]:
                    break
            latencies.append(time.perf_counter() - started)
            assert got_reply, "the gateway relayed no bot reply"
    return latencies


async def run_level(kind: str, settings: Settings, shoppers: int, turns: int) -> dict[str, float]:
    started = time.perf_counter()
    if kind == "rasa":
        url = f"{settings.rasa_url}/webhooks/rest/webhook"
        connector = aiohttp.TCPConnector(limit=shoppers)
        async with aiohttp.ClientSession(connector=connector) as session:
            results = await asyncio.gather(*(rasa_shopper(session, url, turns)
                                             for _ in range(shoppers)))
    else:
        url = f"ws://127.0.0.1:{settings.port}/ws/chat"
        results = await asyncio.gather(*(gateway_shopper(url, turns) for _ in range(shoppers)))
    wall = time.perf_counter() - started
    return summarise([t for r in results for t in r], wall)


async def measure(settings: Settings, turns: int, shoppers: int) -> dict[str, Any]:
    await run_level("gateway", settings, 2, 4)  # warm-up: model graphs, connections, caches
    await run_level("rasa", settings, 2, 4)
    figures: dict[str, Any] = {}
    for level in (1, shoppers):
        single_turns = turns * 4 if level == 1 else turns
        # Alternate the order so neither path always runs on a warmer server.
        figures[f"rasa_c{level}"] = await run_level("rasa", settings, level, single_turns)
        figures[f"gateway_c{level}"] = await run_level("gateway", settings, level, single_turns)
        figures[f"ratio_c{level}"] = {
            key: round(figures[f"gateway_c{level}"][key] / figures[f"rasa_c{level}"][key], 3)
            for key in ("p50_ms", "p95_ms", "turns_per_s")
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="turns per shopper")
    parser.add_argument("--shoppers", type=int, default=20, help="the concurrent level")
    args = parser.parse_args()
    console = Console()
    model = current_model(Settings())
    with tempfile.TemporaryDirectory(prefix="shopchat-bench-") as tmp:
        stack = spawn(Path(tmp) / "var", model, uuid.uuid4().hex)
        try:
            stack.wait_for_line("ready:", timeout=300)
            figures = asyncio.run(measure(stack.settings, args.turns, args.shoppers))
        finally:
            stack.stop()
    result = {
        "benchmark": "bot_turn",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "model": model.name,
        "texts": TEXTS,
        **figures,
    }
    table = Table(title=f"bot turn, {os.cpu_count()} cores")
    for column in ("path", "shoppers", "turns", "p50 ms", "p95 ms", "turns/s"):
        table.add_column(column, justify="right")
    for level in (1, args.shoppers):
        for kind in ("rasa", "gateway"):
            row = figures[f"{kind}_c{level}"]
            table.add_row(kind, str(level), str(row["turns"]), str(row["p50_ms"]),
                          str(row["p95_ms"]), str(row["turns_per_s"]))
        ratio = figures[f"ratio_c{level}"]
        table.add_row("gateway/rasa", str(level), "", str(ratio["p50_ms"]),
                      str(ratio["p95_ms"]), str(ratio["turns_per_s"]))
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {RESULTS.relative_to(PROJECT_DIR)}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
