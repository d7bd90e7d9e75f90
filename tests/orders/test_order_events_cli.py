"""`shopchat orders event`: the same core as the API, from a shell, on the database; what it
queues reaches a running gateway's senders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.settings import Settings
from handoff import delivery
from handoff.db.conversations import ConversationStore
from handoff.order_events import OrderUpdates, parse_event
from handoff.webhooks import Webhooks
from tests.conftest import run_shopchat
from tests.handoff.test_webhooks import SECRET, Receiver
from tests.orders.conftest import ANNA


def test_an_event_from_the_shell_is_posted_once_in_the_customers_conversation(
        tmp_path: Path, shop_in: Any) -> None:
    settings = Settings(var_dir=tmp_path)
    shop = shop_in(settings)
    order = next(o for o in shop.orders_for_customer(ANNA, 100) if o.status == "processing")
    shop.close()
    store = ConversationStore(settings.gateway_db)
    conversation, _ = store.create_conversation(None)
    store.set_customer(conversation.id, ANNA)
    store.close()
    env = {"SHOPCHAT_VAR_DIR": str(tmp_path)}

    def shopchat(*args: str) -> tuple[int, str, str]:
        done = run_shopchat("orders", "event", *args, env=env)
        return done.returncode, done.stdout, done.stderr

    code, out, err = shopchat(order.id, "delayed", "--event-id", "cli-1", "--new-date",
                              "2027-02-01", "--note", "Sorry!", "--json")
    assert code == 0, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["channel"] == "conversation" and outcome["conversation_id"] == \
        conversation.id and outcome["duplicate"] is False
    code, out, err = shopchat(order.id, "delayed", "--event-id", "cli-1", "--new-date",
                              "2027-02-01", "--note", "Sorry!")
    assert code == 0 and "sent before: nothing done now" in out, (out, err)
    code, out, err = shopchat(order.id, "delayed", "--new-date", "next week")
    assert code == 1 and "new_date" in err and "Traceback" not in err
    store = ConversationStore(settings.gateway_db)
    (update,) = [e.frame for e in store.events_after(conversation.id, 0)]
    store.close()
    assert update["seq"] == outcome["seq"] and "From the shop: Sorry!" in update["text"]
    assert "Monday 1 February" in update["text"]


async def test_a_webhook_another_process_queued_is_sent_by_the_idle_gateway(
        tmp_path: Path, shop_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "IDLE_LOOK", 0.05)
    async with Receiver() as receiver:
        settings = Settings(var_dir=tmp_path, webhook_urls=[receiver.url],
                            webhook_secret=SecretStr(SECRET))
        shop = shop_in(settings)
        order = next(o for o in shop.orders_for_customer(ANNA, 100))
        gateway_store = ConversationStore(settings.gateway_db)
        sender = Webhooks(gateway_store, settings)
        await sender.start()  # idle: nothing queued, nothing will wake it
        # What the command does, on a connection of its own, minus its own try.
        other = ConversationStore(settings.gateway_db)
        updates = OrderUpdates(other, settings, shop, webhooks=Webhooks(other, settings))
        await updates.post(parse_event({"order_id": order.id, "type": "delivered"}), "x1")
        hook = await receiver.wait_for("order.update")
        await sender.close()
        other.close()
        gateway_store.close()
        shop.close()
    assert hook["data"]["event_id"] == "x1" and hook["data"]["channel"] == "none"
