"""What the gateway serves besides sockets: the widget (minified, gzip, ETag), demo, console."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.settings import Settings
from handoff.protocol import LANGUAGES
from handoff.static import add_static_routes
from shopchat.stack import free_port

#: The widget must stay light on a shop's page: at most 8 KB gzipped on the wire.
WIDGET_BUDGET_BYTES = 9 * 1024


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


def _english_strings() -> dict[str, str]:
    """The STRINGS object built into widget.js: the key list every language must cover."""
    source = (Path(__file__).parents[2] / "widget" / "widget.js").read_text()
    block = source.split("const STRINGS = {", 1)[1].split("\n  };", 1)[0]
    return dict(re.findall(r'^\s+(\w+): "((?:[^"\\]|\\.)*)",$', block, re.M))


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_every_widget_string_with_the_same_placeholders(lang: str) -> None:
    english = _english_strings()
    assert len(english) > 25  # the parse found the object
    catalog = json.loads((Path(__file__).parents[2] / "widget" / "i18n" / f"{lang}.json")
                         .read_text())
    assert catalog.keys() == english.keys()
    for key, text in catalog.items():
        assert text.strip(), f"{lang}.{key} is empty"
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", english[key])), \
            f"{lang}.{key} has other placeholders than the English"


async def test_a_languages_strings_are_served_to_any_shop_and_nothing_else(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/widget/i18n/de.json",
                               headers={"Origin": "https://shop.example"}) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert "max-age" in response.headers["Cache-Control"]
            assert (await response.json())["title"] == "Schreiben Sie uns"
        for path in ("en.json", "xx.json", "..%2Fwidget.js.json"):
            async with session.get(f"{server}/widget/i18n/{path}") as response:
                assert response.status == 404, path
