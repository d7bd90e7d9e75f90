"""The pages and scripts the gateway serves: ``/widget.js``, the demo shop at ``/demo/``
and the agent console at ``/console/``."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.settings import Settings

__all__ = ["add_static_routes"]


def add_static_routes(app: web.Application, settings: Settings) -> None:
    widget_dir = settings.project_dir / "widget"
    widget_js = widget_dir / "widget.js"

    async def widget(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(widget_js)
        response.headers["Cache-Control"] = "public, max-age=300"
        response.content_type = "application/javascript"
        return response

    async def demo_index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(widget_dir / "demo" / "index.html")

    console_dir = Path(__file__).parent / "static" / "console"

    async def console_index(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(console_dir / "index.html")
        # The console page itself is never cached: a deploy must reach agents at once.
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def console_redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    app.router.add_get("/console", console_redirect)
    app.router.add_get("/console/", console_index)
    app.router.add_static("/console/", console_dir)
    app.router.add_get("/widget.js", widget)
    app.router.add_get("/demo/", demo_index)
    app.router.add_static("/demo/", widget_dir / "demo")
