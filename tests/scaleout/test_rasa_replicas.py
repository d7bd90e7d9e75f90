"""`shopchat up --rasa-replicas 2` for real: two Rasa servers, each with its own action
server, on one Postgres tracker store and one Redis lock store, behind the stack's
gateway. One conversation answered by both in turn on one shared tracker, the live
model switch reaching both, and a replica killed with SIGKILL mid-conversation while
the gateway carries on with the other and the stack keeps running.

The stack starts once for the module (about 30 s on two cores); the SIGKILL test comes
last, since it leaves one replica dead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bot.settings import Settings
from bot.store.factory import open_store
from bot.store.models import Order
from shopchat.stack import StackHandle, follow_current_model, spawn
from tests.conftest import RASA_TOKEN, ChatClient, bot_texts
from tests.scaleout.servers import Postgres, Redis

pytestmark = [pytest.mark.scaleout, pytest.mark.stack]

REPLICAS = 2


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@pytest.fixture(scope="module")
def scaled(trained_model: Path, postgres: Postgres, redis: Redis,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """`shopchat up --rasa-replicas 2` on Postgres and Redis, ready. The gateway checks its
    replicas' health only at start, so that the turns' own requests find a dead one."""
    running = spawn(tmp_path_factory.mktemp("replicas-var"), trained_model, RASA_TOKEN,
                    rasa_replicas=REPLICAS,
                    env={"SHOPCHAT_DATABASE_URL": postgres.url, "SHOPCHAT_REDIS_URL": redis.url,
                         "SHOPCHAT_RASA_HEALTH_INTERVAL": "600"})
    try:
        running.wait_for_line("ready:", timeout=300)
        yield running
    finally:
        running.stop()


def rasa(scaled: StackHandle, i: int, path: str) -> dict[str, Any]:
    """``GET path`` (with the token) from replica ``i`` itself."""
    separator = "&" if "?" in path else "?"
    return get_json(f"{scaled.settings.rasa_replica_urls[i]}{path}{separator}token={RASA_TOKEN}")


def replicas_seen_by_gateway(scaled: StackHandle) -> list[dict[str, Any]]:
    replicas: list[dict[str, Any]] = get_json(
        f"http://127.0.0.1:{scaled.settings.port}/healthz")["dependencies"]["rasa"]["replicas"]
    return replicas


@asynccontextmanager
async def shopper(scaled: StackHandle) -> AsyncIterator[ChatClient]:
    async with connect(f"ws://127.0.0.1:{scaled.settings.port}/ws/chat") as ws:
        client = ChatClient(ws)
        await client.hello()
        yield client


def an_order(settings: Settings, customer: str) -> Order:
    """A demo order, not cancelled, of ``customer`` (from the stack's own shop store)."""
    store = open_store(settings)
    orders = [order for order in store.orders_for_customer(customer, limit=100)
              if order.status != "cancelled"]
    assert orders, f"the demo data has no open order for {customer}"
    return orders[0]


def said(frames: list[dict[str, Any]]) -> str:
    return "\n".join(bot_texts(frames))


async def test_one_conversation_alternates_between_replicas_on_one_tracker(
    scaled: StackHandle, postgres: Postgres,
) -> None:
    order = an_order(scaled.settings, "cus_0002")
    async with shopper(scaled) as client:
        served = []
        frames: list[dict[str, Any]] = []
        for text in (f"where is my order {order.id}?", order.email):
            before = [r["requests"] for r in replicas_seen_by_gateway(scaled)]
            frames = await client.turn(text)
            after = [r["requests"] for r in replicas_seen_by_gateway(scaled)]
            served.append([a - b for a, b in zip(after, before, strict=True)])
        conversation = client.conversation_id
    assert conversation is not None
    # Each turn was one request, to the other replica each time ...
    assert served in ([[1, 0], [0, 1]], [[0, 1], [1, 0]])
    # ... and the second replica knew what the first had asked: the order number, kept in
    # the tracker in Postgres, with the email verifies the order and shows it.
    text = said(frames)
    assert order.id in text and all(line.name in text for line in order.lines), text
    # Both replicas read the same tracker, from the same rows.
    path = f"/conversations/{conversation}/tracker?include_events=ALL"
    one, two = rasa(scaled, 0, path), rasa(scaled, 1, path)
    assert one["events"] == two["events"] and one["slots"] == two["slots"]
    assert one["slots"]["order_id"] == order.id
    rows = postgres.psql(f"SELECT count(*) FROM rasa.events WHERE sender_id = '{conversation}'")
    assert int(rows) == len(one["events"])
    # Rasa's table is in its own schema, never in public where the gateway's tables go.
    assert postgres.schemas_with_rasa_events() == ["rasa"]


def test_the_live_model_switch_reaches_every_replica(
    scaled: StackHandle, trained_model: Path, tmp_path: Path,
) -> None:
    # `shopchat train` activates a model by naming it in models/current.json; the
    # supervisor's follower (the thread `shopchat up` runs) loads it into each replica.
    models = tmp_path / "models"
    models.mkdir()
    switched = models / "shopchat-switched.tar.gz"
    shutil.copyfile(trained_model, switched)
    settings = scaled.settings.model_copy(update={"models_dir": models, "model": None})
    (models / "current.json").write_text(json.dumps({"model": switched.name}))
    lines: list[str] = []
    stop = threading.Event()
    follower = threading.Thread(target=follow_current_model, args=(
        settings, RASA_TOKEN, trained_model, stop, lines.append, 0.2))
    follower.start()
    try:
        deadline = time.monotonic() + 300
        while not any("now serving" in line or "could not" in line for line in lines):
            assert time.monotonic() < deadline, f"no switch after 300 s: {lines}"
            time.sleep(0.2)
    finally:
        stop.set()
        follower.join(timeout=30)
    assert lines[-1] == f"now serving {switched.name}", lines
    assert [rasa(scaled, i, "/status")["model_file"] for i in range(REPLICAS)] == \
        [switched.name] * REPLICAS


def rasa_pid(scaled: StackHandle, port: int) -> int:
    """The Rasa server of this stack listening on ``port`` (honcho starts it through a
    shell, so it is not the pid honcho prints)."""
    parents: dict[int, int] = {}
    argvs: dict[int, list[bytes]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argvs[int(proc.name)] = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue

    def ours(pid: int) -> bool:
        while pid > 1:
            if pid == scaled.process.pid:
                return True
            pid = parents.get(pid, 0)
        return False

    for pid, argv in argvs.items():
        if b"--port" in argv[:-1] and argv[argv.index(b"--port") + 1] == str(port).encode() \
                and any(arg.endswith(b"/rasa") for arg in argv[:2]) and ours(pid):
            return pid
    raise AssertionError(f"no Rasa server of this stack on port {port}")


async def test_a_replica_killed_mid_conversation_loses_no_turn(scaled: StackHandle) -> None:
    order = an_order(scaled.settings, "cus_0003")
    async with shopper(scaled) as client:
        frames = await client.turn(f"where is my order {order.id}?")
        assert "email" in said(frames)

        os.kill(rasa_pid(scaled, scaled.settings.rasa_port + 1), signal.SIGKILL)
        scaled.wait_for_line("rasa-2 stopped", timeout=30)

        frames = await client.turn(order.email)
        text = said(frames)
        assert order.id in text and all(line.name in text for line in order.lines), text
        for text in ("thanks", "hi"):
            frames += await client.turn(text)
    # Every message has its answer; none met an error, though one request at least went
    # to the dead replica (round-robin) and was sent on to the survivor.
    shopper_seqs = [f["seq"] for f in frames if f["type"] == "ack"]
    answered = {f["reply_to"] for f in frames if f["type"] == "message" and f["author"] == "bot"}
    assert set(shopper_seqs) <= answered, frames
    assert not any(f["type"] == "error" for f in frames), frames
    survivor, dead = replicas_seen_by_gateway(scaled)
    assert survivor["ok"] and not dead["ok"]
    assert "not reachable" in dead["detail"]
    # The stack carries on with one replica: honcho did not stop the others.
    assert scaled.process.poll() is None
    assert not any("gateway stopped" in line or "rasa-1 stopped" in line
                   for line in scaled.lines)
