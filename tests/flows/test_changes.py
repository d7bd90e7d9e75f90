"""Returns, refunds, cancelling and re-addressing through the real bot, with the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.store.base import ShopStore
from bot.store.factory import open_store
from shopchat.stack import StackHandle
from tests.flows.conftest import buttons, identity, pick_order, press, said
from tests.flows.test_orders import any_order

pytestmark = pytest.mark.stack


def days_ago(moment: datetime | None) -> float:
    assert moment is not None
    return (datetime.now(UTC) - moment).total_seconds() / 86400


async def test_a_return_is_created_with_an_rma_and_audited(
    chat: Any, shop: ShopStore, stack: StackHandle,
) -> None:
    order = pick_order(shop, "cus_0001", lambda o: o.status == "delivered"
                       and days_ago(o.delivered_at) < 20
                       and any(not line.returnable for line in o.lines)
                       and any(line.returnable for line in o.lines))
    jacket = next(line for line in order.lines if line.returnable)
    kept = next(line for line in order.lines if not line.returnable)
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn("I want to return something")
        choice = press(frames, lambda b: b["title"].startswith(order.id))
        frames = await client.turn(choice["title"], payload=choice["payload"])
        assert kept.label() in said(frames) and "can't be returned" in said(frames)
        assert kept.label() not in [b["title"] for b in buttons(frames)]
        item = press(frames, lambda b: b["title"] == jacket.label())
        frames = await client.turn(item["title"], payload=item["payload"])
        reason = press(frames, lambda b: b["title"] == "Too small")
        frames = await client.turn(reason["title"], payload=reason["payload"])
    text = said(frames)
    assert "RMA-" in text and jacket.label() in text
    rma = text.split("Your return ")[1].split(" ")[0]
    created = shop.get_return(rma)
    assert created is not None and created.order_id == order.id
    assert created.reason == "too small" and [x.line_id for x in created.lines] == [jacket.line_id]
    # In the audit log with the conversation, and still there for a new process.
    reopened = open_store(stack.settings)
    entries = [e for e in reopened.audit_log(client.conversation_id)
               if e.action == "return_created"]
    assert [e.target for e in entries] == [rma] or [e.detail.get("rma") for e in entries] == [rma]
    assert abs((datetime.now(UTC) - entries[0].at).total_seconds()) < 300


async def test_a_non_returnable_item_is_refused_when_typed(chat: Any, shop: ShopStore) -> None:
    order = any_order(shop, lambda o: o.status == "delivered"
                      and days_ago(o.delivered_at) < 25
                      and any(not line.returnable for line in o.lines)
                      and any(line.returnable for line in o.lines)
                      and not shop.returns_for_order(o.id))
    kept = next(line for line in order.lines if not line.returnable)
    async with chat() as client:
        await client.hello()
        await client.turn(f"I want to return an item from order {order.id}")
        await client.turn(order.email)
        frames = await client.turn(f"the {kept.name}")
    assert "can't be returned for safety or hygiene reasons" in said(frames)
    assert not shop.returns_for_order(order.id)


async def test_a_return_after_the_window_is_explained(chat: Any, shop: ShopStore) -> None:
    anna = shop.get_customer("cus_0001")
    assert anna is not None and not anna.member
    order = pick_order(shop, "cus_0001", lambda o: o.status == "delivered"
                       and 30 < days_ago(o.delivered_at) < 60)
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn(f"how do I return order {order.id}")
    assert "return window ended" in said(frames) and "warranty" in said(frames)
    assert not any(r.rma for r in shop.returns_for_order(order.id)
                   if r.created_at > datetime.now(UTC) - timedelta(minutes=10))


async def test_refund_status_lists_the_returns_of_the_order(chat: Any, shop: ShopStore) -> None:
    order = any_order(shop, lambda o: any(r.refund_status == "issued"
                                          for r in shop.returns_for_order(o.id)))
    issued = next(r for r in shop.returns_for_order(order.id) if r.refund_status == "issued")
    async with chat() as client:
        await client.hello()
        await client.turn(f"has my refund for {order.id} been processed?")
        frames = await client.turn(order.email)
    assert issued.rma in said(frames) and "refund has been issued" in said(frames)


async def test_cancelling_a_shipped_order_is_refused_with_alternatives(
    chat: Any, shop: ShopStore,
) -> None:
    order = pick_order(shop, "cus_0001", lambda o: o.status in ("shipped", "out_for_delivery"))
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn(f"please cancel order {order.id}")
    assert "already shipped" in said(frames)
    assert any(b["title"] == "Track it" for b in buttons(frames))
    reread = shop.get_order(order.id)
    assert reread is not None and reread.status == order.status


async def test_cancelling_needs_an_explicit_yes_and_is_audited(
    chat: Any, shop: ShopStore,
) -> None:
    order = pick_order(shop, "cus_0001", lambda o: o.status in ("placed", "processing"))
    async with chat() as client:
        await client.hello(identity=identity("cus_0001"))
        frames = await client.turn(f"I want to cancel order {order.id}")
        assert "Shall I cancel" in said(frames)
        frames = await client.turn("no")
        assert "left order" in said(frames)
        assert shop.get_order(order.id).status == order.status  # type: ignore[union-attr]
        frames = await client.turn(f"cancel order {order.id} please")
        yes = press(frames, lambda b: b["payload"] == "/affirm")
        frames = await client.turn(yes["title"], payload=yes["payload"])
    assert f"order {order.id} is cancelled" in said(frames)
    assert shop.get_order(order.id).status == "cancelled"  # type: ignore[union-attr]
    entries = shop.audit_log(client.conversation_id)
    assert [e.action for e in entries] == ["order_cancelled"]


async def test_changing_the_address_before_shipping(chat: Any, shop: ShopStore) -> None:
    order = any_order(shop, lambda o: o.status in ("placed", "processing"))
    async with chat() as client:
        await client.hello()
        await client.turn(f"I need to change the delivery address for {order.id}")
        frames = await client.turn(order.email)
        assert "new delivery address" in said(frames)
        frames = await client.turn("Kanalstrasse 12, Hamburg")
        assert "postcode" in said(frames) or "separated by commas" in said(frames)
        frames = await client.turn("Jo Tester, Kanalstrasse 12, 20095 Hamburg, Germany")
        assert "Kanalstrasse 12" in said(frames) and "Shall I change" in said(frames)
        yes = press(frames, lambda b: b["payload"] == "/affirm")
        frames = await client.turn(yes["title"], payload=yes["payload"])
    assert "will go to Jo Tester, Kanalstrasse 12, 20095 Hamburg, DE" in said(frames)
    changed = shop.get_order(order.id)
    assert changed is not None and changed.shipping_address.postcode == "20095"
    (entry,) = shop.audit_log(client.conversation_id)
    assert entry.action == "address_changed" and entry.target == order.id
