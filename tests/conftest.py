"""Shared fixtures: settings on temporary dirs and free ports, the trained model,
the real stack (`shopchat up`: Rasa + action server + gateway) once per session,
in-process gateways wired to that stack's Rasa, and, for the fast tier, gateways whose
assistant is the scripted stand-in (tests/scripted_bot.py, over HTTP tests/scripted_rasa.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

import handoff.db.agents as agents_module
from bot.settings import Settings
from handoff.app import start as start_gateway
from handoff.db.conversations import Conversation, ConversationStore
from shopchat.stack import StackHandle, free_port, spawn
from shopchat.training import train

#: The fast tier (`make check --hypothesis-profile=fast`) draws a tenth of the random
#: examples the whole suite does; `make test` runs Hypothesis' default profile.
hypothesis_settings.register_profile("fast", max_examples=10)

if TYPE_CHECKING:
    from tests.scripted_rasa import ScriptedRasa

#: What the test stack verifies signed customer identities with (tests sign their own).
IDENTITY_SECRET = "test-identity-secret-not-for-production"
#: The API token of the test stack's Rasa, and of the scripted one.
RASA_TOKEN = "test-token"

#: Fixtures that make a test slow: a Rasa model, a browser.
SLOW_FIXTURES = {"trained_model", "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a trained model or a browser `slow`, so that
    `make check` (-m "not stack and not slow") stays under a minute."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


#: The gateway's own password hasher: Argon2id with argon2-cffi's default parameters
#: (RFC 9106's low-memory profile, about 0.1 s of CPU a hash or check).
PRODUCT_PASSWORD_HASHER = agents_module._hasher


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Accounts the tests create and sign in to are hashed with Argon2id at argon2-cffi's
    cheapest parameters (``argon2.profiles.CHEAPEST``, for tests), in this process: the
    fast tier makes about a hundred hashes and checks, 16 s of CPU at the product's cost.
    tests/handoff/test_agents.py checks the product's parameters with the product's
    hasher; gateways in their own processes (tests/handoff/test_restart.py) keep it too,
    and rehash a cheap hash at the first sign-in, as after any change of parameters."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agents_module, "_hasher", PasswordHasher.from_parameters(CHEAPEST))
        yield


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The project's model, trained once per run (`make test` has usually done it already),
    and the knowledge-base index (incremental: nothing to do when articles are unchanged)."""
    from shopchat.kb_eval import build

    settings = Settings()
    build(settings.kb_articles_path, settings.kb_index_path)
    return train(settings).model


@pytest.fixture(scope="session")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """The real stack, started once for the session and ready (healthz ok)."""
    running = spawn(tmp_path_factory.mktemp("stack-var"), trained_model, RASA_TOKEN,
                    identity_secret=IDENTITY_SECRET)
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
    #: The assistant instead of Rasa (a ScriptedBot), if any.
    bot: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws/chat"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    async def start(self) -> None:
        self.runner = await start_gateway(self.settings, self.bot)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def stored(self, conversation_id: str | None) -> Conversation:
        """The conversation as the gateway stored it (read from its database file)."""
        assert conversation_id is not None
        store = ConversationStore(self.settings.gateway_db)
        try:
            found = store.get(conversation_id)
        finally:
            store.close()
        assert found is not None, f"no conversation {conversation_id}"
        return found


@asynccontextmanager
async def serving(settings: Settings, bot: Any = None) -> AsyncIterator[Gateway]:
    """An in-process gateway on ``settings``, stopped on leaving the block."""
    gw = Gateway(settings, bot=bot)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
def gateway_settings(stack: StackHandle, tmp_path: Path) -> Settings:
    return stack.settings.model_copy(update={"port": free_port(), "var_dir": tmp_path / "var"})


@pytest.fixture
async def gateway(gateway_settings: Settings) -> AsyncIterator[Gateway]:
    async with serving(gateway_settings) as gw:
        yield gw


@pytest.fixture
def gateway_with(gateway_settings: Settings) -> Callable[..., Any]:
    """An in-process gateway with some settings changed: ``async with gateway_with(...)``."""
    return lambda **overrides: serving(gateway_settings.model_copy(update=overrides))


@pytest.fixture
def bare_gateway_with(tmp_path: Path) -> Callable[..., Any]:
    """An in-process gateway with no Rasa behind it (nothing listens on its Rasa port), for
    the fast tier: everything up to the bot's turn, ``async with bare_gateway_with(...)``."""
    return lambda **overrides: serving(bare_settings(tmp_path, **overrides))


def bare_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on a temporary var/ and free ports, nothing listening on Rasa's (unless
    ``overrides`` name another)."""
    return Settings(**{"var_dir": tmp_path / "var", "port": free_port(),
                       "rasa_port": free_port(), "action_port": free_port(), **overrides})


@pytest.fixture
def scripted_gateway_with(tmp_path: Path) -> Callable[..., Any]:
    """An in-process gateway whose assistant is the scripted stand-in for Rasa
    (tests/scripted_bot.py), for the fast tier: ``async with scripted_gateway_with(...)``;
    the gateway's ``bot`` is that ScriptedBot."""
    from tests.scripted_bot import ScriptedBot

    return lambda **overrides: serving(bare_settings(tmp_path, **overrides), ScriptedBot())


@pytest.fixture
async def scripted_rasa() -> AsyncIterator[ScriptedRasa]:
    """The scripted stand-in for Rasa and the action server over HTTP
    (tests/scripted_rasa.py) on a free loopback port, with the test stack's token; its
    ``bot`` is the ScriptedBot that answers."""
    from tests.scripted_rasa import ScriptedRasa

    async with ScriptedRasa(token=RASA_TOKEN) as rasa:
        yield rasa


@pytest.fixture
def scripted_rasa_settings(scripted_rasa: ScriptedRasa, tmp_path: Path) -> Settings:
    """Settings like the test stack's (a temporary var/, free ports, its Rasa token and
    identity secret) for a gateway, in-process or its own process, whose Rasa and action
    server are ``scripted_rasa``: the real RasaBridge, over real HTTP, without a model."""
    return bare_settings(tmp_path, rasa_port=scripted_rasa.port,
                         action_port=scripted_rasa.port, rasa_token=SecretStr(RASA_TOKEN),
                         identity_secret=SecretStr(IDENTITY_SECRET))


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
    @asynccontextmanager
    async def open_chat(**headers: str) -> AsyncIterator[ChatClient]:
        async with connect(gateway.url, additional_headers=headers or None) as ws:
            yield ChatClient(ws)

    return open_chat


class AgentClient:
    """An agent's console socket speaking the agent side of docs/protocol.md, for tests."""

    def __init__(self, ws: ClientConnection, token: str) -> None:
        self.ws = ws
        self.token = token
        self.welcome: dict[str, Any] = {}
        self.backlog: list[dict[str, Any]] = []
        self._n = 0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 30) -> dict[str, Any]:
        import asyncio

        if self.backlog:
            return self.backlog.pop(0)
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The first frame that matches; frames before it are kept for later ``expect`` calls."""
        import asyncio

        for i, frame in enumerate(self.backlog):
            if predicate(frame):
                return self.backlog.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(remaining, 0.01)))
            if predicate(frame):
                return frame
            self.backlog.append(frame)

    async def do(self, kind: str, **fields: Any) -> None:
        await self.send({"type": kind, **fields})

    async def reply(self, conversation_id: str, text: str, client_id: str | None = None) -> str:
        self._n += 1
        client_id = client_id or f"a{self._n}-{time.monotonic_ns()}"
        await self.do("message", conversation_id=conversation_id, client_id=client_id, text=text)
        return client_id


async def agent_login(http: str, email: str, password: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(
        f"{http}/api/agents/login", json={"email": email, "password": password}
    ) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["token"]
        return token


def add_agent(settings: Settings, email: str, name: str, capacity: int = 3,
              role: str = "agent", languages: tuple[str, ...] = ()) -> None:
    from handoff.db.agents import AgentStore

    store = ConversationStore(settings.gateway_db)
    try:
        AgentStore(store).add(email, name, AGENT_PASSWORD, capacity=capacity, role=role,
                              languages=languages)
    finally:
        store.close()


AGENT_PASSWORD = "correct horse battery"


@asynccontextmanager
async def agent_console(
    http: str, email: str, presence: str = "online"
) -> AsyncIterator[AgentClient]:
    """A signed-in agent socket (past its welcome and first state frames)."""
    token = await agent_login(http, email, AGENT_PASSWORD)
    url = http.replace("http://", "ws://") + "/ws/agent"
    async with connect(url) as ws:
        client = AgentClient(ws, token)
        await client.do("auth", token=token)
        client.welcome = await client.expect(lambda f: f["type"] == "welcome")
        await client.expect(lambda f: f["type"] == "state")
        if presence != "online":
            await client.do("presence", status=presence)
        yield client


def run_shopchat(*args: str, env: Mapping[str, str | None] | None = None,
                 stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``shopchat ARGS`` run in this process: the command's own entry point
    (``shopchat.cli.main``, with its error handling and exit codes) inside click's
    CliRunner isolation, which swaps stdin, stdout, stderr and the ``env`` variables for
    the call. A process costs ~0.5 s of start-up and imports each time;
    tests/shopchat/test_cli.py keeps running the installed ``shopchat`` itself. An
    exception that would have been a traceback is raised here, failing the test."""
    from click.testing import CliRunner

    from shopchat.cli import main

    code: int | str | None = 0
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _), \
            pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["shopchat", *args])
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["shopchat", *args], returncode, stdout, stderr)


def is_bot_message(frame: dict[str, Any]) -> bool:
    return frame["type"] == "message" and frame["author"] == "bot"


def bot_texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if is_bot_message(f)]


__all__ = [
    "AGENT_PASSWORD",
    "IDENTITY_SECRET",
    "RASA_TOKEN",
    "AgentClient",
    "ChatClient",
    "Gateway",
    "add_agent",
    "agent_console",
    "agent_login",
    "bot_texts",
    "free_port",
    "is_bot_message",
    "run_shopchat",
]
