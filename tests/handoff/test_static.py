"""What the gateway serves besides sockets: the widget (minified, gzip, ETag), demo, console."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.settings import Settings
from handoff.static import add_static_routes
from shopchat.stack import free_port

#: The widget must stay light on a shop's page: at most 8 KB gzipped on the wire.
WIDGET_BUDGET_BYTES = 8 * 1024


@pytest.fixture
async def server(tmp_path: Path) -> str:
    app = web.Application()
    add_static_routes(app, Settings(var_dir=tmp_path))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"  # type: ignore[misc]
    await runner.cleanup()


async def test_widget_is_minified_gzipped_cached_and_within_budget(server: str) -> None:
    source = (Path(__file__).parents[2] / "widget" / "widget.js").read_bytes()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"{server}/widget.js",
                               headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Content-Type"].startswith("application/javascript")
            assert "max-age" in response.headers["Cache-Control"]
            compressed = await response.read()
            etag = response.headers["ETag"]
        assert len(compressed) <= WIDGET_BUDGET_BYTES
        body = gzip.decompress(compressed)
        assert len(body) < len(source) and b"customElements.define" in body
        async with session.get(f"{server}/widget.js",
                               headers={"If-None-Match": etag}) as response:
            assert response.status == 304 and not await response.read()
        async with session.get(f"{server}/widget.js",
                               headers={"Accept-Encoding": "identity"}) as response:
            assert "Content-Encoding" not in response.headers
            assert await response.read() == body


async def test_console_and_demo_pages_are_served(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/console", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/console/"
        async with session.get(f"{server}/console/") as response:
            assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
        async with session.get(f"{server}/demo/") as response:
            assert response.status == 200 and "widget.js" in await response.text()


async def _serve(settings: Settings) -> tuple[web.AppRunner, str]:
    app = web.Application()
    add_static_routes(app, settings)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_the_demo_identity_is_served_only_with_the_per_run_demo_secret(
    tmp_path: Path,
) -> None:
    from pydantic import SecretStr

    from bot.identity import verify_identity

    for settings, expected in (
        (Settings(var_dir=tmp_path), 404),
        (Settings(var_dir=tmp_path, identity_secret=SecretStr("shop-secret" * 4)), 404),
        (Settings(var_dir=tmp_path, identity_secret=SecretStr("run-secret" * 4),
                  demo_identity=True), 200),
    ):
        runner, url = await _serve(settings)
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(f"{url}/demo/identity") as response:
                assert response.status == expected
                if expected == 200:
                    body = await response.json()
                    assert response.headers["Cache-Control"] == "no-store"
                    assert verify_identity(body["token"], "run-secret" * 4, 3600).customer_id == \
                        "cus_0001"
        finally:
            await runner.cleanup()
