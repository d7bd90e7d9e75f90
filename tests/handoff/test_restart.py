"""A gateway killed with SIGKILL, or restarted, loses nothing and replays nothing wrongly.

A gateway that is killed runs as its own process (``python -m handoff``), talking over
HTTP to the scripted stand-in for Rasa and the action server (tests/scripted_rasa.py)
that the test serves on a loopback port, so this runs in the fast tier; both sides
reconnect to the restarted process and resend what was not acknowledged, as
docs/protocol.md tells clients to. One that only starts on what a dead one left runs in
this process. What a dead process left half done (messages to an agent, a handoff not yet queued, a
backlog for the bot) is finished the way the shopper would expect.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from bot.settings import Settings
from handoff.db.agents import AgentStore
from handoff.db.conversations import ConversationStore
from shopchat.stack import free_port, settings_env
from tests.conftest import (
    AGENT_PASSWORD,
    AgentClient,
    ChatClient,
    Gateway,
    add_agent,
    agent_login,
    is_bot_message,
)


@pytest.fixture
def gateway_settings(scripted_rasa_settings: Settings) -> Settings:
    """This module's gateways, in-process or not, reach the scripted Rasa."""
    return scripted_rasa_settings


class GatewayProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        token = self.settings.rasa_token.get_secret_value() if self.settings.rasa_token else ""
        env = {**os.environ, **settings_env(self.settings, token)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "handoff"], cwd=self.settings.project_dir, env=env,
                stdout=out, stderr=subprocess.STDOUT,
            )
        assert await self._healthy(timeout=60), self.log.read_text()[-3000:]

    async def _healthy(self, timeout: float) -> bool:
        """Whether /healthz says ok within ``timeout``: polled without blocking the event
        loop, which serves the scripted Rasa the gateway's health check asks."""
        url = f"http://127.0.0.1:{self.settings.port}/healthz"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                try:
                    async with session.get(url) as response:
                        if (await response.json()).get("ok"):
                            return True
                except (aiohttp.ClientError, ValueError):
                    pass
                await asyncio.sleep(0.05)
        return False

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
def gateway_process(gateway_settings: Settings, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(gateway_settings, tmp_path / "gateway.log")
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
    await gateway_process.start()
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

    await gateway_process.start()
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


HUMAN = "I want to talk to a real person please"


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


async def frames_for(client: ChatClient, seconds: float) -> list[dict[str, Any]]:
    """Everything the shopper receives in the next ``seconds``."""
    frames: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            frames.append(await client.recv(timeout=remaining))
        except TimeoutError:
            break
    return frames


async def test_messages_to_an_agent_cut_off_by_a_sigkill_never_reach_the_bot(
    gateway_process: GatewayProcess,
) -> None:
    settings = gateway_process.settings
    http = f"http://127.0.0.1:{settings.port}"
    ws_url = f"ws://127.0.0.1:{settings.port}/ws/chat"
    add_agent(settings, "lee@shop.example", "Lee")
    await gateway_process.start()
    token = await agent_login(http, "lee@shop.example", AGENT_PASSWORD)
    agent = await _agent(http, token)
    shopper = await _shopper(ws_url)
    await shopper.say(HUMAN)
    await shopper.recv_until(lambda f: f["type"] == "mode" and f["mode"] == "agent")
    conversation_id = (await agent.expect(lambda f: f["type"] == "assigned"))["conversation_id"]
    # A burst to the agent (one asks for a person again), and the process dies the moment
    # the last is acknowledged: stored, but not yet dealt with by the background tasks.
    burst = ["where is my order", "I want a person", "hello?", "my tent is broken", "thanks"]
    for i, text in enumerate(burst):
        await shopper.say(text, client_id=f"to-agent-{i}")
    acked = 0
    while acked < len(burst):
        acked += (await shopper.recv())["type"] == "ack"
    gateway_process.kill()
    for ws in (shopper.ws, agent.ws):
        await ws.close()

    await gateway_process.start()
    agent = await _agent(http, token)
    await agent.do("close", conversation_id=conversation_id, resolution="resolved")
    await agent.expect(lambda f: f["type"] == "unassigned")
    shopper = await _shopper(ws_url, shopper)
    # The bot takes the next message, and only that one. Whatever it would wrongly take
    # up from the burst (an answer, a backlog notice, a new handoff) comes before its
    # answer to this one: it answers one turn at a time, in order.
    hi = await shopper.say("hi")
    frames = await shopper.recv_until(is_bot_message)
    (hi_seq,) = [f["seq"] for f in frames if f["type"] == "ack" and f["client_id"] == hi]

    assert [f["mode"] for f in frames if f["type"] == "mode"] == ["bot"]
    assert not [f for f in frames if f["type"] == "handoff" or f.get("skipped")], frames
    assert [f for f in frames if is_bot_message(f)] == frames[-1:]
    assert frames[-1]["reply_to"] == hi_seq and frames[-1]["text"].startswith("Hi!")
    db = settings.gateway_db
    assert rows(db, "SELECT COUNT(*) FROM client_messages WHERE bot_state = 'pending'") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM handoffs") == [(1,)]
    await shopper.ws.close()
    await agent.ws.close()


@dataclass
class CutOff:
    """A handoff a gateway stored (``new``) but died before queueing, and the agent
    who was signed in at the time."""

    conversation_id: str
    resume_token: str
    last_seq: int
    agent_token: str


def cut_off_handoff(settings: Settings, email: str, name: str) -> CutOff:
    """Write what a gateway killed between storing a handoff and queueing it leaves
    behind, with the same store calls the gateway makes (the bot turn's ``answer``)."""
    add_agent(settings, email, name)
    store = ConversationStore(settings.gateway_db)
    try:
        login = AgentStore(store).login(email, AGENT_PASSWORD, lifetime=3600)
        assert login is not None
        conversation, resume_token = store.create_conversation(None)
        asked, _ = store.append_shopper_message(
            conversation.id, "ask", {"type": "message", "author": "shopper", "text": HUMAN})
        events = store.answer(conversation.id, asked.seq, [
            {"type": "message", "author": "bot", "text": "Let me get you a person.",
             "reply_to": asked.seq},
            {"type": "handoff", "reply_to": asked.seq, "trigger": "requested",
             "reason": "shopper asked for a person"},
        ])
    finally:
        store.close()
    return CutOff(conversation.id, resume_token, events[-1].seq, login.token)


async def _resume(url: str, cut: CutOff) -> ChatClient:
    client = ChatClient(await connect(url))
    client.last_seq = cut.last_seq
    await client.hello(conversation_id=cut.conversation_id, resume_token=cut.resume_token,
                       last_seq=cut.last_seq)
    return client


def told_nobody_is_online(frames: list[dict[str, Any]]) -> bool:
    return any(f["type"] == "offline_form" or "No one from our team" in f.get("text", "")
               for f in frames)


async def test_a_handoff_cut_off_by_a_restart_waits_for_the_agent_to_reconnect(
    gateway_with: Callable[..., Any], gateway_settings: Settings,
) -> None:
    # What the dead process left is on disk; the gateway starting on it (in this process:
    # nothing here is killed) finishes it.
    cut = cut_off_handoff(gateway_settings, "mo@shop.example", "Mo")
    async with gateway_with() as gateway:
        shopper = await _resume(gateway.url, cut)
        await asyncio.sleep(1)  # Mo's console notices the restart and reconnects
        agent = await _agent(gateway.http, cut.agent_token)
        assigned = await agent.expect(lambda f: f["type"] == "assigned", timeout=10)
        assert assigned["conversation_id"] == cut.conversation_id
        frames = await shopper.recv_until(
            lambda f: f["type"] == "mode" and f["mode"] == "agent")
        assert not told_nobody_is_online(frames), frames
        assert rows(gateway.settings.gateway_db, "SELECT state FROM handoffs") == [
            ("assigned",)]
        await shopper.ws.close()
        await agent.ws.close()


async def test_a_cut_off_handoff_is_unstaffed_once_the_reconnect_window_is_over(
    make_gateway: Callable[..., Any], gateway_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handoff.desk

    monkeypatch.setattr(handoff.desk, "RECONNECT_WINDOW", 1.0)
    cut = cut_off_handoff(gateway_settings, "nia@shop.example", "Nia")
    async with make_gateway() as gateway:
        shopper = await _resume(gateway.url, cut)
        early = await frames_for(shopper, 0.6)  # window 1.0 s + grace 0.2 s
        assert not told_nobody_is_online(early), early
        frames = await shopper.recv_until(lambda f: f.get("author") == "system", timeout=10)
        assert frames[-2]["type"] == "offline_form" and frames[-2]["reason"] == "no_agents"
        assert frames[-1]["text"].startswith("No one from our team is online")
        assert rows(gateway.settings.gateway_db, "SELECT state FROM handoffs") == [
            ("unstaffed",)]
        await shopper.ws.close()


async def test_a_backlog_of_hundreds_is_answered_by_its_newest_message_in_one_turn(
    gateway_settings: Settings,
) -> None:
    # A gateway that cannot reach Rasa stores everything the shopper sends ...
    down = Gateway(gateway_settings.model_copy(update={"rasa_port": free_port()}))
    await down.start()
    try:
        # Unbounded: the socket keeps reading what this test skips (600 typing signals),
        # so that its close handshake is not stuck behind them.
        shopper = ChatClient(await connect(down.url, max_queue=None))
        await shopper.hello()
        for i in range(299):
            await shopper.say(f"are you there? ({i})")
        await shopper.say("hi")
        acks: dict[str, int] = {}
        while len(acks) < 300:
            frame = await shopper.recv()
            if frame["type"] == "ack":
                acks[frame["client_id"]] = frame["seq"]
        await shopper.ws.close()
    finally:
        await down.stop()
    newest = max(acks.values())

    # ... and the restarted gateway, with Rasa back, takes the backlog on as one turn.
    up = Gateway(gateway_settings)
    await up.start()
    try:
        shopper.ws = await connect(up.url)
        await shopper.hello(conversation_id=shopper.conversation_id,
                            resume_token=shopper.resume_token, last_seq=shopper.last_seq)
        frames = await shopper.recv_until(is_bot_message)
        # Whatever more the backlog wrongly brings (a second notice, answers to older
        # messages) comes before the answer to a next message: one turn at a time.
        probe = await shopper.say("hi again")
        frames += await shopper.recv_until(
            lambda f: f["type"] == "ack" and f["client_id"] == probe)
        probe_seq = frames[-1]["seq"]
        frames += await shopper.recv_until(
            lambda f: is_bot_message(f) and f["reply_to"] == probe_seq)
        told = [f for f in frames if f["type"] == "message" and f["author"] == "system"]
        assert len(told) == 1 and told[0]["skipped"] == 299 and "299" in told[0]["text"]
        replies = [f for f in frames if is_bot_message(f) and f["reply_to"] != probe_seq]
        assert replies and all(f["reply_to"] == newest for f in replies), replies
        assert replies[0]["text"].startswith("Hi!")
        assert told[0]["seq"] < replies[0]["seq"]
        await shopper.ws.close()
    finally:
        await up.stop()
    db = gateway_settings.gateway_db
    assert rows(db, "SELECT bot_state, COUNT(*) FROM client_messages GROUP BY bot_state "
                    "ORDER BY bot_state") == [("done", 2), ("skipped", 299)]
    # Rasa was asked once, not 300 times.
    rasa_token = gateway_settings.rasa_token
    async with aiohttp.ClientSession() as session, session.get(
        f"{gateway_settings.rasa_url}/conversations/{shopper.conversation_id}/tracker",
        params={"token": rasa_token.get_secret_value() if rasa_token else ""},
    ) as response:
        tracker = await response.json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == ["hi", "hi again"]
