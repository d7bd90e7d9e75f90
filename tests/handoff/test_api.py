"""The integration API: tokens, conversations with transcripts, tickets, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.settings import Settings
from handoff.api import OPENAPI
from handoff.app import create_app, start
from handoff.db.conversations import ConversationStore
from handoff.db.tokens import TokenStore
from shopchat.stack import free_port


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[str, Settings]]:
    """A gateway (no Rasa needed for the API) on a free port, with one conversation."""
    settings = Settings(var_dir=tmp_path, port=free_port())
    store = ConversationStore(settings.gateway_db)
    conversation, _ = store.create_conversation({"type": "checkout"})
    store.append_shopper_message(conversation.id, "m1", {
        "type": "message", "author": "shopper", "text": "hello there"})
    store.db.execute("INSERT INTO tickets (conversation_id, email, message, created_at) "
                     "VALUES (?, 'a@example.com', 'call me', 1)", [conversation.id])
    store.close()
    runner = await start(settings)
    yield f"http://127.0.0.1:{settings.port}/api/v1", settings
    await runner.cleanup()


def make_token(settings: Settings, name: str = "crm") -> str:
    store = ConversationStore(settings.gateway_db)
    try:
        return TokenStore(store).add(name)
    finally:
        store.close()


async def test_requests_without_a_valid_token_are_refused(
    api: tuple[str, Settings],
) -> None:
    url, settings = api
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer sc_wrong"}, {"Authorization": "token"}):
            async with session.get(f"{url}/conversations", headers=headers) as response:
                assert response.status == 401
                assert "shopchat tokens add" in (await response.json())["detail"]
        token = make_token(settings)
        store = ConversationStore(settings.gateway_db)
        TokenStore(store).revoke("crm")
        store.close()
        async with session.get(f"{url}/conversations",
                               headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 401


async def test_conversations_transcripts_tickets_and_metrics(api: tuple[str, Settings]) -> None:
    url, settings = api
    auth = {"Authorization": f"Bearer {make_token(settings)}"}
    async with aiohttp.ClientSession(headers=auth) as session:
        async with session.get(f"{url}/conversations") as response:
            assert response.status == 200
            (listed,) = (await response.json())["conversations"]
            assert listed["page"] == {"type": "checkout"}
        async with session.get(f"{url}/conversations/{listed['id']}") as response:
            body = await response.json()
            assert [(e["seq"], e["text"]) for e in body["transcript"]] == [(1, "hello there")]
        async with session.get(f"{url}/conversations/{'0' * 32}") as response:
            assert response.status == 404
        async with session.get(f"{url}/tickets?status=open") as response:
            assert (await response.json())["tickets"][0]["email"] == "a@example.com"
        async with session.get(f"{url}/tickets?status=maybe") as response:
            assert response.status == 400 and "status" in (await response.json())["detail"]
        async with session.get(f"{url}/conversations?limit=9999") as response:
            assert response.status == 400
        async with session.get(f"{url}/metrics?days=7") as response:
            assert (await response.json())["totals"]["conversations"] == 1


async def test_the_openapi_document_covers_every_api_route(api: tuple[str, Settings]) -> None:
    url, _ = api
    async with aiohttp.ClientSession() as session, \
            session.get(f"{url}/openapi.json") as response:
        document = await response.json()
    assert document == OPENAPI and document["openapi"].startswith("3.1")
    app = create_app(Settings())
    routes = {resource.canonical for resource in app.router.resources()
              if resource.canonical.startswith("/api/v1/")}
    assert routes == set(document["paths"])


@pytest.mark.parametrize(("method", "path", "headers", "status", "code"), [
    ("GET", "/api/v1/conversations", {}, 401, "unauthorised"),
    ("GET", "/api/v1/tickets?status=maybe", "token", 400, "bad_query"),
    ("GET", "/api/v1/conversations/nope", "token", 404, "not_found"),
    ("GET", "/api/admin/review", {}, 401, "unauthorised"),
    ("GET", "/api/no-such-thing", {}, 404, "not_found"),
    ("DELETE", "/api/v1/conversations", "token", 405, "method_not_allowed"),
    ("POST", "/api/agents/login", {}, 400, "bad_request"),
])
async def test_every_http_error_is_one_problem_shape(
    api: tuple[str, Settings], method: str, path: str, headers: Any, status: int, code: str,
) -> None:
    """RFC 9457 problem details, for the gateway's own errors and aiohttp's alike."""
    url, settings = api
    if headers == "token":
        headers = {"Authorization": f"Bearer {make_token(settings)}"}
    base = url.removesuffix("/api/v1")
    async with aiohttp.ClientSession() as session, session.request(
        method, base + path, headers=headers, data=b"{" if method == "POST" else None,
    ) as response:
        assert response.status == status
        assert response.content_type == "application/problem+json"
        body = await response.json(content_type=None)
    assert body["status"] == status and body["code"] == code and body["title"]
    assert body["type"] == "about:blank" and body["detail"]


def test_every_handler_behind_a_sign_in_is_marked_for_the_middleware() -> None:
    """Tokens are checked in one place: a route under /api/v1 or /api/admin whose handler
    is not marked with requires() would be open to anyone."""
    from handoff.http import AUTHORITIES

    app = create_app(Settings())
    marked = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith(("/api/v1/", "/api/admin/")) and route.method != "HEAD":
            marked[path] = getattr(route.handler, "requires", None)
    assert marked and all(kind is not None for path, kind in marked.items()
                          if path != "/api/v1/openapi.json"), marked
    assert set(marked.values()) - {None} <= set(app[AUTHORITIES])
