"""Outgoing webhooks: signed, stored before sending, retried until a receiver takes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.settings import Settings
from handoff.db.conversations import ConversationStore
from handoff.webhooks import Webhooks, sign
from tests.conftest import add_agent, agent_console
from tests.handoff.test_desk import ask_for_person, shopper

SECRET = "hook-secret"


class Receiver:
    """A shop's endpoint on loopback; the first ``fail_first`` requests get a 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        expected = sign(SECRET, request.headers["X-Shopchat-Timestamp"], body)
        assert request.headers["X-Shopchat-Signature"] == expected
        if len(self.requests) <= self.fail_first:
            return web.Response(status=500)
        event = json.loads(body)
        if event["id"] not in {e["id"] for e in self.accepted}:  # receivers drop repeats
            self.accepted.append(event)
        return web.Response(status=204)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_for(self, event: str, timeout: float = 20) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for accepted in self.accepted:
                if accepted["event"] == event:
                    return accepted
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event}; got {[e['event'] for e in self.accepted]}")


def hook_settings(tmp_path: Path, url: str, **extra: Any) -> Settings:
    return Settings(var_dir=tmp_path, webhook_urls=[url], webhook_secret=SecretStr(SECRET),
                    webhook_retry_base=0.05, **extra)


async def test_a_failing_receiver_gets_the_event_once_after_retries(tmp_path: Path) -> None:
    async with Receiver(fail_first=2) as receiver:
        store = ConversationStore(tmp_path / "gateway.db")
        hooks = Webhooks(store, hook_settings(tmp_path, receiver.url))
        await hooks.start()
        hooks.emit("ticket.created", {"conversation_id": "c1", "email": "a@example.com"})
        event = await receiver.wait_for("ticket.created")
        await hooks.close()
        store.close()
    assert event["data"] == {"conversation_id": "c1", "email": "a@example.com"}
    assert len(receiver.requests) == 3 and len(receiver.accepted) == 1
    deliveries = {headers["X-Shopchat-Delivery"] for headers, _ in receiver.requests}
    assert deliveries == {event["id"]}  # the same delivery id on every retry


async def test_undelivered_events_survive_a_restart_and_give_up_eventually(
    tmp_path: Path,
) -> None:
    async with Receiver() as receiver:
        store = ConversationStore(tmp_path / "gateway.db")
        Webhooks(store, hook_settings(tmp_path, receiver.url)).emit(
            "csat.received", {"conversation_id": "c2", "score": 4})
        store.close()  # the gateway stopped before sending
        store = ConversationStore(tmp_path / "gateway.db")
        hooks = Webhooks(store, hook_settings(tmp_path, receiver.url))
        await hooks.start()
        assert (await receiver.wait_for("csat.received"))["data"]["score"] == 4
        await hooks.close()
        store.close()

    store = ConversationStore(tmp_path / "dead.db")
    hooks = Webhooks(store, hook_settings(tmp_path, "http://127.0.0.1:9/nothing",
                                          webhook_max_attempts=3))
    await hooks.start()
    hooks.emit("ticket.created", {"conversation_id": "c3"})
    for _ in range(200):
        row = next(iter(store.db.query("SELECT * FROM webhook_outbox")))
        if row["failed_at"] is not None:
            break
        await asyncio.sleep(0.05)
    await hooks.close()
    store.close()
    assert row["attempts"] == 3 and row["failed_at"] is not None and row["last_error"]


def test_webhook_urls_need_a_secret_and_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need a webhook_secret"):
        Settings(var_dir=tmp_path, webhook_urls=["https://crm.example/hook"])
    with pytest.raises(ValueError, match="must start with http"):
        Settings(var_dir=tmp_path, webhook_urls=["ftp://crm.example"],
                 webhook_secret=SecretStr("x"))


async def test_the_desk_reports_a_chat_from_queue_to_rating(
    make_scripted_gateway: Callable[..., Any],
) -> None:
    async with Receiver() as receiver, make_scripted_gateway(
        webhook_urls=[receiver.url], webhook_secret=SecretStr(SECRET),
        webhook_retry_base=0.05,
    ) as gateway:
        add_agent(gateway.settings, "eve@shop.example", "Eve")
        async with agent_console(gateway.http, "eve@shop.example") as eve, \
                shopper(gateway) as client:
            await ask_for_person(client, until="agent")
            await eve.do("close", conversation_id=client.conversation_id,
                         resolution="resolved")
            closed = await client.recv_until(lambda f: f["type"] == "csat_request")
            await client.send({"type": "csat", "client_id": "r1",
                               "handoff_id": closed[-1]["handoff_id"], "score": 4})
            rated = await receiver.wait_for("csat.received")
        queued = await receiver.wait_for("conversation.queued")
        assigned = await receiver.wait_for("conversation.assigned")
        ended = await receiver.wait_for("conversation.closed")
    assert queued["data"]["conversation_id"] == client.conversation_id
    assert queued["data"]["trigger"] == "requested" and queued["data"]["staffed"] is True
    assert assigned["data"]["agent"]["name"] == "Eve"
    assert ended["data"]["resolution"] == "resolved"
    assert rated["data"]["score"] == 4


async def test_an_offline_message_becomes_a_ticket_event(
    make_scripted_gateway: Callable[..., Any],
) -> None:
    async with Receiver() as receiver, make_scripted_gateway(
        webhook_urls=[receiver.url], webhook_secret=SecretStr(SECRET),
    ) as gateway, shopper(gateway) as client:
        await ask_for_person(client, until="offline_form")
        await client.send({"type": "offline_message", "client_id": "o1",
                           "email": "sam@example.org", "text": "My tent pole broke"})
        ticket = await receiver.wait_for("ticket.created")
    assert ticket["data"]["email"] == "sam@example.org"
    assert ticket["data"]["message"] == "My tent pole broke"
