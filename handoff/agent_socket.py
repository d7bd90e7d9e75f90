"""The agents' entry points: ``POST /api/agents/login`` and the ``/ws/agent`` socket.

An agent signs in with email and password and gets a session token; the
console then opens ``/ws/agent`` and sends ``{"type": "auth", "token": ...}``
as its first frame (tokens stay out of URLs and access logs). Without a valid,
unexpired token the socket gets an ``unauthorized`` error and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field

from handoff.agent_protocol import Auth, parse_agent_frame
from handoff.desk import AgentConnection, Desk
from handoff.exceptions import ProtocolError
from handoff.http import bearer_token, problem, read_json
from handoff.hub import Subscriber
from handoff.protocol import error_frame, internal_error

__all__ = [
    "UNAUTHORIZED_CLOSE",
    "LoginThrottle",
    "agent_socket",
    "login",
    "logout",
]

log = logging.getLogger("gateway.agents")

#: Websocket close code for a refused or expired sign-in (4000-4999 are the application's).
UNAUTHORIZED_CLOSE = 4401


class LoginThrottle:
    """Slows password guessing: after ``limit`` failures for one email or one address
    within ``window`` seconds, sign-ins for it are refused until the window passes."""

    def __init__(self, limit: int = 5, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def retry_after(self, keys: list[str], now: float) -> float:
        """Seconds until these keys may try again (0: now)."""
        waits = [self.window - (now - recent[0]) for key in keys
                 if len(recent := self._recent(key, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


async def login(request: web.Request, desk: Desk, throttle: LoginThrottle) -> web.Response:
    body = await read_json(request, LoginBody, "Send JSON with 'email' and 'password'.",
                           desk.settings.http_timeout)
    keys = [f"email:{body.email.strip().lower()}", f"ip:{request.remote}"]
    now = time.time()
    wait = throttle.retry_after(keys, now)
    if wait > 0:
        raise problem(429, f"Too many failed sign-ins. Try again in {int(wait) + 1} s.",
                      "too_many_sign_ins", headers={"Retry-After": str(int(wait) + 1)})
    lifetime = desk.settings.agent_session_hours * 3600
    # Argon2 is deliberately slow: verify off the event loop so chats keep flowing.
    session = await asyncio.to_thread(desk.accounts.login, body.email, body.password, lifetime)
    if session is None:
        throttle.failed(keys, now)
        log.info("failed sign-in for %s from %s", body.email, request.remote)
        raise problem(401, "Wrong email or password.", "wrong_sign_in")
    throttle.succeeded(keys[:1])
    agent = session.agent
    return web.json_response({
        "token": session.token,
        "expires_at": session.expires_at,
        "agent": {"id": agent.id, "name": agent.name, "email": agent.email, "role": agent.role,
                  "capacity": agent.capacity},
    })


async def logout(request: web.Request, desk: Desk) -> web.Response:
    token = bearer_token(request)
    if token:
        desk.accounts.logout(token)
    return web.json_response({"ok": True})


async def _refuse(ws: web.WebSocketResponse, reason: str) -> None:
    await ws.send_json(error_frame(ProtocolError("unauthorized", reason)))
    await ws.close(code=UNAUTHORIZED_CLOSE, message=b"unauthorized")


async def agent_socket(ws: web.WebSocketResponse, desk: Desk, auth_timeout: float) -> None:
    """Serve one prepared agent socket until it closes; it has ``auth_timeout`` seconds to
    send its ``auth`` frame."""
    try:
        first = await ws.receive(timeout=auth_timeout)
    except TimeoutError:
        await _refuse(ws, "Send an auth frame with your session token first.")
        return
    if first.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return
    try:
        frame = parse_agent_frame(first.data)
    except ProtocolError:
        frame = None
    if not isinstance(frame, Auth):
        await _refuse(ws, "Send an auth frame with your session token first.")
        return
    session = desk.accounts.authenticate(frame.token)
    if session is None:
        await _refuse(ws, "Your session is missing, wrong or expired. Sign in again.")
        return
    if session.agent.role == "staff":
        await _refuse(ws, "Content staff accounts use /admin/, not the agent console.")
        return
    connection = AgentConnection(session.agent, Subscriber(ws, 0), session.expires_at)
    desk.connect(connection)
    expired = False
    try:
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
            if time.time() >= connection.expires_at:
                expired = True
                break
            try:
                await desk.handle(connection, parse_agent_frame(message.data))
            except ProtocolError as error:
                connection.send(error_frame(error))
            except Exception:  # a bug must cost one frame, never the agent's socket
                log.exception("agent=%s frame failed", connection.agent.id)
                connection.send(error_frame(internal_error()))
    finally:
        desk.disconnect(connection)
        await connection.socket.close()
    if expired:
        await _refuse(ws, "Your session expired. Sign in again.")
