"""A shop's order updates in the shop's data: what each changes (pure), what the shopper
reads about it, the built-in store writing it, and the HTTP adapter reading the shop's
API back instead of keeping a copy."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.store.http import HttpShop
from bot.store.models import Order
from bot.store.sqlite import SQLiteShop
from bot.store.updates import (
    OrderUpdate,
    apply_update,
    describe_update,
    order_verified_payload,
    parse_order_verified,
)
from tests.store.conftest import WINDOW
from tests.store.fake_shop import TOKEN, running
from tests.store.test_sqlite import all_orders

AT = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)


def one(store: SQLiteShop, status: str) -> Order:
    return next(o for o in all_orders(store) if o.status == status)


def test_each_event_changes_what_it_says(store: SQLiteShop) -> None:
    packing = one(store, "processing")
    shipped, _ = apply_update(packing, [], OrderUpdate(
        "shipped", AT, new_date=date(2026, 12, 11), tracking_url="https://t.example/1"))
    assert (shipped.status, shipped.shipped_at, shipped.expected_delivery,
            shipped.tracking_url) == ("shipped", AT, date(2026, 12, 11), "https://t.example/1")
    late, _ = apply_update(shipped, [], OrderUpdate("delayed", AT, new_date=date(2026, 12, 20)))
    assert (late.status, late.expected_delivery) == ("shipped", date(2026, 12, 20))
    out, _ = apply_update(late, [], OrderUpdate("out_for_delivery", AT))
    assert (out.status, out.expected_delivery, out.shipped_at) == ("out_for_delivery",
                                                                  AT.date(), AT)
    delivered, _ = apply_update(out, [], OrderUpdate("delivered", AT))
    assert (delivered.status, delivered.delivered_at) == ("delivered", AT)
    assert delivered.lines == packing.lines and delivered.email == packing.email


def test_a_refund_marks_the_open_refunds_or_the_one_named(store: SQLiteShop) -> None:
    order = next(o for o in all_orders(store)
                 if any(r.refund_status != "issued" for r in store.returns_for_order(o.id)))
    returns = store.returns_for_order(order.id)
    _, all_open = apply_update(order, returns, OrderUpdate("refund_issued", AT))
    assert all_open and all(r.refund_status == "issued" and r.refunded_at == AT
                            for r in all_open)
    assert {r.rma for r in all_open} == {r.rma for r in returns
                                         if r.refund_status in ("not_started", "pending")}
    _, named = apply_update(order, returns, OrderUpdate("refund_issued", AT, rma="RMA-1"))
    assert named == []


def test_what_the_shopper_reads(store: SQLiteShop) -> None:
    order = one(store, "shipped")
    update = OrderUpdate("delayed", AT, new_date=date(2026, 12, 24), note="Snow.",
                         tracking_url="https://t.example/2")
    changed, _ = apply_update(order, [], update)
    text = describe_update(changed, update, [])
    assert text.splitlines() == [
        f"Your order {order.id} is delayed, sorry. The new expected delivery date is "
        "Thursday 24 December.", "Track it: https://t.example/2", "From the shop: Snow."]
    assert describe_update(order, OrderUpdate("delivered", AT), []) == \
        f"Your order {order.id} was delivered on Tuesday 8 December."


def test_the_built_in_store_writes_an_update_and_the_bot_reads_it(store: SQLiteShop) -> None:
    order = one(store, "shipped")
    written = store.record_update(order.id, OrderUpdate("delivered", AT))
    assert written is not None and written[0].status == "delivered"
    assert store.get_order(order.id) == written[0]
    assert store.record_update("SC-999999999", OrderUpdate("delivered", AT)) is None
    assert store.audit_log() == []  # the shop's own news, not something the bot did


def test_the_http_adapter_reads_the_shops_api_back_and_keeps_no_copy(
        store: SQLiteShop, tmp_path: Path) -> None:
    order = one(store, "processing")
    with running(store) as url:
        shop = HttpShop(url, TOKEN, 5.0, tmp_path / "audit.db", window=WINDOW)
        assert shop.get_order(order.id) == order
        # The shop changes the order in its own system, then tells us.
        store.record_update(order.id, OrderUpdate("shipped", AT))
        found = shop.record_update(order.id, OrderUpdate("shipped", AT))
        assert found is not None and found[0].status == "shipped"
        assert shop.get_order(order.id) == store.get_order(order.id)
        # An event the shop's API does not reflect changes nothing here: the API rules.
        found = shop.record_update(order.id, OrderUpdate("delivered", AT))
        assert found is not None and found[0].status == "shipped"
        assert shop.record_update("SC-999999999", OrderUpdate("shipped", AT)) is None
        shop.close()


@pytest.mark.parametrize(("custom", "found"), [
    (order_verified_payload("SC-100482"), "SC-100482"),
    ({"order_verified": {"order_id": "#100482"}}, "SC-100482"),
    ({"order_verified": {"order_id": "not an order"}}, None),
    ({"order_verified": "SC-100482"}, None),
    ({"order_verified": {"order_id": 100482}}, None),
    ("SC-100482", None),
    (None, None),
])
def test_only_a_well_formed_notice_names_a_proved_order(custom: object,
                                                        found: str | None) -> None:
    assert parse_order_verified(custom) == found

