"""Benchmark: agent → shopper relay with many shoppers connected, and memory per idle socket.

Two servers, measured in the same run with the same client code:
- the gateway (``python -m handoff``): an agent's ``message`` frame is validated,
  stored in SQLite (WAL), acknowledged and fanned out to the shopper's socket;
- the baseline: a bare ``websockets`` relay in its own process that forwards a
  frame from the agent's socket to the shopper's socket, storing nothing.

The gateway's chats are put in agent mode through the gateway's own store and
desk code before it starts (one conversation per shopper, spread over the
agents by capacity), so the run needs no Rasa: the relay path does not touch it.
Each shopper connects and resumes its conversation; each agent signs in over
HTTP and the websocket, then sends messages round-robin over its chats at a
fixed total rate. Latency is from just before the agent's send to the shopper's
receipt (both clients run in this process, on one clock). Memory is the server
process's RSS with all shoppers connected and idle, minus its RSS before they
connected, per connection.

Prints a table and writes ``bench/results/agent_relay.json``. Not a test.

    .venv/bin/python bench/agent_relay.py [--shoppers 1000] [--agents 20] [--messages 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from bot.settings import PROJECT_DIR, Settings
from handoff import decisions
from handoff.db.agents import AgentStore
from handoff.db.conversations import ConversationStore
from handoff.db.desk import DeskStore
from shopchat.stack import free_port, settings_env

RESULTS = PROJECT_DIR / "bench" / "results" / "agent_relay.json"
PASSWORD = "bench agent password"

#: The bare relay the gateway is compared with: register by id, forward by id.
BASELINE_SERVER = r'''
import asyncio, json, sys
from websockets.asyncio.server import serve

peers = {}

async def handler(ws):
    hello = json.loads(await ws.recv())
    peers[hello["id"]] = ws
    await ws.send(json.dumps({"type": "welcome"}))
    try:
        async for raw in ws:
            frame = json.loads(raw)
            target = peers.get(frame["to"])
            if target is not None:
                await target.send(raw)
            await ws.send(json.dumps({"type": "ack", "client_id": frame["client_id"]}))
    finally:
        peers.pop(hello["id"], None)

async def main(port):
    # No permessage-deflate, like the gateway's sockets: the same wire for both.
    async with serve(handler, "127.0.0.1", port, max_queue=None, compression=None):
        print("listening", flush=True)
        await asyncio.Future()

asyncio.run(main(int(sys.argv[1])))
'''


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def seed(settings: Settings, shoppers: int, agents: int) -> list[dict[str, Any]]:
    """Conversations in agent mode, assigned round-robin, made with the gateway's own code."""
    store = ConversationStore(settings.gateway_db)
    accounts = AgentStore(store)
    desk = DeskStore(store)
    capacity = -(-shoppers // agents)
    made = [accounts.add(f"agent{i}@bench.example", f"Agent {i}", PASSWORD, capacity=capacity)
            for i in range(agents)]
    chats = []
    for n in range(shoppers):
        conversation, token = store.create_conversation({"type": "product"})
        message, _ = store.append_shopper_message(
            conversation.id, "c1", {"type": "message", "author": "shopper", "text": "a person"}
        )
        store.answer(conversation.id, message.seq, [
            {"type": "handoff", "reason": "bench", "trigger": "requested", "reply_to": 1},
        ])
        (handoff,) = [h for h in desk.new() if h.conversation_id == conversation.id]
        # The desk's own decisions, stored without webhooks (the bench configures none).
        desk.apply(decisions.open_handoff(handoff, {"reason": "bench"}, 0, staffed=True,
                                          page=None, customer_id=None,
                                          support_email="help@bench.example", now=time.time()))
        queued = desk.get(handoff.id)
        assert queued is not None
        agent = made[n % agents]
        desk.apply(decisions.assign(queued, agent, time.time()))
        last_seq = store.get(conversation.id).last_seq  # type: ignore[union-attr]
        chats.append({"conversation_id": conversation.id, "token": token, "last_seq": last_seq,
                      "agent": agent.email})
    store.close()
    return chats


class Harness:
    """The same load against either server: shopper sockets, agent sockets, timed sends."""

    def __init__(self, rate: float, messages: int) -> None:
        self.rate = rate
        self.messages = messages
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.done = asyncio.Event()

    def received(self, client_id: str) -> None:
        started = self.sent_at.pop(client_id, None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)
            if len(self.latencies) >= self.messages:
                self.done.set()

    async def shopper_reader(self, ws: ClientConnection, pick: Callable[[dict[str, Any]],
                             str | None]) -> None:
        async for raw in ws:
            client_id = pick(json.loads(raw))
            if client_id is not None:
                self.received(client_id)

    async def drive(self, senders: list[Callable[[str], Awaitable[None]]]) -> float:
        """Send ``messages`` frames round-robin over ``senders`` at ``rate`` per second."""
        interval = 1 / self.rate
        started = time.perf_counter()
        for i in range(self.messages):
            client_id = f"m{i}"
            target = started + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sent_at[client_id] = time.perf_counter()
            await senders[i % len(senders)](client_id)
        await asyncio.wait_for(self.done.wait(), timeout=120)
        return time.perf_counter() - started


async def open_all(factories: list[Callable[[], Awaitable[Any]]], batch: int = 100) -> list[Any]:
    results: list[Any] = []
    for i in range(0, len(factories), batch):
        results += await asyncio.gather(*(f() for f in factories[i:i + batch]))
    return results


async def run_gateway(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = Settings(port=free_port(), rasa_port=free_port(), action_port=free_port(),
                        var_dir=workdir / "var", log_level="warning",
                        queue_auto_assign=False)
    chats = seed(settings, args.shoppers, args.agents)
    env = {**os.environ, **settings_env(settings, "unused"),
           "SHOPCHAT_QUEUE_AUTO_ASSIGN": "false"}
    server = subprocess.Popen([sys.executable, "-m", "handoff"], cwd=PROJECT_DIR, env=env)
    http = f"http://127.0.0.1:{settings.port}"
    try:
        # /healthz is 503 without Rasa; the gateway is up once it answers at all.
        await _wait_http(f"{http}/healthz")
        time.sleep(1)
        before = rss_kib(server.pid)
        harness = Harness(args.rate, args.messages)

        async def open_shopper(chat: dict[str, Any]) -> ClientConnection:
            ws = await connect(f"ws://127.0.0.1:{settings.port}/ws/chat", max_queue=None)
            await ws.send(json.dumps({"type": "hello", "conversation_id": chat["conversation_id"],
                                      "resume_token": chat["token"],
                                      "last_seq": chat["last_seq"]}))
            assert json.loads(await ws.recv())["type"] == "welcome"
            return ws

        shoppers = await open_all([lambda c=c: open_shopper(c) for c in chats])
        await asyncio.sleep(2)
        after = rss_kib(server.pid)

        def pick(frame: dict[str, Any]) -> str | None:
            if frame.get("type") == "message" and frame.get("author") == "agent":
                return str(frame["text"])
            return None

        readers = [asyncio.create_task(harness.shopper_reader(ws, pick)) for ws in shoppers]
        tokens = {}
        async with aiohttp.ClientSession() as session:
            for i in range(args.agents):
                email = f"agent{i}@bench.example"
                async with session.post(f"{http}/api/agents/login",
                                        json={"email": email, "password": PASSWORD}) as r:
                    tokens[email] = (await r.json())["token"]
        agents: dict[str, ClientConnection] = {}
        for email, token in tokens.items():
            ws = await connect(f"ws://127.0.0.1:{settings.port}/ws/agent", max_queue=None)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            agents[email] = ws
        drains = [asyncio.create_task(_drain(ws)) for ws in agents.values()]

        def sender(chat: dict[str, Any]) -> Callable[[str], Awaitable[None]]:
            async def send(client_id: str) -> None:
                await agents[chat["agent"]].send(json.dumps({
                    "type": "message", "conversation_id": chat["conversation_id"],
                    "client_id": client_id, "text": client_id}))
            return send

        wall = await harness.drive([sender(c) for c in chats])
        for task in [*readers, *drains]:
            task.cancel()
        for ws in [*shoppers, *agents.values()]:
            await ws.close()
        return {"relay": percentiles(harness.latencies), "wall_s": round(wall, 1),
                "rss_before_kib": before, "rss_connected_kib": after,
                "kib_per_idle_connection": round((after - before) / len(chats), 2)}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


async def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        time.sleep(1)
        before = rss_kib(server.pid)
        harness = Harness(args.rate, args.messages)

        async def open_peer(peer_id: str) -> ClientConnection:
            ws = await connect(f"ws://127.0.0.1:{port}", max_queue=None)
            await ws.send(json.dumps({"id": peer_id}))
            await ws.recv()
            return ws

        ids = [f"s{i}" for i in range(args.shoppers)]
        shoppers = await open_all([lambda i=i: open_peer(i) for i in ids])
        await asyncio.sleep(2)
        after = rss_kib(server.pid)
        readers = [asyncio.create_task(harness.shopper_reader(
            ws, lambda f: str(f["client_id"]) if "to" in f else None)) for ws in shoppers]
        agents = [await open_peer(f"a{i}") for i in range(args.agents)]
        drains = [asyncio.create_task(_drain(ws)) for ws in agents]

        def sender(n: int) -> Callable[[str], Awaitable[None]]:
            async def send(client_id: str) -> None:
                await agents[n % args.agents].send(json.dumps(
                    {"to": ids[n], "client_id": client_id, "text": client_id}))
            return send

        wall = await harness.drive([sender(n) for n in range(args.shoppers)])
        for task in [*readers, *drains]:
            task.cancel()
        for ws in [*shoppers, *agents]:
            await ws.close()
        return {"relay": percentiles(harness.latencies), "wall_s": round(wall, 1),
                "rss_before_kib": before, "rss_connected_kib": after,
                "kib_per_idle_connection": round((after - before) / len(ids), 2)}
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0, help="agent messages per second")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = asyncio.run(run_gateway(args, Path(tmp)))
    baseline = asyncio.run(run_baseline(args))
    result = {
        "benchmark": "agent_relay",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "params": {"shoppers": args.shoppers, "agents": args.agents,
                   "messages": args.messages, "rate_per_s": args.rate},
        "gateway": gateway,
        "baseline_websockets_relay": baseline,
    }
    table = Table(title=f"agent → shopper relay, {args.shoppers} shoppers, {args.agents} agents, "
                        f"{args.rate:.0f} msg/s, {os.cpu_count()} cores")
    for column in ("server", "p50 ms", "p95 ms", "p99 ms", "KiB / idle socket"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, figures in (("bare websockets relay", baseline), ("shopchat gateway", gateway)):
        relay = figures["relay"]
        table.add_row(name, str(relay["p50_ms"]), str(relay["p95_ms"]), str(relay["p99_ms"]),
                      str(figures["kib_per_idle_connection"]))
    Console().print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
