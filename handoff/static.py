"""The pages and scripts the gateway serves: ``/widget.js``, the demo shop at ``/demo/``
and the agent console at ``/console/``."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import rjsmin
from aiohttp import web

from bot.identity import sign_identity
from bot.settings import Settings
from handoff.protocol import LANGUAGES

__all__ = ["MinifiedScript", "add_app_page", "add_static_routes"]


@dataclass(frozen=True)
class _Built:
    mtime_ns: int
    body: bytes
    gzipped: bytes
    etag: str


class MinifiedScript:
    """A JavaScript file served minified and gzip-compressed, with an ETag.

    Built on first request and again whenever the file changes, so editing
    ``widget.js`` needs no build step and no restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._built: _Built | None = None

    def build(self) -> _Built:
        mtime = self.path.stat().st_mtime_ns
        if self._built is None or self._built.mtime_ns != mtime:
            body = rjsmin.jsmin(self.path.read_text(encoding="utf-8")).encode("utf-8")
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            self._built = _Built(mtime, body, gzip.compress(body, 9, mtime=0), etag)
        return self._built

    def response(self, request: web.Request) -> web.Response:
        built = self.build()
        headers = {
            # Shops embed a fixed URL: a short max-age plus the ETag keeps updates quick
            # and revalidation cheap (304, no body).
            "Cache-Control": "public, max-age=300",
            "ETag": built.etag,
            "Vary": "Accept-Encoding",
        }
        if built.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            body = built.gzipped
        else:
            body = built.body
        return web.Response(body=body, headers=headers,
                            content_type="application/javascript", charset="utf-8")


def add_app_page(app: web.Application, name: str, directory: Path,
                 aliases: tuple[str, ...] = ()) -> None:
    """Serve a plain HTML/JS app at ``/<name>/`` (and ``aliases``) from ``directory``.

    The page itself is never cached, so a deploy reaches agents and staff at once;
    its scripts and styles are static files under the same path.
    """
    async def page(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(directory / "index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/{name}/")

    app.router.add_get(f"/{name}", redirect)
    app.router.add_get(f"/{name}/", page)
    for alias in aliases:
        app.router.add_get(alias, page)
    app.router.add_static(f"/{name}/", directory)


#: The demo shop's signed-in customer (data/shop/customers.yml).
DEMO_CUSTOMER = "cus_0001"


def add_static_routes(app: web.Application, settings: Settings) -> None:
    widget_dir = settings.project_dir / "widget"
    widget_js = MinifiedScript(widget_dir / "widget.js")

    async def widget(request: web.Request) -> web.Response:
        return widget_js.response(request)

    async def demo_index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(widget_dir / "demo" / "index.html")

    add_app_page(app, "console", Path(__file__).parent / "static" / "console")
    app.router.add_get("/widget.js", widget)

    async def widget_strings(request: web.Request) -> web.Response:
        """One language's widget strings (English is built into widget.js). Public text,
        fetched by the widget from the shop's pages: any origin may read it."""
        lang = request.match_info["lang"]
        if lang not in LANGUAGES or lang == "en":
            raise web.HTTPNotFound(text=f"No widget strings for {lang!r}; the widget speaks "
                                        f"{', '.join(LANGUAGES)}.")
        return web.Response(
            body=(widget_dir / "i18n" / f"{lang}.json").read_bytes(),
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"})

    app.router.add_get("/widget/i18n/{lang}.json", widget_strings)
    async def demo_identity(request: web.Request) -> web.Response:
        """The demo shop's "backend": signs its signed-in customer (Anna, cus_0001).

        On only when `shopchat up` made its own per-run secret (settings.demo_identity);
        a real shop signs on its own server with its own secret.
        """
        secret = settings.identity_secret
        if not settings.demo_identity or secret is None:
            raise web.HTTPNotFound(text="No demo identity: this gateway verifies a shop's "
                                        "own signed identities.")
        token = sign_identity(DEMO_CUSTOMER, secret.get_secret_value(), ttl=3600)
        return web.json_response({"customer_id": DEMO_CUSTOMER, "token": token},
                                 headers={"Cache-Control": "no-store"})

    app.router.add_get("/demo/identity", demo_identity)
    app.router.add_get("/demo/", demo_index)
    app.router.add_static("/demo/", widget_dir / "demo")
