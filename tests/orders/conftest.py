"""Gateways that take a shop's order events: the demo shop loaded in their var/, an API
token made, signed customer identities on; and the helpers that post events and open
shoppers' chats."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from websockets.asyncio.client import connect

from bot.identity import sign_identity
from bot.settings import PROJECT_DIR, Settings
from bot.store.demo import load_demo
from bot.store.models import Order
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop
from bot.store.updates import order_verified_payload
from handoff.app import SHOP, create_app
from handoff.db.conversations import ConversationStore
from handoff.db.tokens import TokenStore
from tests.conftest import IDENTITY_SECRET, ChatClient, Gateway, bare_settings, serving
from tests.mail.conftest import mailbox  # noqa: F401  (the SMTP server order mails go to)
from tests.scripted_bot import ScriptedBot

#: The signed-in demo customer (Anna Berg) and another one.
ANNA, BEN = "cus_0001", "cus_0002"


class VerifyingBot(ScriptedBot):
    """The scripted assistant, plus the order form's notice: "my order is SC-… and my
    email is …" proves the order when the email is the order's, as the real form does."""

    def __init__(self, shop_db: Path) -> None:
        super().__init__()
        self.shop_db = shop_db

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        replies = await super().send(sender, text, metadata)
        found = re.search(r"(SC-\d+) and my email is (\S+)", text)
        if found:
            shop = SQLiteShop(self.shop_db, window=ReturnWindow(30, 60))
            order = shop.get_order(found.group(1))
            shop.close()
            if order is not None and order.email == found.group(2):
                replies.append({"recipient_id": sender,
                                "custom": order_verified_payload(order.id)})
        return replies


@pytest.fixture(scope="session")
def demo_shop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop loaded once per test process (loading takes most of a second); each
    test gets a copy of the file."""
    path = tmp_path_factory.mktemp("demo-shop") / "shop.db"
    shop = SQLiteShop(path, window=ReturnWindow(30, 60))
    load_demo(shop, PROJECT_DIR / "data" / "shop", datetime.now(UTC))
    shop.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shop.close()
    return path


@pytest.fixture
def shop_in(demo_shop_file: Path) -> Callable[[Settings], SQLiteShop]:
    """``shop_in(settings)``: the demo shop in ``settings``' var/ (what the action server
    would load there), open."""
    def put(settings: Settings) -> SQLiteShop:
        if not settings.shop_db.exists():
            settings.shop_db.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(demo_shop_file, settings.shop_db)
        return SQLiteShop(settings.shop_db, window=ReturnWindow(30, 60))

    return put


def make_token(settings: Settings) -> str:
    store = ConversationStore(settings.gateway_db)
    try:
        tokens = TokenStore(store)
        tokens.revoke("shop")  # a gateway started again on the same var/
        return tokens.add("shop")
    finally:
        store.close()


class OrderGateway(Gateway):
    """A gateway with the demo shop, its shop store and an API token for the shop."""

    token: str = ""
    shop: SQLiteShop | None = None

    def order(self, customer_id: str, status: str) -> Order:
        assert self.shop is not None
        return next(o for o in self.shop.orders_for_customer(customer_id, 100)
                    if o.status == status)

    async def post(self, body: dict[str, Any], *, token: str | None = None,
                   headers: dict[str, str] | None = None,
                   raw: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST an order event; the status and the JSON answer."""
        sent = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        async with aiohttp.ClientSession() as session:
            kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
            async with session.post(f"{self.http}/api/v1/order-events", headers=sent,
                                    **kwargs) as response:
                return response.status, await response.json(content_type=None)


@pytest.fixture
def order_gateway(tmp_path: Path, shop_in: Callable[[Settings], SQLiteShop]
                  ) -> Callable[..., Any]:
    """``async with order_gateway(**overrides) as gateway``: a fast-tier gateway (the
    scripted assistant that also proves orders) with the demo shop and a token."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[OrderGateway]:
        settings = bare_settings(tmp_path, identity_secret=SecretStr(IDENTITY_SECRET),
                                 **overrides)
        shop = shop_in(settings)
        token = make_token(settings)
        async with serving(settings, VerifyingBot(settings.shop_db)) as gateway:
            ordered = OrderGateway(gateway.settings, gateway.runner, gateway.bot)
            ordered.token, ordered.shop = token, shop
            try:
                yield ordered
            finally:
                ordered.runner = None  # serving() stops it
                shop.close()

    return start


@asynccontextmanager
async def customer(gateway: Gateway, customer_id: str | None = None
                   ) -> AsyncIterator[ChatClient]:
    """A shopper's chat: signed in as ``customer_id`` by the storefront, or a guest."""
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        fields = {"identity": sign_identity(customer_id, IDENTITY_SECRET, ttl=600)} \
            if customer_id else {}
        await client.hello(**fields)
        yield client


def body_of(mail: EmailMessage, kind: str) -> str:
    """The text of a mail's ``plain`` or ``html`` part."""
    part = mail.get_body(preferencelist=(kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def is_update(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "message" and "order_update" in frame


@asynccontextmanager
async def resumed(gateway: Gateway, left: ChatClient
                  ) -> AsyncIterator[tuple[ChatClient, dict[str, Any]]]:
    """The shopper of ``left`` (a closed chat) back, resuming after what they saw, and
    the order update replayed to them."""
    async with connect(gateway.url) as ws:
        back = ChatClient(ws)
        back.last_seq = left.last_seq
        await back.hello(conversation_id=left.conversation_id,
                         resume_token=left.resume_token, last_seq=left.last_seq)
        (update,) = [f for f in await back.recv_until(is_update) if is_update(f)]
        yield back, update


def fresh_order(shop: SQLiteShop, customer_id: str, status: str) -> Order:
    """A new order of ``customer_id`` (a copy of one of theirs with ``status``, under a
    number nobody else uses): tests sharing the session's stack and shop never meet."""
    template = next(o for n in range(1, 30) for o in shop.orders_for_customer(
        f"cus_{n:04d}", 100) if o.status == status)
    order = template.model_copy(update={
        "id": f"SC-{secrets.randbelow(10**9) + 10**9}", "customer_id": customer_id,
        "email": next(c.email for c in [shop.get_customer(customer_id)] if c is not None),
        "tracking_url": None, "expected_delivery": None})
    shop.put_order(order)
    return order


@asynccontextmanager
async def stack_gateway(settings: Settings, shop_db: Path) -> AsyncIterator[OrderGateway]:
    """A gateway on the session's real Rasa whose order events update ``shop_db``, the
    stack's own shop (the one its action server reads), with a token for the shop."""
    shop = SQLiteShop(shop_db, window=ReturnWindow(30, 60))
    token = make_token(settings)
    app = create_app(settings)
    app[SHOP] = shop
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    gateway = OrderGateway(settings, runner)
    gateway.token, gateway.shop = token, shop
    try:
        yield gateway
    finally:
        await runner.cleanup()
        shop.close()
