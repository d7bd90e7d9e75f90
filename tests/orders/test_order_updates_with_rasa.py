"""Order updates on the real stack (Rasa, the action server, the shop store they read):
a guest proves an order by its email, the shop's events reach that chat live and on
resume, the bot's next answers about the order say what the events changed; with no
conversation, the update arrives by mail at a local SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bot.settings import Settings
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop
from shopchat.stack import StackHandle, free_port
from tests.conftest import ChatClient, is_bot_message
from tests.mail.conftest import mail_settings
from tests.mailbox import Mailbox
from tests.orders.conftest import body_of, fresh_order, is_update, resumed, stack_gateway

pytestmark = pytest.mark.stack


def said(frames: list[dict[str, Any]]) -> str:
    return "\n".join(f["text"] for f in frames if is_bot_message(f))


def settings_for(stack: StackHandle, tmp_path: Path, **overrides: Any) -> Settings:
    return stack.settings.model_copy(update={"port": free_port(),
                                             "var_dir": tmp_path / "var", **overrides})


async def test_an_update_reaches_the_chat_that_proved_the_order_and_the_bot_knows_it(
        stack: StackHandle, tmp_path: Path) -> None:
    shop = SQLiteShop(stack.settings.shop_db, window=ReturnWindow(30, 60))
    order = fresh_order(shop, "cus_0007", "processing")
    shop.close()
    async with stack_gateway(settings_for(stack, tmp_path), stack.settings.shop_db) as gateway:
        async with connect(gateway.url) as ws:
            shopper = ChatClient(ws)
            await shopper.hello()
            frames = await shopper.turn(f"where is my order {order.id}?")
            assert "email" in said(frames)
            frames = await shopper.turn(order.email)
            assert f"Your order {order.id} is being packed" in said(frames)

            status, answer = await gateway.post({
                "event_id": f"delay-{order.id}", "order_id": order.id, "type": "delayed",
                "new_date": "2027-01-08", "note": "The warehouse is snowed in."})
            assert status == 201 and answer["conversation_id"] == shopper.conversation_id
            (update,) = [f for f in await shopper.recv_until(is_update) if is_update(f)]
            assert update["seq"] == answer["seq"]
            assert "is delayed" in update["text"] and "Friday 8 January" in update["text"]

            # The bot's next answer about the order reads what the event changed.
            button = update["buttons"][0]
            frames = await shopper.turn(button["title"], payload=button["payload"])
            assert "Expected delivery: Fri 8 Jan" in said(frames), said(frames)

        status, answer = await gateway.post({
            "event_id": f"ship-{order.id}", "order_id": order.id, "type": "shipped",
            "tracking_url": "https://track.example/SC-test"})
        assert status == 201 and answer["conversation_id"] == shopper.conversation_id
        async with resumed(gateway, shopper) as (back, update):
            assert "has shipped" in update["text"] and update["seq"] == answer["seq"]
            frames = await back.turn(f"where is my order {order.id}?")
            answer_text = said(frames)
            assert f"Your order {order.id} is on its way" in answer_text, answer_text
            assert "https://track.example/SC-test" in answer_text


async def test_with_no_conversation_the_update_arrives_by_mail(
        stack: StackHandle, tmp_path: Path, mailbox: Mailbox) -> None:
    shop = SQLiteShop(stack.settings.shop_db, window=ReturnWindow(30, 60))
    order = fresh_order(shop, "cus_0008", "shipped")
    shop.close()
    settings = settings_for(stack, tmp_path, **mail_settings(mailbox.port),
                            order_updates_by_email=True)
    async with stack_gateway(settings, stack.settings.shop_db) as gateway:
        status, answer = await gateway.post({"event_id": f"out-{order.id}",
                                             "order_id": order.id,
                                             "type": "out_for_delivery"})
        assert status == 201 and answer["channel"] == "email"
        (mail,) = await mailbox.wait_for(1)
        assert gateway.shop is not None
        changed = gateway.shop.get_order(order.id)
    assert mail["To"] == order.email
    assert mail["Subject"] == f"Your order {order.id} is out for delivery"
    assert f"Your order {order.id} is out for delivery today." in \
        body_of(mail, "plain")
    assert changed is not None and changed.status == "out_for_delivery"
    assert changed.expected_delivery == datetime.now(UTC).date()
