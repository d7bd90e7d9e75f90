"""Rasa's HTTP API and the action server's health check, as the gateway uses them
(handoff/rasa_bridge.py), answered by a :class:`~tests.scripted_bot.ScriptedBot` on a
loopback port: a real local server for gateways that reach Rasa over HTTP, in-process or
as their own process (``python -m handoff``). It only carries requests to the scripted
bot, which holds every rule; it can be made slow (``delay``) or down (``bot.down``: 503,
as a Rasa without a model answers), and it checks Rasa's ``?token=``.

Run it by hand for a gateway without a trained model::

    .venv/bin/python -m tests.scripted_rasa --port 5005 --token dev-token
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.scripted_bot import MODEL_ID, ScriptedBot

__all__ = ["ScriptedRasa"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Rasa's own answer to a request without the right token.
NOT_AUTHENTICATED = {"version": "3.6.21", "status": "failure", "reason": "NotAuthenticated",
                     "message": "User is not authenticated.", "code": 401}
#: Paths Rasa (and the action server) serve without a token.
OPEN_PATHS = frozenset({"/", "/version", "/health"})


class ScriptedRasa:
    """``async with ScriptedRasa(token=...) as rasa``: serving on ``rasa.url`` until the
    block ends. Point a gateway's ``rasa_port`` and ``action_port`` at ``rasa.port``."""

    def __init__(self, bot: ScriptedBot | None = None, token: str | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.bot = bot or ScriptedBot()
        self.token = token
        self.host = host
        self.port = port
        #: Seconds every request waits before it is answered (a slow Rasa).
        self.delay = 0.0
        #: ``(method, path)`` of every request, in the order they came.
        self.requests: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._as_rasa])
        app.router.add_post("/webhooks/rest/webhook", self._webhook)
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        app.router.add_post("/model/parse", self._parse)
        app.router.add_get("/status", self._status)
        app.router.add_get("/health", self._health)  # the action server's
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedRasa:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @web.middleware
    async def _as_rasa(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.delay:
            await asyncio.sleep(self.delay)
        if (self.token is not None and request.path not in OPEN_PATHS
                and request.query.get("token") != self.token):
            return web.json_response(NOT_AUTHENTICATED, status=401)
        if self.bot.down:
            return web.json_response({"status": "failure", "message": "scripted: down"},
                                     status=503)
        return await handler(request)

    async def _webhook(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        replies = await self.bot.send(body["sender"], body["message"], body.get("metadata") or {})
        return web.json_response(replies)

    async def _tracker(self, request: web.Request) -> web.Response:
        everything = request.query.get("include_events", "AFTER_RESTART") != "NONE"
        return web.json_response(self.bot.state(request.match_info["sender"], everything))

    async def _append(self, request: web.Request) -> web.Response:
        body = await request.json()
        events = body if isinstance(body, list) else [body]
        await self.bot.append_events(request.match_info["sender"], events)
        everything = request.query.get("include_events", "AFTER_RESTART") != "NONE"
        return web.json_response(self.bot.state(request.match_info["sender"], everything))

    async def _parse(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        return web.json_response(await self.bot.parse(body["text"]))

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"model_id": MODEL_ID, "model_file": f"{MODEL_ID}.tar.gz",
                                  "num_active_training_jobs": 0})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


async def _serve(port: int, token: str | None) -> None:
    async with ScriptedRasa(token=token, port=port) as rasa:
        print(f"scripted Rasa and action server on {rasa.url}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--token", default=None, help="Rasa's --auth-token")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.token))


if __name__ == "__main__":
    main()
