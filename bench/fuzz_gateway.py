"""Fuzz run: hostile frames and HTTP requests against a live gateway on loopback.

Starts the gateway (``python -m handoff``, its own var/, no Rasa behind it, so
nothing leaves the machine) and drives it with the Hypothesis strategies of
``tests/handoff/hostile.py``, one bounded run per edge:

- a shopper socket after its hello, and one before it;
- a signed-in agent's socket, and a new agent socket's first frame;
- HTTP: every route of the app (path parameters, query strings, ``Authorization``
  headers and bodies of hostile bytes), sent as raw bytes.

After every frame the socket must still answer (a probe frame gets its error; a
text frame that is not UTF-8 may close it with 1007 and one over 64 KiB with
1009, as documented; any other close is a failure), a first agent
frame that is no valid ``auth`` must get ``unauthorized`` and close 4401, and no
HTTP answer may be a 5xx. At the end the gateway's log is searched for unhandled
exceptions (tracebacks and ERROR lines) and the SQLite file checked
(``PRAGMA integrity_check``). Not a speed benchmark: it counts, and fails
(exit 1) when anything above happened.

Prints a table and writes ``bench/results/fuzz_gateway.json``.

    .venv/bin/python bench/fuzz_gateway.py [--frames 2000] [--requests 600] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

# This checkout's code (the strategies live with the property tests, and tests/ is no
# installed package), whatever the venv's editable install points at.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import PROJECT_DIR, Settings
from handoff.app import create_app
from handoff.db.agents import AgentStore
from handoff.db.conversations import ConversationStore
from handoff.db.tokens import TokenStore
from handoff.protocol import MAX_FRAME_BYTES
from shopchat.stack import free_port, settings_env
from tests.handoff.hostile import encode, frames, strings, values

RESULTS = PROJECT_DIR / "bench" / "results" / "fuzz_gateway.json"
PASSWORD = "fuzz agent password"
AGENT = "fuzz@shop.example"
STAFF = "fuzz-staff@shop.example"
#: Close codes a socket may get, as docs/protocol.md says: a text frame that is not
#: UTF-8, a frame over 64 KiB, and no hello within the handshake timeout (a socket that
#: never joins lives that long).
DOCUMENTED_CLOSES = {1007, 1009, 4408}


class Edge:
    """Counts for one edge: frames sent, answers by kind, closes by code, failures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.answers: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()
        self.failures: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "answers": dict(self.answers.most_common()),
                "closes": {str(code): n for code, n in self.closes.items()},
                "failures": len(self.failures), "first_failures": self.failures[:5]}


def raw_frames() -> st.SearchStrategy[str]:
    """What goes on the wire: spoilt valid frames mostly, any JSON, any text, huge frames."""
    return st.one_of(
        st.tuples(frames(), st.booleans()).map(lambda f: encode(*f)),
        st.tuples(frames(), st.booleans()).map(lambda f: encode(*f)),
        st.tuples(values, st.booleans()).map(lambda v: encode(*v)),
        strings(max_size=200),
        st.integers(1, 3000).map(lambda d: '{"type":"ping","x":' + "[" * d + "]" * d + "}"),
        st.integers(60_000, 70_000).map(lambda n: json.dumps({"type": "ping", "x": "a" * n})),
    )


def run(strategy: st.SearchStrategy[Any], examples: int, seed: int,
        body: Callable[[Any], None]) -> None:
    """``body`` for ``examples`` values of ``strategy``: generation only (no shrinking, no
    example database), reproducible by ``seed``; ``body`` records, never raises."""
    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def each(value: Any) -> None:
        body(value)

    hypothesis_seed(seed)(each)()


def shopper(url: str, join: bool) -> ClientConnection:
    ws = connect(url, max_size=None, open_timeout=10)
    if join:
        ws.send(json.dumps({"type": "hello"}))
        assert json.loads(ws.recv(10))["type"] == "welcome"
    return ws


def send_text(ws: ClientConnection, raw: str) -> None:
    """``raw`` as a text frame, byte for byte: a lone surrogate goes out as the (invalid)
    UTF-8 a careless encoder writes, which the server must refuse (close 1007)."""
    ws.send(raw.encode("utf-8", "surrogatepass"), text=True)


def closes_the_socket(raw: str) -> bool:
    """Frames the server answers by closing (1007, 1009): nothing may follow them, or the
    close could be lost to a connection reset."""
    try:
        return len(raw.encode("utf-8")) > MAX_FRAME_BYTES
    except UnicodeEncodeError:
        return True


def answers_after(ws: ClientConnection, raw: str, probe: int) -> list[dict[str, Any]]:
    """Send ``raw``, then a probe (a frame of type ``probe-N``, which only that frame's
    ``unknown_type`` error names: a ping's pong could answer a hostile frame that was a
    ping too); the frames before the probe's answer."""
    send_text(ws, raw)
    marker = f"probe-{probe}"
    if not closes_the_socket(raw):
        ws.send(json.dumps({"type": marker}))
    got = []
    while True:
        frame = json.loads(ws.recv(10))
        if frame.get("code") == "unknown_type" and repr(marker) in frame.get("reason", ""):
            return got
        got.append(frame)


def fuzz_socket(edge: Edge, reopen: Callable[[], ClientConnection], examples: int,
                seed: int) -> None:
    state = {"ws": reopen()}
    #: The last frames sent and reconnections, for a failure's report.
    recent: list[str] = []

    def one(raw: str) -> None:
        edge.sent += 1
        recent[:] = [*recent[-3:], f"{raw[:30]!r} ({len(raw)} characters)"]
        try:
            for frame in answers_after(state["ws"], raw, edge.sent):
                kind = frame.get("type", "?")
                edge.answers[f"error:{frame['code']}" if kind == "error" else kind] += 1
            edge.answers["still usable"] += 1
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            edge.closes[code] += 1
            if code not in DOCUMENTED_CLOSES:
                edge.failures.append(f"closed {code} ({closed.__cause__!r}) after "
                                     f"{raw[:120]!r}; before it: {recent[:-1]}")
            state["ws"] = reopen()
            recent.append(f"reconnected after {code}")
        except TimeoutError:
            edge.failures.append(f"no answer to the probe after {raw[:120]!r}")
            state["ws"] = reopen()

    run(raw_frames(), examples, seed, one)
    state["ws"].close()


def fuzz_first_agent_frame(edge: Edge, url: str, examples: int, seed: int) -> None:
    def one(raw: str) -> None:
        edge.sent += 1
        with connect(url, max_size=None, open_timeout=10) as ws:
            try:
                send_text(ws, raw)
                frame = json.loads(ws.recv(10))
                edge.answers[f"{frame.get('type')}:{frame.get('code')}"] += 1
                ws.recv(10)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                edge.closes[code] += 1
                if code not in (4401, *DOCUMENTED_CLOSES):
                    edge.failures.append(f"closed {code} after {raw[:120]!r}")
            except TimeoutError:
                edge.failures.append(f"no answer to {raw[:120]!r}")

    run(raw_frames(), examples, seed, one)


HEADER_VALUES = st.one_of(
    strings(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b),
)


def http_requests(routes: list[tuple[str, str]], tokens: list[str]
                  ) -> st.SearchStrategy[bytes]:
    """Raw requests: mostly a route's own method and path, with its parameters, query,
    headers and body spoilt; sometimes another method. Half carry one of ``tokens``
    (a staff session, an API token) so that what lies behind the sign-in is fuzzed too."""
    def path(template: str, draw: st.DrawFn) -> str:
        def fill(_: re.Match[str]) -> str:
            value = draw(strings(max_size=40)).encode("utf-8", "surrogatepass")
            return urllib.parse.quote(value, safe="")
        filled = re.sub(r"\{[^}]+\}", fill, template)
        if draw(st.booleans()):
            pairs = draw(st.lists(st.tuples(st.sampled_from(
                ["days", "since", "limit", "status", "section", "x"]), values), max_size=3))
            query = "&".join(f"{k}={urllib.parse.quote(json.dumps(v), safe='')}"
                             for k, v in pairs)
            filled += "?" + query
        return filled

    @st.composite
    def request(draw: st.DrawFn) -> bytes:
        method, template = draw(st.sampled_from(routes))
        if draw(st.integers(0, 4)) == 0:
            method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "FUZZ"]))
        target = path(template, draw)
        body = draw(st.one_of(
            st.tuples(values, st.booleans()).map(lambda v: encode(*v).encode(
                "utf-8", "surrogatepass")),
            st.binary(max_size=200), st.just(b"")))
        headers = [b"Host: 127.0.0.1", b"Connection: close",
                   b"Content-Length: " + str(len(body)).encode()]
        if draw(st.booleans()):
            headers.append(b"Content-Type: " + draw(st.sampled_from(
                [b"application/json", b"application/json; charset=latin-9", b"text/plain"])))
        if draw(st.booleans()):
            headers.append(b"Authorization: Bearer " + draw(st.sampled_from(tokens)).encode())
        elif draw(st.booleans()):
            headers.append(b"Authorization: " + draw(st.sampled_from([b"Bearer ", b""]))
                           + draw(HEADER_VALUES))
        return (f"{method} {target} HTTP/1.1\r\n".encode() + b"\r\n".join(headers)
                + b"\r\n\r\n" + body)

    return request()


def send_raw(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def fuzz_http(edge: Edge, port: int, routes: list[tuple[str, str]], tokens: list[str],
              examples: int, seed: int) -> None:
    def one(request: bytes) -> None:
        edge.sent += 1
        status = send_raw(port, request)
        if status == 503 and request.split(b" ", 2)[1].startswith(b"/healthz"):
            edge.answers["503 /healthz"] += 1  # its answer while Rasa is down: the run has none
            return
        edge.answers[str(status)] += 1
        if status >= 500 or status == 0:
            edge.failures.append(f"{status} for {request[:160]!r}")

    run(http_requests(routes, tokens), examples, seed, one)


def unhandled(log: str) -> list[str]:
    """Every ERROR record in the gateway's log, with the exception that ended its
    traceback (``ValueError: ...``), if it had one."""
    found: list[str] = []
    lines = log.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("ERROR"):
            found.append(line)
        elif line.startswith("Traceback"):
            end = next((later for later in lines[n + 1:] if not later.startswith(" ")), "?")
            found[-1:] = [f"{found[-1] if found else 'traceback'} -> {end[:300]}"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames per socket edge")
    parser.add_argument("--requests", type=int, default=600, help="HTTP requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--log", type=Path, help="keep the gateway's log here")
    args = parser.parse_args()

    # A server that closes on a bad frame (1007, 1009) may reset the TCP connection under
    # the client's reader thread, which logs it; the close itself is what is counted.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        config = Settings(port=free_port(), rasa_port=free_port(), action_port=free_port(),
                          var_dir=Path(tmp) / "var", log_level="info")
        store = ConversationStore(config.gateway_db)
        AgentStore(store).add(AGENT, "Fuzz", PASSWORD, capacity=3)
        AgentStore(store).add(STAFF, "Fuzz staff", PASSWORD, capacity=1, role="admin")
        api_token = TokenStore(store).add("fuzz")
        store.close()
        log_path = Path(tmp) / "gateway.log"
        with log_path.open("w") as log_file:
            server = subprocess.Popen([sys.executable, "-m", "handoff"], cwd=PROJECT_DIR,
                                      env=settings_env(config, "unused"), stdout=log_file,
                                      stderr=subprocess.STDOUT)
            try:
                edges = drive(config, args, api_token)
            finally:
                server.terminate()
                server.wait(10)
        log = log_path.read_text()
        if args.log is not None:
            args.log.write_text(log)
        db = sqlite3.connect(config.gateway_db)
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()

    errors = unhandled(log)
    failures = sum(len(e.failures) for e in edges)
    http = next(e for e in edges if e.name == "http")
    result = {
        "benchmark": "fuzz_gateway",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "params": {"frames": args.frames, "requests": args.requests, "seed": args.seed},
        "seconds": round(time.monotonic() - started, 1),
        "edges": {e.name: e.as_dict() for e in edges},
        "unhandled_exceptions": len(errors),
        "first_unhandled": errors[:10],
        "http_5xx": sum(n for status, n in http.answers.items()
                        if status.startswith("5") and status != "503 /healthz"),
        "failures": failures,
        "sqlite_integrity": integrity,
    }
    table = Table(title=f"fuzz run, seed {args.seed}, {os.cpu_count()} cores, "
                        f"{result['seconds']} s")
    for column in ("edge", "sent", "answers (top 4)", "closes", "failures"):
        table.add_column(column, justify="right" if column in ("sent", "failures") else "left")
    for edge in edges:
        top = ", ".join(f"{k} {n}" for k, n in edge.answers.most_common(4))
        closes = ", ".join(f"{c}: {n}" for c, n in edge.closes.items()) or "-"
        table.add_row(edge.name, str(edge.sent), top, closes, str(len(edge.failures)))
    console = Console(width=120)
    console.print(table)
    console.print(f"unhandled exceptions in the gateway log: {len(errors)}; HTTP 5xx: "
                  f"{result['http_5xx']}; SQLite: {integrity}")
    for line in errors[:10]:
        console.print(f"  {line}", markup=False)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if errors or failures or integrity != "ok" else 0


def drive(config: Settings, args: argparse.Namespace, api_token: str) -> list[Edge]:
    port = config.port
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=2)  # 503 without Rasa: up all the same
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    chat_url = f"ws://127.0.0.1:{port}/ws/chat"
    agent_url = f"ws://127.0.0.1:{port}/ws/agent"
    def login(email: str) -> str:
        answer = requests.post(f"{base}/api/agents/login",
                               json={"email": email, "password": PASSWORD}, timeout=10)
        return str(answer.json()["token"])

    token = login(AGENT)

    def signed_in_agent() -> ClientConnection:
        ws = connect(agent_url, max_size=None, open_timeout=10)
        ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(ws.recv(10))["type"] != "state":
            pass
        return ws

    joined, fresh = Edge("shopper (joined)"), Edge("shopper (before hello)")
    agent, first = Edge("agent (signed in)"), Edge("agent (first frame)")
    http = Edge("http")
    fuzz_socket(joined, lambda: shopper(chat_url, join=True), args.frames, args.seed)
    fuzz_socket(fresh, lambda: shopper(chat_url, join=False), args.frames // 4, args.seed + 1)
    fuzz_socket(agent, signed_in_agent, args.frames, args.seed + 2)
    fuzz_first_agent_frame(first, agent_url, args.frames // 4, args.seed + 3)
    routes = sorted({(route.method, info.get("path") or info.get("formatter") or "/")
                     for route in create_app(config).router.routes()
                     for info in [route.resource.get_info()] if route.resource is not None
                     if route.method != "HEAD"})
    fuzz_http(http, port, routes, [login(STAFF), api_token], args.requests, args.seed + 4)
    return [joined, fresh, agent, first, http]


if __name__ == "__main__":
    sys.exit(main())
