"""The gateway's aiohttp application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, web

from bot.settings import Settings
from bot.store.base import ShopStore
from handoff import agent_socket
from handoff.chat import ChatSession, origin_allowed, websocket_response
from handoff.db.conversations import Checkpoints, ConversationStore
from handoff.desk import Desk, load_canned
from handoff.http import AUTHORITIES, auth_middleware, problem_middleware, quiet_client_errors
from handoff.hub import Hub
from handoff.mail import Mailer
from handoff.order_events import OrderUpdates
from handoff.rasa_bridge import Bot, RasaBridge
from handoff.webhooks import Webhooks

__all__ = ["DESK", "HUB", "ORDER_UPDATES", "SETTINGS", "SHOP", "create_app", "start"]

log = logging.getLogger("gateway")

SETTINGS = web.AppKey("settings", Settings)
#: Every open websocket, so a shutdown can tell clients to reconnect (1001 going away).
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
HUB = web.AppKey("hub", Hub)
DESK = web.AppKey("desk", Desk)
THROTTLE = web.AppKey("login_throttle", agent_socket.LoginThrottle)
#: The assistant to use instead of Rasa (the tests' scripted one); unset: Rasa.
BOT = web.AppKey("bot", Bot)
ORDER_UPDATES = web.AppKey("order_updates", OrderUpdates)
#: The shop store order events update instead of the settings' one (tests); unset: the
#: settings' (opened on the first event).
SHOP = web.AppKey("shop", ShopStore)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = ConversationStore(settings.gateway_db)
    # The gateway is the only process taking bot turns on its SQLite file: what the one
    # before it was answering when it stopped is answered now, not when its lease ends.
    released = store.release_turns()
    if released:
        log.info("taking over %d bot turns left by the previous run", released)
    checkpoints = Checkpoints(store)  # off the event loop: see Checkpoints
    await checkpoints.start()
    session = aiohttp.ClientSession()
    token = settings.rasa_token.get_secret_value() if settings.rasa_token else None
    rasa = None if BOT in app else RasaBridge(
        session, settings.rasa_replica_urls, settings.action_replica_urls, token,
        settings.rasa_timeout, settings.rasa_health_interval)
    bridge: Bot = app[BOT] if rasa is None else rasa
    if rasa is not None:
        rasa.start()
    # A bot turn's lease outlasts the longest turn Rasa is given.
    hub = Hub(store, bridge, turn_lease=settings.rasa_timeout * 1.5)
    webhooks = Webhooks(store, settings)
    mailer = Mailer(store, settings)
    desk = Desk(store, hub, bridge, settings, load_canned(settings.canned_responses_path),
                webhooks, mailer)
    orders = OrderUpdates(store, settings, app.get(SHOP), webhooks=webhooks, mailer=mailer,
                          publish=hub.publish)
    hub.on_replies = orders.replies_received
    app[HUB] = hub
    app[DESK] = desk
    app[ORDER_UPDATES] = orders
    await webhooks.start()
    await mailer.start()
    await desk.start()
    retention = asyncio.create_task(_retention(settings)) if settings.retention_days else None
    yield
    if retention is not None:
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention
    await desk.close()
    await webhooks.close()
    await mailer.close()
    await hub.close()
    if rasa is not None:
        await rasa.close()
    orders.close()
    await session.close()
    await checkpoints.close()
    store.close()


async def _retention(settings: Settings) -> None:
    """Delete conversations older than ``retention_days``: at start, then daily."""
    from handoff.privacy import purge_older_than

    assert settings.retention_days is not None
    while True:
        try:
            purged = await asyncio.to_thread(purge_older_than, settings, settings.retention_days)
            log.info("retention: deleted %d conversations older than %s days", purged,
                     settings.retention_days)
        except Exception:  # a failed purge must not take the gateway down; retried tomorrow
            log.exception("retention purge failed")
        await asyncio.sleep(86400)


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in [*sockets]:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def healthz(request: web.Request) -> web.Response:
    """Overall ``ok`` and each dependency's state; HTTP 503 while anything is down."""
    hub = request.app[HUB]
    database: dict[str, Any]
    try:
        hub.store.ping()
        database = {"ok": True}
    except Exception as error:  # any failure here means "not healthy", reported as such
        database = {"ok": False, "detail": type(error).__name__}
    dependencies = {"database": database, **(await hub.bridge.health())}
    settings = request.app[SETTINGS]
    if settings.database_url is not None and settings.redis_url is not None:
        from handoff.health import postgres_health, redis_health

        dependencies["postgres"], dependencies["redis"] = await asyncio.gather(
            postgres_health(settings.database_url.get_secret_value()),
            redis_health(settings.redis_url.get_secret_value()))
    ok = all(dep["ok"] for dep in dependencies.values())
    return web.json_response({"ok": ok, "dependencies": dependencies}, status=200 if ok else 503)


async def chat_socket(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if not origin_allowed(request.headers.get("Origin"), settings.own_origins,
                          settings.allowed_origins):
        raise web.HTTPForbidden(
            text="This page's origin may not open a chat. Add it to SHOPCHAT_ALLOWED_ORIGINS "
            "(the gateway's own address behind a proxy: SHOPCHAT_PUBLIC_ORIGINS)."
        )
    ws = websocket_response()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    session = ChatSession(request.app[HUB], request.app[DESK], ws, settings)
    try:
        await session.run(ws)
    finally:
        await session.close()
    return ws


async def agent_ws(request: web.Request) -> web.StreamResponse:
    # The console is served by the gateway itself: other origins may not drive an agent socket.
    settings = request.app[SETTINGS]
    if not origin_allowed(request.headers.get("Origin"), settings.own_origins, []):
        raise web.HTTPForbidden(
            text="The agent console only works from the gateway's own origin "
            "(behind a proxy, name it in SHOPCHAT_PUBLIC_ORIGINS)."
        )
    ws = websocket_response()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    await agent_socket.agent_socket(ws, request.app[DESK], settings.handshake_timeout)
    return ws


async def agent_login(request: web.Request) -> web.Response:
    return await agent_socket.login(request, request.app[DESK], request.app[THROTTLE])


async def agent_logout(request: web.Request) -> web.Response:
    return await agent_socket.logout(request, request.app[DESK])


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/demo/")


def create_app(settings: Settings, bot: Bot | None = None) -> web.Application:
    """The gateway app. Opens nothing until it starts (see ``cleanup_ctx``)."""
    quiet_client_errors()
    app = web.Application(middlewares=[problem_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[AUTHORITIES] = {}
    if bot is not None:
        app[BOT] = bot
    app[SOCKETS] = weakref.WeakSet[web.WebSocketResponse]()
    app[THROTTLE] = agent_socket.LoginThrottle()
    app.on_shutdown.append(_close_sockets)
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws/chat", chat_socket)
    app.router.add_get("/ws/agent", agent_ws)
    app.router.add_post("/api/agents/login", agent_login)
    app.router.add_post("/api/agents/logout", agent_logout)
    from handoff.admin import add_admin_routes
    from handoff.api import API_TOKEN, add_api_routes
    from handoff.inbound_mail import add_inbound_mail_routes
    from handoff.order_events import add_order_event_routes
    from handoff.static import add_static_routes
    from handoff.transcripts import add_transcript_routes

    add_api_routes(app, HUB, SETTINGS)
    add_admin_routes(app, DESK, SETTINGS)
    add_inbound_mail_routes(app, DESK, SETTINGS)
    add_transcript_routes(app, DESK, SETTINGS)
    add_order_event_routes(app, ORDER_UPDATES, SETTINGS, API_TOKEN)
    add_static_routes(app, settings)
    return app


async def start(settings: Settings, bot: Bot | None = None) -> web.AppRunner:
    """Serve the gateway on ``settings.host:port`` from a running event loop (tests, benches);
    ``cleanup()`` the runner to stop it."""
    runner = web.AppRunner(create_app(settings, bot), keepalive_timeout=settings.http_timeout)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner


def run(settings: Settings) -> None:
    """Serve the gateway until interrupted."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=lambda _: log.info("listening on %s", settings.public_url),
        shutdown_timeout=5,
        handle_signals=True,
        # Also the bound on a client that trickles a request's headers (slowloris):
        # aiohttp closes a connection that has not sent a whole request by then.
        keepalive_timeout=settings.http_timeout,
    )
    asyncio.set_event_loop(None)
