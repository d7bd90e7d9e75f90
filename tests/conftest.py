"""Shared fixtures: settings on temporary dirs and free ports, the trained model,
the real stack (`shopchat up`: Rasa + action server + gateway) once per session,
and in-process gateways wired to that stack's Rasa."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect

from bot.settings import PROJECT_DIR, Settings
from handoff.app import create_app
from shopchat.stack import wait_until_healthy
from shopchat.training import current_model, train


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The project's model, trained once per run (`make test` has usually done it already)."""
    return train(Settings()).model


@dataclass
class RunningStack:
    """A `shopchat up` subprocess and what it printed."""

    process: subprocess.Popen[str]
    settings: Settings
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line with {needle!r}; output:\n" + "".join(self.lines[-60:]))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def start_stack(var_dir: Path, model: Path) -> RunningStack:
    """Run `shopchat up` on free ports with its own var/ dir, streaming its output."""
    settings = Settings(
        port=free_port(), rasa_port=free_port(), action_port=free_port(), var_dir=var_dir,
        model=model, rasa_token="test-token",
    )
    env = {
        **os.environ,
        "SHOPCHAT_PORT": str(settings.port),
        "SHOPCHAT_RASA_PORT": str(settings.rasa_port),
        "SHOPCHAT_ACTION_PORT": str(settings.action_port),
        "SHOPCHAT_VAR_DIR": str(var_dir),
        "SHOPCHAT_MODEL": str(model),
        "SHOPCHAT_RASA_TOKEN": "test-token",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "shopchat"), "up"],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    stack = RunningStack(process, settings)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return stack


@pytest.fixture(scope="session")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The real stack, started once for the session and ready (healthz ok)."""
    running = start_stack(tmp_path_factory.mktemp("stack-var"), trained_model)
    try:
        running.wait_for_line("ready:", timeout=300)
        yield running
    finally:
        running.stop()


@dataclass
class Gateway:
    """An in-process gateway (its own var/) talking to the session stack's Rasa."""

    settings: Settings
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws/chat"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
def gateway_settings(stack: RunningStack, tmp_path: Path) -> Settings:
    return stack.settings.model_copy(update={"port": free_port(), "var_dir": tmp_path / "var"})


@pytest.fixture
async def gateway(gateway_settings: Settings) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


class ChatClient:
    """A shopper's websocket speaking docs/protocol.md, for tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_seq = 0
        self.conversation_id: str | None = None
        self.resume_token: str | None = None
        self._n = 0

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 30) -> dict[str, Any]:
        import asyncio

        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if "seq" in frame and frame.get("type") not in ("ack",):
            assert frame["seq"] == self.last_seq + 1, f"seq gap or repeat: {frame}"
            self.last_seq = frame["seq"]
        return frame

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first that matches."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            frames.append(frame)
            if predicate(frame):
                return frames

    async def hello(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "hello", **fields})
        welcome = await self.recv()
        assert welcome["type"] == "welcome", welcome
        self.conversation_id = welcome["conversation_id"]
        self.resume_token = welcome.get("resume_token", self.resume_token)
        return welcome

    async def say(self, text: str, client_id: str | None = None, **extra: Any) -> str:
        self._n += 1
        client_id = client_id or f"c{self._n}-{time.monotonic_ns()}"
        await self.send({"type": "message", "client_id": client_id, "text": text, **extra})
        return client_id

    async def turn(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        """Say something and collect frames until the bot stops typing."""
        await self.say(text, **extra)
        return await self.recv_until(lambda f: f["type"] == "typing" and not f["on"])


@pytest.fixture
def chat(gateway: Gateway) -> Callable[..., Any]:
    """Open shopper sockets to the in-process gateway: ``async with chat() as client``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_chat(**headers: str) -> AsyncIterator[ChatClient]:
        async with connect(gateway.url, additional_headers=headers or None) as ws:
            yield ChatClient(ws)

    return open_chat


def bot_texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f["type"] == "message" and f["author"] == "bot"]


__all__ = ["ChatClient", "Gateway", "RunningStack", "bot_texts", "current_model", "free_port",
           "start_stack", "wait_until_healthy"]
