"""Benchmark: agent → shopper relay with many shoppers connected, and memory per idle socket.

Two servers, measured in the same run with the same client code:
- the gateway (``python -m handoff``): an agent's ``message`` frame is validated,
  stored in SQLite (WAL), acknowledged and fanned out to the shopper's socket;
- the baseline: a bare ``websockets`` relay in its own process that forwards a
  frame from the agent's socket to the shopper's socket, storing nothing.

Both servers run at once, each with its own shoppers and agents connected, and the
agent messages go to them in alternating blocks (gateway, baseline, baseline, gateway,
…), so that a machine whose speed drifts during the run (a shared virtual machine)
slows both alike. ``--runs`` repeats the whole measurement with fresh servers; the
figures reported are each figure's median over the runs, every run kept beside them.

The gateway's chats are put in agent mode through the gateway's own store and
desk code before it starts (one conversation per shopper, spread over the
agents by capacity), so the run needs no Rasa: the relay path does not touch it.
Each shopper connects and resumes its conversation; each agent signs in over
HTTP and the websocket, then sends messages round-robin over its chats at a
fixed total rate. Latency is from just before the agent's send to the shopper's
receipt (both clients run in this process, on one clock).

``--idle N`` adds N more shopper sockets to each server that only connect and stay
idle (bot-mode conversations on the gateway), held by ``--holders`` helper processes
per server so that this process keeps only the measured clients: ``--idle 9000`` is
the case of 10,000 shoppers connected to one gateway process, the relay measured
while they are. The clients send no pings of their own (browsers do not); each
server keeps its own keep-alive (the gateway's heartbeat, websockets' ping).

Memory is each server process's RSS: per idle socket is (RSS with every socket
connected and idle - RSS before any connected) / sockets, as before; the marginal
figure is (RSS at the end - RSS with half the measured shoppers connected) / the
sockets connected in between, which leaves out what the first connections cost
once (SQLite's page cache filling, code paths run the first time).

Prints a table and writes ``bench/results/agent_relay.json`` (with ``--idle``:
``agent_relay_idle<N+shoppers>.json``). Not a test.

    .venv/bin/python bench/agent_relay.py [--shoppers 1000] [--agents 20] [--messages 4000]
        [--rate 200] [--runs 1] [--idle 0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

RESULTS = PROJECT_DIR / "bench" / "results"
PASSWORD = "bench agent password"
GATEWAY, BASELINE = "gateway", "baseline_websockets_relay"

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
    async with serve(handler, "127.0.0.1", port, max_queue=None, compression=None,
                     backlog=4096):
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


def seed(settings: Settings, shoppers: int, agents: int, idle: int) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]]]:
    """Conversations in agent mode, assigned round-robin, made with the gateway's own code;
    and ``idle`` conversations with the bot. Returns both as hello frames' fields."""
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
    waiting = []
    for _ in range(idle):
        conversation, token = store.create_conversation({"type": "home"})
        waiting.append({"conversation_id": conversation.id, "token": token, "last_seq": 0})
    store.close()
    return chats, waiting


def gateway_hello(chat: dict[str, Any]) -> dict[str, Any]:
    return {"type": "hello", "conversation_id": chat["conversation_id"],
            "resume_token": chat["token"], "last_seq": chat["last_seq"]}


async def open_socket(url: str, hello: dict[str, Any]) -> ClientConnection:
    """A client socket as a browser's: no pings of its own, no compression offered."""
    ws = await connect(url, max_queue=None, ping_interval=None, compression=None)
    await ws.send(json.dumps(hello))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def open_all(url: str, hellos: list[dict[str, Any]], batch: int = 100
                   ) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    for i in range(0, len(hellos), batch):
        sockets += await asyncio.gather(*(open_socket(url, h) for h in hellos[i:i + batch]))
    return sockets


class Holders:
    """Helper processes holding idle sockets open (``--hold``), started and stopped together."""

    def __init__(self, url: str, hellos: list[dict[str, Any]], processes: int) -> None:
        self.url = url
        self.shares = [hellos[i::processes] for i in range(processes)] if hellos else []
        self.children: list[subprocess.Popen[str]] = []

    async def open(self) -> None:
        for share in self.shares:
            child = subprocess.Popen([sys.executable, __file__, "--hold"], cwd=PROJECT_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert child.stdin is not None
            child.stdin.write(json.dumps({"url": self.url, "hellos": share}) + "\n")
            child.stdin.flush()
            self.children.append(child)
        for child in self.children:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            if not line.startswith("holding"):
                raise RuntimeError(f"an idle-socket holder failed: {line!r}")

    def close(self) -> None:
        for child in self.children:
            assert child.stdin is not None
            child.stdin.close()
        for child in self.children:
            child.wait(timeout=120)


async def hold() -> None:
    """``--hold``: open the sockets named on stdin, say so, keep them until stdin closes."""
    spec = json.loads(await asyncio.to_thread(sys.stdin.readline))
    sockets = await open_all(spec["url"], spec["hellos"])
    drains = [asyncio.create_task(_drain(ws)) for ws in sockets]
    print(f"holding {len(sockets)}", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    for task in drains:
        task.cancel()
    for ws in sockets:
        await ws.close()


@dataclass
class Server:
    """One server under test, its clients, and what was measured on it."""

    name: str
    process: subprocess.Popen[str]
    url: str
    #: The hellos of the measured shoppers (this process) and of the idle ones (holders).
    hellos: list[dict[str, Any]]
    idle_hellos: list[dict[str, Any]]
    #: The gateway's: its HTTP address and the seeded chats (conversation, token, agent).
    http: str = ""
    chats: list[dict[str, Any]] = field(default_factory=list)
    #: One send per measured shopper: (agent socket, frame for this client_id).
    make_frame: Callable[[int, str], dict[str, Any]] = lambda n, client_id: {}
    agent_of: Callable[[int], ClientConnection] | None = None
    #: A shopper's received frame → the client_id it carries, if it is a relayed message.
    pick: Callable[[dict[str, Any]], str | None] = lambda frame: None
    shoppers: list[ClientConnection] = field(default_factory=list)
    agents: list[ClientConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    holders: Holders | None = None
    rss: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    expected: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0

    def received(self, client_id: str) -> None:
        started = self.sent_at.pop(client_id, None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)
            if len(self.latencies) >= self.expected:
                self.arrived.set()

    async def read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            client_id = self.pick(json.loads(raw))
            if client_id is not None:
                self.received(client_id)

    async def connect_shoppers(self, holders: int) -> None:
        """Connect every shopper, noting the server's RSS before, at half the measured
        shoppers, with all of them, and with the idle ones too."""
        half = len(self.hellos) // 2
        self.rss["before"] = rss_kib(self.process.pid)
        self.shoppers = await open_all(self.url, self.hellos[:half])
        await asyncio.sleep(2)
        self.rss["half"] = rss_kib(self.process.pid)
        self.shoppers += await open_all(self.url, self.hellos[half:])
        if self.idle_hellos:
            self.holders = Holders(self.url, self.idle_hellos, holders)
            await self.holders.open()
        await asyncio.sleep(2)
        self.rss["connected"] = rss_kib(self.process.pid)
        self.tasks += [asyncio.create_task(self.read(ws)) for ws in self.shoppers]

    async def block(self, count: int, rate: float) -> None:
        """Send ``count`` messages at ``rate`` per second, round-robin over the shoppers,
        and wait for every one to arrive."""
        self.expected = len(self.latencies) + count
        self.arrived.clear()
        interval = 1 / rate
        started = time.perf_counter()
        for i in range(count):
            n = self.sent
            self.sent += 1
            client_id = f"m{n}"
            delay = started + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = json.dumps(self.make_frame(n % len(self.hellos), client_id))
            assert self.agent_of is not None
            self.sent_at[client_id] = time.perf_counter()
            await self.agent_of(n % len(self.hellos)).send(frame)
        try:
            await asyncio.wait_for(self.arrived.wait(), timeout=120)
        except TimeoutError:
            closed = [ws.close_code for ws in [*self.shoppers, *self.agents]
                      if ws.close_code is not None]
            raise RuntimeError(
                f"{self.name}: {self.expected - len(self.latencies)} of {count} messages did "
                f"not arrive within 120 s; {len(closed)} client sockets closed "
                f"(codes {sorted(set(closed))})") from None

    def figures(self) -> dict[str, Any]:
        connected = len(self.hellos) + len(self.idle_hellos)
        later = connected - len(self.hellos) // 2
        return {
            "relay": percentiles(self.latencies),
            "sockets": connected,
            "rss_before_kib": self.rss["before"],
            "rss_connected_kib": self.rss["connected"],
            "kib_per_idle_connection": round(
                (self.rss["connected"] - self.rss["before"]) / connected, 2),
            "kib_per_idle_connection_marginal": round(
                (self.rss["connected"] - self.rss["half"]) / later, 2),
        }

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for ws in [*self.shoppers, *self.agents]:
            await ws.close()
        if self.holders is not None:
            await asyncio.to_thread(self.holders.close)


async def start_gateway(args: argparse.Namespace, workdir: Path) -> Server:
    settings = Settings(port=free_port(), rasa_port=free_port(), action_port=free_port(),
                        var_dir=workdir / "var", log_level="warning",
                        queue_auto_assign=False)
    chats, waiting = seed(settings, args.shoppers, args.agents, args.idle)
    env = {**os.environ, **settings_env(settings, "unused"),
           "SHOPCHAT_QUEUE_AUTO_ASSIGN": "false"}
    process = subprocess.Popen([sys.executable, "-m", "handoff"], cwd=PROJECT_DIR, env=env,
                               text=True)
    http = f"http://127.0.0.1:{settings.port}"
    # /healthz is 503 without Rasa; the gateway is up once it answers at all.
    await _wait_http(f"{http}/healthz")
    await asyncio.sleep(1)
    server = Server(GATEWAY, process, f"ws://127.0.0.1:{settings.port}/ws/chat",
                    [gateway_hello(c) for c in chats], [gateway_hello(c) for c in waiting],
                    http, chats)
    server.make_frame = lambda n, client_id: {
        "type": "message", "conversation_id": chats[n]["conversation_id"],
        "client_id": client_id, "text": client_id}

    def pick(frame: dict[str, Any]) -> str | None:
        if frame.get("type") == "message" and frame.get("author") == "agent":
            return str(frame["text"])
        return None

    server.pick = pick
    return server


async def sign_in_gateway_agents(server: Server, agents: int) -> None:
    chats = server.chats
    tokens = {}
    async with aiohttp.ClientSession() as session:
        for i in range(agents):
            email = f"agent{i}@bench.example"
            async with session.post(f"{server.http}/api/agents/login",
                                    json={"email": email, "password": PASSWORD}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"{email} could not sign in: {r.status} {body}")
                tokens[email] = body["token"]
    by_email: dict[str, ClientConnection] = {}
    agent_url = server.url.replace("/ws/chat", "/ws/agent")
    for email, token in tokens.items():
        ws = await connect(agent_url, max_queue=None, ping_interval=None, compression=None)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        by_email[email] = ws
    server.agents = list(by_email.values())
    server.agent_of = lambda n: by_email[chats[n]["agent"]]
    server.tasks += [asyncio.create_task(_drain(ws)) for ws in server.agents]


async def start_baseline(args: argparse.Namespace) -> Server:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "listening":
        raise RuntimeError("the baseline relay did not start")
    await asyncio.sleep(1)
    ids = [f"s{i}" for i in range(args.shoppers)]
    server = Server(BASELINE, process, f"ws://127.0.0.1:{port}",
                    [{"id": i} for i in ids], [{"id": f"idle{i}"} for i in range(args.idle)])
    server.make_frame = lambda n, client_id: {"to": ids[n], "client_id": client_id,
                                              "text": client_id}
    server.pick = lambda frame: str(frame["client_id"]) if "to" in frame else None
    return server


async def sign_in_baseline_agents(server: Server, agents: int) -> None:
    server.agents = [await open_socket(server.url, {"id": f"a{i}"}) for i in range(agents)]
    server.agent_of = lambda n: server.agents[n % agents]
    server.tasks += [asyncio.create_task(_drain(ws)) for ws in server.agents]


def block_plan(messages: int, blocks: int) -> list[tuple[str, int]]:
    """Alternating blocks, gateway first then baseline twice then gateway (ABBA …), each
    server's ``messages`` split as evenly as they go."""
    per_server = max(1, blocks // 2)
    base, extra = divmod(messages, per_server)
    sizes = [base + (1 if i < extra else 0) for i in range(per_server)]
    plan = []
    for i in range(per_server):
        first, second = (GATEWAY, BASELINE) if i % 2 == 0 else (BASELINE, GATEWAY)
        plan += [(first, sizes[i]), (second, sizes[i])]
    return [(name, size) for name, size in plan if size > 0]


async def one_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    load_start = os.getloadavg()
    gateway = await start_gateway(args, workdir)
    baseline: Server | None = None
    try:
        baseline = await start_baseline(args)
        servers = {GATEWAY: gateway, BASELINE: baseline}
        for server in servers.values():
            await server.connect_shoppers(args.holders)
        await sign_in_gateway_agents(gateway, args.agents)
        await sign_in_baseline_agents(baseline, args.agents)
        # The client is the measuring instrument: what it keeps for the whole run is
        # moved out of its collector's way, so that a full collection here does not land
        # in one server's block.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(1)
        for name, size in block_plan(args.messages, args.blocks):
            await servers[name].block(size, args.rate)
            await asyncio.sleep(0.2)
        figures = {name: server.figures() for name, server in servers.items()}
    finally:
        for started in (gateway, baseline):
            if started is not None:
                await started.close()
        gateway.process.send_signal(signal.SIGTERM)
        gateway.process.wait(timeout=60)
        if baseline is not None:
            baseline.process.terminate()
            baseline.process.wait(timeout=60)
        gc.unfreeze()
    return {**figures, "ratios": ratios(figures),
            "load_average": {"start": [round(x, 2) for x in load_start],
                             "end": [round(x, 2) for x in os.getloadavg()]}}


def ratios(figures: dict[str, Any]) -> dict[str, float]:
    gateway, baseline = figures[GATEWAY], figures[BASELINE]
    out = {f"{q}": round(gateway["relay"][f"{q}_ms"] / baseline["relay"][f"{q}_ms"], 2)
           for q in ("p50", "p95", "p99")}
    for key in ("kib_per_idle_connection", "kib_per_idle_connection_marginal"):
        if baseline[key] > 0:
            out[key] = round(gateway[key] / baseline[key], 2)
    return out


def medians(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Each figure's median over the runs (one run: its figures)."""
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    figures = [run[name] for run in runs]
    relay = {key: median([f["relay"][key] for f in figures])
             for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
    return {"relay": {"n": figures[0]["relay"]["n"], **relay},
            **{key: median([f[key] for f in figures])
               for key in ("sockets", "rss_before_kib", "rss_connected_kib",
                           "kib_per_idle_connection", "kib_per_idle_connection_marginal")}}


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


def raise_open_files_limit() -> None:
    """Every socket is a file descriptor, in each server and each client process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shoppers", type=int, default=1000,
                        help="shoppers connected and sent messages, per server")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--messages", type=int, default=4000, help="per server")
    parser.add_argument("--rate", type=float, default=200.0, help="agent messages per second")
    parser.add_argument("--blocks", type=int, default=8,
                        help="blocks of messages, alternating between the servers")
    parser.add_argument("--runs", type=int, default=1, help="whole runs, fresh servers each")
    parser.add_argument("--idle", type=int, default=0,
                        help="more shopper sockets per server that only stay connected")
    parser.add_argument("--holders", type=int, default=2,
                        help="helper processes holding the idle sockets, per server")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_open_files_limit()
    if args.hold:
        asyncio.run(hold())
        return
    connected = args.shoppers + args.idle
    output = args.output or RESULTS / (
        "agent_relay.json" if not args.idle else f"agent_relay_idle{connected}.json")
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(asyncio.run(one_run(args, Path(tmp))))
    figures = {name: medians(runs, name) for name in (GATEWAY, BASELINE)}
    summary = {key: round(statistics.median(run["ratios"][key] for run in runs), 2)
               for key in runs[0]["ratios"]}
    result = {
        "benchmark": "agent_relay",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "params": {"shoppers": args.shoppers, "idle": args.idle, "connected": connected,
                   "agents": args.agents, "messages": args.messages, "rate_per_s": args.rate,
                   "blocks": args.blocks, "runs": args.runs},
        "how": "both servers up at once, messages in alternating blocks; figures are "
               "medians over the runs",
        **figures,
        "ratios": summary,
        "runs": runs,
    }
    table = Table(title=f"agent → shopper relay, {connected} shoppers connected "
                        f"({args.shoppers} sent to), {args.agents} agents, {args.rate:.0f} "
                        f"msg/s, {os.cpu_count()} cores, median of {args.runs} run(s)")
    for column in ("server", "p50 ms", "p95 ms", "p99 ms", "KiB / idle socket",
                   "marginal KiB"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, label in ((BASELINE, "bare websockets relay"), (GATEWAY, "shopchat gateway")):
        f = figures[name]
        relay = f["relay"]
        table.add_row(label, str(relay["p50_ms"]), str(relay["p95_ms"]), str(relay["p99_ms"]),
                      str(f["kib_per_idle_connection"]),
                      str(f["kib_per_idle_connection_marginal"]))
    table.add_row("ratio (median of runs)", str(summary["p50"]), str(summary["p95"]),
                  str(summary["p99"]), str(summary.get("kib_per_idle_connection", "-")),
                  str(summary.get("kib_per_idle_connection_marginal", "-")))
    Console(width=150).print(table)
    for i, run in enumerate(runs, start=1):
        print(f"run {i}: ratios {run['ratios']}, load {run['load_average']}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
