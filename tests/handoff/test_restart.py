"""A gateway killed with SIGKILL in the middle of a live agent chat loses nothing.

The gateway runs as its own process (``python -m handoff``) beside the session's
Rasa; both sides reconnect to the restarted process and resend what was not
acknowledged, as docs/protocol.md tells clients to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bot.settings import Settings
from shopchat.stack import StackHandle, free_port, settings_env, wait_until_healthy
from tests.conftest import AgentClient, ChatClient, add_agent, agent_login

pytestmark = pytest.mark.stack


class GatewayProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        token = self.settings.rasa_token.get_secret_value() if self.settings.rasa_token else ""
        env = {**os.environ, **settings_env(self.settings, token)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "handoff"], cwd=self.settings.project_dir, env=env,
                stdout=out, stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{self.settings.port}/healthz"
        assert wait_until_healthy(url, timeout=60), self.log.read_text()[-3000:]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise


@pytest.fixture
def gateway_process(stack: StackHandle, tmp_path: Path) -> Iterator[GatewayProcess]:
    settings = stack.settings.model_copy(update={"port": free_port(), "var_dir": tmp_path / "var"})
    process = GatewayProcess(settings, tmp_path / "gateway.log")
    try:
        yield process
    finally:
        process.stop()


async def _shopper(url: str, client: ChatClient | None = None) -> ChatClient:
    ws = await connect(url)
    if client is None:
        fresh = ChatClient(ws)
        await fresh.hello()
        return fresh
    client.ws = ws
    await client.send({"type": "hello", "conversation_id": client.conversation_id,
                       "resume_token": client.resume_token, "last_seq": client.last_seq})
    welcome = await client.recv()
    assert welcome["type"] == "welcome", welcome
    return client


async def _agent(http: str, token: str) -> AgentClient:
    ws = await connect(http.replace("http://", "ws://") + "/ws/agent")
    agent = AgentClient(ws, token)
    await agent.do("auth", token=token)
    agent.welcome = await agent.expect(lambda f: f["type"] == "welcome")
    return agent


async def test_sigkill_mid_chat_then_both_sides_resume_with_nothing_lost(
    gateway_process: GatewayProcess,
) -> None:
    settings = gateway_process.settings
    http = f"http://127.0.0.1:{settings.port}"
    ws_url = f"ws://127.0.0.1:{settings.port}/ws/chat"
    add_agent(settings, "ivy@shop.example", "Ivy")
    gateway_process.start()
    token = await agent_login(http, "ivy@shop.example", "correct horse battery")
    agent = await _agent(http, token)
    shopper = await _shopper(ws_url)
    await shopper.say("I want to talk to a real person please")
    await shopper.recv_until(lambda f: f["type"] == "mode" and f["mode"] == "agent")
    assigned = await agent.expect(lambda f: f["type"] == "assigned")
    conversation_id = assigned["conversation_id"]
    await agent.do("open", conversation_id=conversation_id, last_seq=0)
    await agent.expect(lambda f: f["type"] == "opened")

    acked: dict[str, int] = {}  # client_id -> seq, from both sides
    agent_seen = 0

    async def shopper_says(text: str) -> None:
        client_id = await shopper.say(text, client_id=f"s-{text.replace(' ', '_')}")
        ack = await shopper.recv_until(lambda f: f["type"] == "ack")
        acked[client_id] = ack[-1]["seq"]

    async def agent_says(text: str) -> None:
        client_id = await agent.reply(conversation_id, text,
                                      client_id=f"a-{text.replace(' ', '_')}")
        ack = await agent.expect(lambda f: f["type"] == "ack" and f["client_id"] == client_id)
        acked[f"agent:{client_id}"] = ack["seq"]

    for i in range(3):
        await shopper_says(f"shopper {i}")
        await agent_says(f"agent {i}")
    # In flight when the process dies: sent, maybe stored, not yet acknowledged.
    await shopper.say("shopper last", client_id="s-shopper_last")
    await agent.reply(conversation_id, "agent last", client_id="a-agent_last")
    gateway_process.kill()
    for ws in (shopper.ws, agent.ws):
        await ws.close()

    gateway_process.start()
    # The agent's session and the assignment survived the restart.
    agent = await _agent(http, token)
    state = await agent.expect(lambda f: f["type"] == "state")
    assert [c["conversation_id"] for c in state["chats"]] == [conversation_id]
    await agent.do("open", conversation_id=conversation_id, last_seq=agent_seen)
    await agent.expect(lambda f: f["type"] == "opened")
    shopper = await _shopper(ws_url, shopper)
    # Resend what was not acknowledged, as the protocol says.
    await shopper_says("shopper last")
    await agent_says("agent last")
    await shopper_says("after restart")
    await agent_says("after restart too")

    # The complete log, replayed from zero, has every acknowledged message exactly once.
    fresh = ChatClient(await connect(ws_url))
    await fresh.hello(conversation_id=conversation_id, resume_token=shopper.resume_token,
                      last_seq=0)
    log: list[dict[str, Any]] = []
    while not log or log[-1]["seq"] < max(acked.values()):
        log.append(await fresh.recv())
    messages = [e for e in log if e["type"] == "message" and e["author"] in ("shopper", "agent")]
    texts = [m["text"] for m in messages]
    expected = ["I want to talk to a real person please"]
    for i in range(3):
        expected += [f"shopper {i}", f"agent {i}"]
    expected += ["shopper last", "agent last", "after restart", "after restart too"]
    assert sorted(texts) == sorted(expected) and len(texts) == len(set(texts))
    by_seq = {e["seq"]: e for e in log}
    for client_id, seq in acked.items():
        assert by_seq[seq]["text"] == client_id.split("-", 1)[1].replace("_", " "), client_id
    # The agent's view got the same events in order, none twice.
    events: list[int] = []
    while True:
        try:
            frame = await agent.recv(timeout=1)
        except TimeoutError:
            break
        if frame["type"] == "event":
            events.append(frame["event"]["seq"])
    for frame in agent.backlog:
        if frame["type"] == "event":
            events.append(frame["event"]["seq"])
    assert events == sorted(set(events))
    json.dumps(log)  # the log is plain JSON all the way through
    for ws in (fresh.ws, shopper.ws, agent.ws):
        await ws.close()
