"""Benchmark: one bot turn (shopper text in → last bot reply out).

Measured in the same run two ways, against one `shopchat up` stack:
- through the gateway's websocket (`/ws/chat`: store, relay to Rasa, store, fan out);
- straight against Rasa's REST webhook (the baseline: what the gateway adds is the ratio).
Each at 1 and at 20 concurrent shoppers. Also how long the stack takes to start
(until Rasa answers, until the whole stack is ready), the CPU time each process
spends per turn (steadier than the clock when the machine does other work too),
and each process's resident memory after the run. Prints tables and writes
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


def processes(root: int) -> dict[str, dict[str, int]]:
    """Resident memory (KiB) and CPU time used so far (clock ticks) of the stack's
    processes, by role: each descendant of ``root`` counts for the nearest process
    (itself or an ancestor) of a known role, so the action server's worker processes
    count for the action server."""
    roles = {"rasa": " run --enable-api", "action server": "-m rasa_sdk", "gateway": "-m handoff"}
    parent: dict[int, int] = {}
    cmdline: dict[int, str] = {}
    readings: dict[int, dict[str, int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            parent[pid] = int(stat[1])
            cmdline[pid] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            rss = next((int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                        if line.startswith("VmRSS:")), 0)
            readings[pid] = {"rss_kib": rss, "cpu_ticks": int(stat[11]) + int(stat[12])}
        except (OSError, ValueError, IndexError):
            continue

    def role_of(pid: int) -> str | None:
        """The role of the nearest known process from ``pid`` up, if it descends from
        ``root`` (other stacks on the machine, a test run's say, do not count)."""
        role = None
        while pid in parent and pid not in (0, 1):
            if pid == root:
                return role
            line = cmdline.get(pid, "")
            for name, marker in roles.items():
                if role is None and marker in line and not line.startswith("/bin/sh"):
                    role = name  # not honcho's shell
            pid = parent[pid]
        return None

    found: dict[str, dict[str, int]] = {}
    for pid in parent:
        role = role_of(pid)
        if role is not None:
            total = found.setdefault(role, {"rss_kib": 0, "cpu_ticks": 0})
            for key, value in readings[pid].items():
                total[key] += value
    return found


def cpu_ms_per_turn(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
                    turns: int) -> dict[str, float]:
    """CPU time each process used per turn between two readings: what a turn costs,
    steadier than wall-clock figures on a machine that is doing other work too."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return {role: round((after[role]["cpu_ticks"] - before[role]["cpu_ticks"]) * tick_ms / turns, 2)
            for role in after if role in before}


async def rasa_answers(url: str, timeout: float) -> None:
    """Wait until Rasa's HTTP server answers (it loads the model before it listens)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"Rasa did not answer at {url} within {timeout:.0f} s")


def save(path: Path, result: dict[str, Any], console: Console) -> None:
    """Write a benchmark's figures to ``path`` (JSON), say so, and print them as one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path.relative_to(PROJECT_DIR)}")
    print(json.dumps(result))


def summarise(latencies: list[float], wall: float) -> dict[str, Any]:
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


async def run_level(kind: str, settings: Settings, shoppers: int, turns: int) -> dict[str, Any]:
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


async def measure(settings: Settings, turns: int, shoppers: int, root: int) -> dict[str, Any]:
    await run_level("gateway", settings, 2, 4)  # warm-up: model graphs, connections, caches
    await run_level("rasa", settings, 2, 4)
    figures: dict[str, Any] = {}
    for level in (1, shoppers):
        single_turns = turns * 4 if level == 1 else turns
        # Alternate the order so neither path always runs on a warmer server.
        for kind in ("rasa", "gateway"):
            before = processes(root)
            figures[f"{kind}_c{level}"] = row = await run_level(kind, settings, level,
                                                               single_turns)
            row["cpu_ms_per_turn"] = cpu_ms_per_turn(before, processes(root),
                                                     int(row["turns"]))
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
        started = time.perf_counter()
        stack = spawn(Path(tmp) / "var", model, uuid.uuid4().hex)
        try:
            asyncio.run(rasa_answers(stack.settings.rasa_url + "/", timeout=300))
            rasa_start = time.perf_counter() - started
            stack.wait_for_line("ready:", timeout=300)
            stack_start = time.perf_counter() - started
            figures = asyncio.run(measure(stack.settings, args.turns, args.shoppers,
                                          stack.process.pid))
            memory = processes(stack.process.pid)
        finally:
            stack.stop()
    figures["start_s"] = {"rasa": round(rasa_start, 1), "stack": round(stack_start, 1)}
    figures["rss_mib"] = {role: round(reading["rss_kib"] / 1024)
                          for role, reading in memory.items()}
    result = {
        "benchmark": "bot_turn",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "model": model.name,
        "texts": TEXTS,
        **figures,
    }
    table = Table(title=f"bot turn, {os.cpu_count()} cores")
    roles = ("gateway", "rasa", "action server")
    for column in ("path", "shoppers", "turns", "p50 ms", "p95 ms", "turns/s",
                   *(f"{role} CPU ms/turn" for role in roles)):
        table.add_column(column, justify="right")
    for level in (1, args.shoppers):
        for kind in ("rasa", "gateway"):
            row = figures[f"{kind}_c{level}"]
            table.add_row(kind, str(level), str(row["turns"]), str(row["p50_ms"]),
                          str(row["p95_ms"]), str(row["turns_per_s"]),
                          *(str(row["cpu_ms_per_turn"].get(role, "")) for role in roles))
        ratio = figures[f"ratio_c{level}"]
        table.add_row("gateway/rasa", str(level), "", str(ratio["p50_ms"]),
                      str(ratio["p95_ms"]), str(ratio["turns_per_s"]))
    console.print(table)
    console.print(f"start: Rasa answers after {figures['start_s']['rasa']} s, the stack is "
                  f"ready after {figures['start_s']['stack']} s; resident memory after the "
                  "run: " + ", ".join(f"{role} {mib} MiB"
                                      for role, mib in figures["rss_mib"].items()))
    save(RESULTS, result, console)


if __name__ == "__main__":
    main()
