"""A local stand-in for a shop's REST API (docs/shop-api.md), serving a SQLiteShop.

A real aiohttp server on a loopback port in its own thread, so the HTTP
adapter is tested over real sockets with real status codes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from bot.store.errors import NotAllowed, OrderNotFound
from bot.store.models import Address, ReturnLine
from bot.store.sqlite import SQLiteShop

TOKEN = "fake-shop-token"


def _json(model: Any) -> web.Response:
    if model is None:
        raise web.HTTPNotFound()
    if isinstance(model, list):
        return web.json_response([m.model_dump(mode="json") for m in model])
    return web.json_response(model.model_dump(mode="json"))


def make_app(store: SQLiteShop, refuse_writes: bool = False) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPUnauthorized()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except NotAllowed as refusal:
            return web.json_response({"code": refusal.code, "message": refusal.message},
                                     status=409)
        except OrderNotFound as error:
            raise web.HTTPNotFound() from error

    def guard() -> None:
        if refuse_writes:
            raise NotAllowed("frozen", "Orders are frozen during stock-taking.")

    routes = web.RouteTableDef()

    @routes.get("/customers/{id}")
    async def customer(request: web.Request) -> web.Response:
        return _json(store.get_customer(request.match_info["id"]))

    @routes.get("/customers/{id}/orders")
    async def customer_orders(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "5"))
        return _json(store.orders_for_customer(request.match_info["id"], limit))

    @routes.get("/orders/{id}")
    async def order(request: web.Request) -> web.Response:
        return _json(store.get_order(request.match_info["id"]))

    @routes.get("/orders/{id}/returns")
    async def order_returns(request: web.Request) -> web.Response:
        return _json(store.returns_for_order(request.match_info["id"]))

    @routes.post("/orders/{id}/returns")
    async def create_return(request: web.Request) -> web.Response:
        guard()
        body = await request.json()
        created = store.create_return(request.match_info["id"],
                                      [ReturnLine(**line) for line in body["lines"]],
                                      body["reason"], None)
        return _json(created)

    @routes.post("/orders/{id}/cancel")
    async def cancel(request: web.Request) -> web.Response:
        guard()
        return _json(store.cancel_order(request.match_info["id"], None))

    @routes.put("/orders/{id}/shipping_address")
    async def address(request: web.Request) -> web.Response:
        guard()
        return _json(store.change_address(request.match_info["id"],
                                          Address(**await request.json()), None))

    @routes.get("/products")
    async def products(request: web.Request) -> web.Response:
        if "q" in request.query:
            return _json(store.find_products(request.query["q"],
                                             int(request.query.get("limit", "3"))))
        return _json(store.list_products())

    @routes.get("/products/{sku}")
    async def product(request: web.Request) -> web.Response:
        return _json(store.get_product(request.match_info["sku"]))

    @routes.get("/returns/{rma}")
    async def get_return(request: web.Request) -> web.Response:
        return _json(store.get_return(request.match_info["rma"]))

    app = web.Application(middlewares=[auth])
    app.add_routes(routes)
    return app


@contextmanager
def running(store: SQLiteShop, refuse_writes: bool = False) -> Iterator[str]:
    """Serve ``store`` on a free loopback port; yields the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(make_app(store, refuse_writes))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10), "fake shop did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
