"""``shopchat up``: Rasa, the action server and the gateway under one supervisor (honcho).

Each process's lines are prefixed with its name. The supervisor prints
"ready" once the gateway's /healthz reports every dependency up; if any
process dies, or on Ctrl-C, all three are stopped. With ``rasa_replicas`` > 1 it
starts that many Rasa servers, each with its own action server, sharing Postgres and
Redis; one of them dying stops nothing while another replica is whole.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Message
from pydantic import SecretStr

from bot.settings import Settings
from shopchat.exceptions import ShopchatError
from shopchat.rasa_env import (
    endpoints_file,
    rasa_env,
    rasa_executable,
    shared_storage_env,
)
from shopchat.training import current_model

__all__ = [
    "ProcessSpec",
    "ReplicaManager",
    "StackHandle",
    "free_port",
    "free_ports",
    "plan",
    "replica_ports",
    "replica_urls",
    "settings_env",
    "spawn",
    "up",
    "wait_until_healthy",
]


#: honcho's exit code after SIGINT.
SIGINT_EXIT = 130


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]


def plan(settings: Settings, token: str, model: Path) -> list[ProcessSpec]:
    """The stack's processes, with their command lines and environments: Rasa and its
    action server (``rasa_replicas`` of each, ``rasa-1``, ``actions-1``, ... when more
    than one, on consecutive ports), then the gateway."""
    settings.var_path.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    shared = settings_env(settings, token)
    endpoints = endpoints_file(settings)
    storage = shared_storage_env(settings)
    servers: list[ProcessSpec] = []
    for i, (rasa_port, action_port) in enumerate(replica_ports(settings), start=1):
        suffix = f"-{i}" if settings.rasa_replicas > 1 else ""
        servers.append(ProcessSpec(
            f"rasa{suffix}",
            [
                str(rasa_executable(settings)), "run",
                "--enable-api", "--auth-token", token,
                "--interface", "127.0.0.1", "--port", str(rasa_port),
                "--model", str(model),
                "--endpoints", str(endpoints),
                "--credentials", str(settings.project_dir / "bot" / "credentials.yml"),
                "--response-timeout", str(int(settings.rasa_timeout)),
            ],
            rasa_env(
                settings,
                SHOPCHAT_ACTION_URL=f"http://127.0.0.1:{action_port}/webhook",
                SHOPCHAT_TRACKER_DB=str(settings.tracker_db),
                PYTHONUNBUFFERED="1",
                **storage,
            ),
        ))
        servers.append(ProcessSpec(
            f"actions{suffix}",
            [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)],
            {**shared, "SANIC_HOST": "127.0.0.1", "SHOPCHAT_KB_WARM_UP": "true"},
        ))
    gateway = ProcessSpec("gateway", [python, "-m", "handoff"], shared)
    return [*servers, gateway]


def replica_ports(settings: Settings) -> list[tuple[int, int]]:
    """(Rasa's port, its action server's port) of each replica `shopchat up` starts."""
    return [(settings.rasa_port + i, settings.action_port + i)
            for i in range(settings.rasa_replicas)]


def replica_urls(settings: Settings) -> tuple[list[str], list[str]]:
    """The URLs of the Rasa servers `shopchat up` starts, and of their action servers."""
    ports = replica_ports(settings)
    return ([f"http://127.0.0.1:{rasa}" for rasa, _ in ports],
            [f"http://127.0.0.1:{action}" for _, action in ports])


def settings_env(settings: Settings, token: str) -> dict[str, str]:
    """The whole environment of a child process (gateway, actions): the supervisor's own,
    with the stack's settings on top.

    honcho hands a child exactly this mapping, so it must start from ``os.environ``:
    otherwise every setting a person gives only in the environment
    (``SHOPCHAT_ALLOWED_ORIGINS``, the queue, webhook and retention settings,
    ``SHOPCHAT_CONFIG``) would silently not reach the processes it configures. The
    stack's own values (ports, token, var/, a per-run identity secret) win, since the
    children must agree with the supervisor on them.
    """
    extra = {}
    if settings.identity_secret is not None:
        extra["SHOPCHAT_IDENTITY_SECRET"] = settings.identity_secret.get_secret_value()
    if settings.demo_identity:
        extra["SHOPCHAT_DEMO_IDENTITY"] = "true"
    if settings.database_url is not None and settings.redis_url is not None:
        extra["SHOPCHAT_DATABASE_URL"] = settings.database_url.get_secret_value()
        extra["SHOPCHAT_REDIS_URL"] = settings.redis_url.get_secret_value()
    return {
        **os.environ,
        **extra,
        "SHOPCHAT_RASA_TOKEN": token,
        "SHOPCHAT_RASA_PORT": str(settings.rasa_port),
        "SHOPCHAT_ACTION_PORT": str(settings.action_port),
        "SHOPCHAT_RASA_REPLICAS": str(settings.rasa_replicas),
        # The servers this stack starts, whatever SHOPCHAT_RASA_URLS says in the shell.
        "SHOPCHAT_RASA_URLS": json.dumps(replica_urls(settings)[0]),
        "SHOPCHAT_ACTION_URLS": json.dumps(replica_urls(settings)[1]),
        "SHOPCHAT_PORT": str(settings.port),
        "SHOPCHAT_HOST": settings.host,
        "SHOPCHAT_VAR_DIR": str(settings.var_path),
        "SHOPCHAT_MODELS_DIR": str(settings.models_path),
        "SHOPCHAT_LOG_LEVEL": settings.log_level,
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def wait_until_healthy(url: str, timeout: float, stop: threading.Event | None = None) -> bool:
    """Poll ``url`` (a /healthz) until it answers ``ok: true`` with every Rasa replica up;
    False on timeout or ``stop``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                health = json.loads(response.read())
            replicas = health.get("dependencies", {}).get("rasa", {}).get("replicas", [])
            if health.get("ok") and all(replica["ok"] for replica in replicas):
                return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    return False


class ReplicaManager(Manager):  # type: ignore[misc]
    """honcho's supervisor for a stack with Rasa replicas: a replica (``rasa-N`` or
    ``actions-N``) that exits does not stop the others while another replica is whole,
    since the gateway carries on with those; the gateway exiting, or the last replica
    breaking, stops everything as before."""

    def _any_stopped(self) -> bool:
        stopped = {name for name, process in self._processes.items()
                   if process.get("returncode") is not None}
        replicas = {name.split("-", 1)[1] for name in self._processes
                    if name.startswith(("rasa-", "actions-"))}
        whole = [n for n in replicas if f"rasa-{n}" not in stopped
                 and f"actions-{n}" not in stopped]
        others = stopped - {name for name in stopped if name.startswith(("rasa-", "actions-"))}
        return bool(others) or not whole


def _announce(manager: Manager, text: str) -> None:
    manager.events.put(Message("line", text + "\n", datetime.datetime.now(), "system", None))


def up(settings: Settings, ready_timeout: float = 300) -> int:
    """Run the stack in the foreground until Ctrl-C or a process exits; returns the exit code."""
    model = current_model(settings)
    token = (
        settings.rasa_token.get_secret_value() if settings.rasa_token else secrets.token_urlsafe(24)
    )
    if settings.identity_secret is None:
        # The demo shop signs its customer with a secret that lives for this run only;
        # a shop that configures its own secret gets no demo sign-in route.
        settings = settings.model_copy(update={
            "identity_secret": SecretStr(secrets.token_urlsafe(32)), "demo_identity": True,
        })
    shop_line = prepare_shop(settings)
    manager = Manager() if settings.rasa_replicas == 1 else ReplicaManager()
    for spec in plan(settings, token, model):
        manager.add_process(spec.name, shlex.join(spec.argv), env=spec.env,
                            cwd=str(settings.project_dir))
    stop = threading.Event()

    def watch() -> None:
        if shop_line:
            _announce(manager, shop_line)
        servers = "rasa" if settings.rasa_replicas == 1 else \
            f"{settings.rasa_replicas} rasa replicas"
        _announce(manager, f"waiting for {servers} ({model.name}), actions and gateway ...")
        health = f"http://127.0.0.1:{settings.port}/healthz"
        if wait_until_healthy(health, ready_timeout, stop):
            _announce(manager, f"ready: open {settings.public_url}/demo/ (health: {health})")
            _announce(manager, agents_hint(settings))
        elif not stop.is_set():
            _announce(manager, f"not ready after {ready_timeout:.0f}s: see the lines above")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if settings.model is None:
        threading.Thread(target=follow_current_model,
                         args=(settings, token, model, stop, lambda line: _announce(manager, line)),
                         daemon=True).start()
    try:
        manager.loop()
    finally:
        stop.set()
    # Ctrl-C is how a person stops the stack: that is success, not an error for make.
    code = int(manager.returncode or 0)
    return 0 if code == SIGINT_EXIT else code


def activate_model(rasa_url: str, token: str, model: Path, timeout: float = 600) -> None:
    """Load ``model`` into the running Rasa server (``PUT /model``).

    Rasa keeps answering with the old model until the new one is loaded; a
    message that waits too long meanwhile stays pending in the gateway and is
    retried, so none is lost.
    """
    request = urllib.request.Request(
        f"{rasa_url}/model?token={urllib.parse.quote(token)}", method="PUT",
        data=json.dumps({"model_file": str(model)}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status >= 300:
            raise OSError(f"Rasa refused the model: HTTP {response.status}")


def follow_current_model(settings: Settings, token: str, serving: Path,
                         stop: threading.Event, say: Callable[[str], None],
                         interval: float = 5.0) -> None:
    """Switch every running Rasa replica to each model `shopchat train` activates
    (models/current.json), one replica after the other: the others answer meanwhile."""
    while not stop.wait(interval):
        try:
            latest = current_model(settings)
        except ShopchatError:
            continue
        if latest == serving:
            continue
        say(f"activating {latest.name} (was {serving.name}) ...")
        failed = []
        for url in replica_urls(settings)[0]:
            try:
                activate_model(url, token, latest)
            except (OSError, urllib.error.URLError) as error:
                failed.append(f"{url}: {error}")
        serving = latest  # do not retry in a loop; the next training tries again
        if failed:
            say(f"could not activate {latest.name} on " + "; ".join(failed)
                + ("" if len(failed) == settings.rasa_replicas
                   else " (the other replicas serve it)"))
            continue
        say(f"now serving {latest.name}")


def prepare_shop(settings: Settings) -> str | None:
    """Load the demo shop's data into an empty store (first start); a line saying so."""
    if settings.shop_backend != "sqlite":
        return f"shop: orders and products from {settings.shop_api_url}"
    from bot.store.demo import ensure_demo_data

    loaded = ensure_demo_data(settings)
    if loaded is None:
        return None
    return f"shop: loaded the demo shop into {settings.shop_db} ({loaded})"


def agents_hint(settings: Settings) -> str:
    """Where agents sign in, and how to make the first account if there is none."""
    from handoff.db.agents import AgentStore
    from handoff.db.conversations import ConversationStore

    store = ConversationStore(settings.gateway_db)
    try:
        count = len(AgentStore(store).all())
    finally:
        store.close()
    console = f"{settings.public_url}/console/"
    if count:
        return f"agents: sign in at {console} ({count} account{'s' if count > 1 else ''})"
    return (f"agents: no accounts yet; create one with `.venv/bin/shopchat agents add "
            f"you@example.com --name You`, then sign in at {console}")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nothing listens on right now (the
    replicas of `shopchat up --rasa-replicas` take consecutive ports)."""
    while True:
        first = free_port()
        if first + count <= 65536 and all(_port_free(first + i) for i in range(1, count)):
            return first


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class StackHandle:
    """A `shopchat up` child process (for tests and benchmarks) and the lines it printed."""

    process: subprocess.Popen[str]
    settings: Settings
    lines: list[str] = field(default_factory=list)
    _pump: threading.Thread | None = None

    def wait_for_line(self, needle: str, timeout: float) -> str:
        """The first printed line containing ``needle``; AssertionError with the output if none."""
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
        """Ctrl-C the supervisor, as a person would; kill the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def spawn(var_dir: Path, model: Path, token: str,
          identity_secret: str | None = None,
          env: Mapping[str, str] | None = None, rasa_replicas: int = 1) -> StackHandle:
    """Start `shopchat up` on free ports with its own var/ dir, collecting its output.

    With ``identity_secret`` the stack verifies identities signed with it (tests sign
    their own); without, `shopchat up` makes a per-run demo secret. ``env`` adds
    variables to the environment `shopchat up` is started in, as a person's shell would
    (with ``rasa_replicas`` > 1 it must name SHOPCHAT_DATABASE_URL and SHOPCHAT_REDIS_URL).
    """
    env = env or {}
    settings = Settings(
        port=free_port(), rasa_port=free_ports(rasa_replicas),
        action_port=free_ports(rasa_replicas), var_dir=var_dir, model=model, rasa_token=token,
        identity_secret=SecretStr(identity_secret) if identity_secret else None,
        rasa_replicas=rasa_replicas, database_url=env.get("SHOPCHAT_DATABASE_URL"),
        redis_url=env.get("SHOPCHAT_REDIS_URL"),
    )
    environment = {
        **os.environ,
        **env,
        "SHOPCHAT_RASA_REPLICAS": str(rasa_replicas),
        "SHOPCHAT_PORT": str(settings.port),
        "SHOPCHAT_RASA_PORT": str(settings.rasa_port),
        "SHOPCHAT_ACTION_PORT": str(settings.action_port),
        "SHOPCHAT_VAR_DIR": str(var_dir),
        "SHOPCHAT_MODEL": str(model),
        "SHOPCHAT_RASA_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }
    if identity_secret:
        environment["SHOPCHAT_IDENTITY_SECRET"] = identity_secret
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "shopchat"), "up"],
        cwd=settings.project_dir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    handle = StackHandle(process, settings)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            handle.lines.append(line)

    handle._pump = threading.Thread(target=pump, daemon=True)
    handle._pump.start()
    return handle
