"""Two real Rasa servers, each with its own action server, started as `shopchat up
--rasa-replicas 2` plans them (shopchat/stack.py), on one Postgres tracker store and one
Redis lock store, behind an in-process gateway: one conversation answered by both in
turn on one shared tracker, the live model switch reaching both, and a replica killed
with SIGKILL mid-conversation while the gateway carries on with the other.

The replicas start once for the module (about 30 s on two cores); the SIGKILL test
comes last, since it leaves one replica dead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.settings import Settings
from bot.store.factory import open_store
from bot.store.models import Order
from shopchat.stack import follow_current_model, free_port, free_ports, plan, prepare_shop
from tests.conftest import RASA_TOKEN, Gateway, bot_texts, serving
from tests.handoff.test_rasa_replicas import bridge_of
from tests.mail.conftest import shopper
from tests.scaleout.servers import Postgres, Redis

pytestmark = [pytest.mark.scaleout, pytest.mark.stack]

REPLICAS = 2


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@dataclass
class Replicas:
    """The running replicas: their settings (as `shopchat up` has them) and processes."""

    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    @property
    def rasa_urls(self) -> list[str]:
        return self.settings.rasa_replica_urls

    def status(self, i: int) -> dict[str, Any]:
        return get_json(f"{self.rasa_urls[i]}/status?token={RASA_TOKEN}")

    def tracker(self, i: int, sender: str) -> dict[str, Any]:
        return get_json(f"{self.rasa_urls[i]}/conversations/{sender}/tracker"
                        f"?token={RASA_TOKEN}&include_events=ALL")

    def up(self) -> bool:
        try:
            return all(self.status(i).get("model_id") for i in range(REPLICAS)) and all(
                get_json(f"{url}/health").get("status") == "ok"
                for url in self.settings.action_replica_urls)
        except OSError:
            return False

    def output(self) -> str:
        return "\n".join(f"== {path.name}\n" + path.read_text(errors="replace")[-3000:]
                         for path in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def replicas(trained_model: Path, postgres: Postgres, redis: Redis,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    settings = Settings(
        var_dir=root / "var", port=free_port(), rasa_port=free_ports(REPLICAS),
        action_port=free_ports(REPLICAS), rasa_replicas=REPLICAS,
        database_url=SecretStr(postgres.url), redis_url=SecretStr(redis.url),
        rasa_token=SecretStr(RASA_TOKEN), model=trained_model,
    )
    prepare_shop(settings)
    logs = root / "logs"
    logs.mkdir()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    running = Replicas(settings, processes, logs)
    try:
        for spec in plan(settings, RASA_TOKEN, trained_model):
            if spec.name == "gateway":
                continue  # the tests run their own, in-process
            with (logs / f"{spec.name}.log").open("wb") as log:
                processes[spec.name] = subprocess.Popen(
                    spec.argv, env=spec.env, cwd=settings.project_dir, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while not running.up():
            dead = [name for name, process in processes.items() if process.poll() is not None]
            assert not dead, f"{dead} exited while starting:\n{running.output()}"
            assert time.monotonic() < deadline, f"not up after 300 s:\n{running.output()}"
            time.sleep(0.5)
        yield running
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def gateway_on(replicas: Replicas, var: Path, **overrides: Any) -> AsyncIterator[Gateway]:
    """An in-process gateway whose Rasa servers are the replicas (as `shopchat up`'s is)."""
    settings = replicas.settings.model_copy(update={
        "port": free_port(), "var_dir": var, "rasa_urls": replicas.rasa_urls,
        "action_urls": replicas.settings.action_replica_urls, **overrides})
    async with serving(settings) as gateway:
        yield gateway


def an_order(settings: Settings, customer: str) -> Order:
    """A demo order, not cancelled, of ``customer`` (from the replicas' own shop store)."""
    store = open_store(settings)
    orders = [order for order in store.orders_for_customer(customer, limit=100)
              if order.status != "cancelled"]
    assert orders, f"the demo data has no open order for {customer}"
    return orders[0]


def said(frames: list[dict[str, Any]]) -> str:
    return "\n".join(bot_texts(frames))


async def test_one_conversation_alternates_between_replicas_on_one_tracker(
    replicas: Replicas, postgres: Postgres, tmp_path: Path,
) -> None:
    order = an_order(replicas.settings, "cus_0002")
    async with gateway_on(replicas, tmp_path / "var") as gateway, \
            shopper(gateway) as client:
        bridge = bridge_of(gateway)
        served = []
        frames: list[dict[str, Any]] = []
        for text in (f"where is my order {order.id}?", order.email):
            before = [replica.requests for replica in bridge.replicas]
            frames = await client.turn(text)
            served.append([r.requests - b for r, b in zip(bridge.replicas, before,
                                                          strict=True)])
        conversation = client.conversation_id
    assert conversation is not None
    # Each turn was one request, to the other replica each time ...
    assert served in ([[1, 0], [0, 1]], [[0, 1], [1, 0]])
    # ... and the second replica knew what the first had asked: the order number, kept in
    # the tracker in Postgres, with the email verifies the order and shows it.
    text = said(frames)
    assert order.id in text and all(line.name in text for line in order.lines), text
    # Both replicas read the same tracker, from the same rows.
    one, two = replicas.tracker(0, conversation), replicas.tracker(1, conversation)
    assert one["events"] == two["events"] and one["slots"] == two["slots"]
    assert one["slots"]["order_id"] == order.id
    rows = postgres.psql(f"SELECT count(*) FROM rasa.events WHERE sender_id = '{conversation}'")
    assert int(rows) == len(one["events"])
    # Rasa's table is in its own schema, never in public where the gateway's tables go.
    assert postgres.psql("SELECT to_regclass('public.events') IS NULL") == "t"


def test_the_live_model_switch_reaches_every_replica(
    replicas: Replicas, trained_model: Path, tmp_path: Path,
) -> None:
    # `shopchat train` activates a model by naming it in models/current.json; the
    # supervisor's follower (as in `shopchat up`) loads it into each replica.
    models = tmp_path / "models"
    models.mkdir()
    switched = models / "shopchat-switched.tar.gz"
    shutil.copyfile(trained_model, switched)
    settings = replicas.settings.model_copy(update={"models_dir": models, "model": None})
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
    assert [replicas.status(i)["model_file"] for i in range(REPLICAS)] == \
        [switched.name] * REPLICAS


async def test_a_replica_killed_mid_conversation_loses_no_turn(
    replicas: Replicas, tmp_path: Path,
) -> None:
    order = an_order(replicas.settings, "cus_0003")
    # Health checks rarely, so that the requests themselves find the dead replica.
    async with gateway_on(replicas, tmp_path / "var", rasa_health_interval=600) as gateway, \
            shopper(gateway) as client:
        bridge = bridge_of(gateway)
        frames = await client.turn(f"where is my order {order.id}?")
        assert "email" in said(frames)

        victim = replicas.processes["rasa-2"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)

        frames = await client.turn(order.email)
        text = said(frames)
        assert order.id in text and all(line.name in text for line in order.lines), text
        for text in ("thanks", "hi"):
            frames += await client.turn(text)
        # Every message has its answer; none met an error, though one request at least
        # went to the dead replica (round-robin) and was sent on to the survivor.
        shopper_seqs = [f["seq"] for f in frames if f["type"] == "ack"]
        answered = {f["reply_to"] for f in frames
                    if f["type"] == "message" and f["author"] == "bot"}
        assert set(shopper_seqs) <= answered, frames
        assert not any(f["type"] == "error" for f in frames), frames
        assert not bridge.replicas[1].healthy and bridge.replicas[0].healthy
        assert "not reachable" in bridge.replicas[1].detail
