"""`shopchat up` from the outside: ready line, a greeting over the websocket, clean Ctrl-C."""

from __future__ import annotations

import json
import socket
import sqlite3
import urllib.request
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from bot.settings import Settings
from shopchat.stack import StackHandle, plan, spawn
from tests.conftest import is_bot_message

pytestmark = pytest.mark.stack


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_up_is_ready_answers_hi_and_stops_all_three_on_ctrl_c(stack: StackHandle) -> None:
    ready = stack.wait_for_line("ready:", timeout=1)
    assert f"http://localhost:{stack.settings.port}/demo/" in ready
    hint = stack.wait_for_line("agents:", timeout=5)
    assert "shopchat agents add" in hint and f":{stack.settings.port}/console/" in hint
    # Each process's lines carry its name.
    assert any(line.split("|")[0].strip().endswith("rasa") for line in stack.lines)
    async with connect(f"ws://127.0.0.1:{stack.settings.port}/ws/chat") as ws:
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps({"type": "message", "client_id": "m1", "text": "hi"}))
        while not is_bot_message(frame := json.loads(await ws.recv())):
            pass
        assert frame["text"].startswith("Hi!")


async def test_rasa_keeps_each_turn_in_the_tracker_file_in_wal_mode(stack: StackHandle) -> None:
    """endpoints.yml names our tracker store; were it not importable, Rasa would only warn
    and keep trackers in memory, losing them on every restart."""
    async with connect(f"ws://127.0.0.1:{stack.settings.port}/ws/chat") as ws:
        await ws.send(json.dumps({"type": "hello"}))
        conversation_id = json.loads(await ws.recv())["conversation_id"]
        text = f"hi {uuid.uuid4().hex[:6]}"
        await ws.send(json.dumps({"type": "message", "client_id": "m1", "text": text}))
        while not is_bot_message(json.loads(await ws.recv())):
            pass
    tracker = sqlite3.connect(f"file:{stack.settings.tracker_db}?mode=ro", uri=True)
    try:
        assert tracker.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        texts = [json.loads(data).get("text") for (data,) in tracker.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
            [conversation_id])]
    finally:
        tracker.close()
    assert texts == [text]


def test_ctrl_c_stops_every_process(trained_model: Path, tmp_path: Path) -> None:
    handle = spawn(tmp_path / "var", trained_model, "stop-token")
    try:
        handle.wait_for_line("ready:", timeout=300)
        # First start: the demo shop is loaded; without a configured secret the demo
        # shop signs its customer with a per-run one.
        handle.wait_for_line("shop: loaded the demo shop", timeout=5)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{handle.settings.port}/demo/identity", timeout=5
        ) as response:
            assert json.loads(response.read())["customer_id"] == "cus_0001"
    finally:
        code = handle.stop()
    settings = handle.settings
    assert code == 0, "".join(handle.lines[-40:])
    for name in ("rasa", "actions", "gateway"):
        assert any(f"{name} stopped" in line for line in handle.lines), name
    assert all(port_is_free(p) for p in (settings.port, settings.rasa_port, settings.action_port))


def test_children_inherit_the_environment_and_the_stack_settings_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fast check of the mapping honcho is given (it becomes the child's whole
    # environment); the test below proves it on the running gateway.
    monkeypatch.setenv("SHOPCHAT_QUEUE_AUTO_ASSIGN", "false")
    monkeypatch.setenv("SHOPCHAT_PORT", "1")
    settings = Settings(port=8123, var_dir=tmp_path / "var")
    specs = {spec.name: spec for spec in plan(settings, "t", tmp_path / "model.tar.gz")}
    for name in ("rasa", "actions", "gateway"):
        assert specs[name].env["SHOPCHAT_QUEUE_AUTO_ASSIGN"] == "false", name
        assert specs[name].env["PATH"], name
    assert specs["gateway"].env["SHOPCHAT_PORT"] == "8123"


async def test_a_setting_given_only_in_the_environment_reaches_the_gateway(
    trained_model: Path, tmp_path: Path
) -> None:
    shop = "http://127.0.0.1:9999"
    handle = spawn(tmp_path / "var", trained_model, "env-token",
                   env={"SHOPCHAT_ALLOWED_ORIGINS": json.dumps([shop])})
    try:
        # The gateway answers before Rasa has loaded its model; the origin check is its own.
        handle.wait_for_line("gateway: listening", timeout=120)
        url = f"ws://127.0.0.1:{handle.settings.port}/ws/chat"
        async with connect(url, additional_headers={"Origin": shop}) as ws:
            await ws.send(json.dumps({"type": "hello"}))
            assert json.loads(await ws.recv())["type"] == "welcome"
    finally:
        handle.stop()
