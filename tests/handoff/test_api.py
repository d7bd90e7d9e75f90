"""The integration API: tokens, conversations with transcripts, tickets, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.settings import Settings
from handoff.api import OPENAPI, TokenStore
from handoff.app import create_app, start
from handoff.persistence import ConversationStore
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
