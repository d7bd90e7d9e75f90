"""The built-in SQLite shop: demo data, reads, rule-checked writes and the audit log."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from bot.store.audit import REDACTED
from bot.store.demo import DemoDataError, load_demo
from bot.store.errors import NotAllowed, OrderNotFound
from bot.store.models import Address, Order, ReturnLine
from bot.store.sqlite import SQLiteShop
from tests.store.conftest import NOW, WINDOW

ADDRESS = Address(name="Jo Tester", line1="Kanalstrasse 12", city="Hamburg",
                  postcode="20095", country="DE")


def all_orders(store: SQLiteShop) -> list[Order]:
    return [order for n in range(1, 40)
            for order in store.orders_for_customer(f"cus_{n:04d}", limit=100)]


def test_the_demo_shop_has_every_status_and_return_window(store: SQLiteShop) -> None:
    orders = all_orders(store)
    assert len(orders) >= 60 and len(store.list_products()) >= 30
    assert sum(store.get_customer(f"cus_{n:04d}") is not None for n in range(1, 40)) >= 20
    assert {o.status for o in orders} == {"placed", "processing", "shipped",
                                          "out_for_delivery", "delivered", "cancelled"}
    ages = [(NOW - o.delivered_at).days for o in orders if o.delivered_at]
    assert any(a <= 30 for a in ages) and any(30 < a <= 60 for a in ages) \
        and any(a > 60 for a in ages)
    assert any(not line.returnable for o in orders for line in o.lines)


def test_annas_orders_cover_the_demo_stories(store: SQLiteShop) -> None:
    anna = store.get_customer("cus_0001")
    assert anna is not None and anna.first_name == "Anna" and not anna.member
    orders = store.orders_for_customer("cus_0001", limit=10)
    assert [o.placed_at for o in orders] == sorted((o.placed_at for o in orders), reverse=True)
    statuses = {o.status for o in orders}
    assert {"processing", "shipped", "delivered"} <= statuses
    recent = [o for o in orders if o.delivered_at and NOW - o.delivered_at < timedelta(days=10)]
    assert any(line.returnable for line in recent[0].lines)
    assert any(not line.returnable for line in recent[0].lines)


def test_products_by_sku_variant_sku_and_name(store: SQLiteShop) -> None:
    jacket = store.get_product("JKT-STORM-M")
    assert jacket is not None and store.get_product("JKT-STORM-M-M-BLU") == jacket
    assert store.get_product("nope") is None
    assert [p.sku for p in store.find_products("the ridgeline tents")][:2] == \
        ["TENT-RIDGE-2P", "TENT-RIDGE-3P"]
    assert store.find_products("banana") == []
    gas = store.get_product("FUEL-GAS-230")
    assert gas is not None and not gas.returnable and jacket.returnable


def _delivered(store: SQLiteShop, within: int) -> Order:
    """A recent delivery with two returnable items and no return yet."""
    return next(o for o in all_orders(store) if o.status == "delivered" and o.delivered_at
                and NOW - o.delivered_at < timedelta(days=within)
                and sum(line.returnable for line in o.lines) >= 2
                and not store.returns_for_order(o.id))


def test_a_return_gets_the_next_rma_and_an_audit_row(store: SQLiteShop, tmp_path: Path) -> None:
    order = _delivered(store, 25)
    line = next(line for line in order.lines if line.returnable)
    first = store.create_return(order.id, [ReturnLine(line_id=line.line_id, qty=1)],
                                "too small", "conv-1")
    assert first.rma == "RMA-5007" and first.refund_amount == line.price
    assert first.status == "requested" and store.returns_for_order(order.id) == [first]
    with pytest.raises(NotAllowed) as twice:
        store.create_return(order.id, [ReturnLine(line_id=line.line_id, qty=line.qty)],
                            "again", "conv-1")
    assert twice.value.code == "already_returned"
    (entry,) = store.audit_log("conv-1")
    assert (entry.action, entry.target, entry.detail["order_id"]) == \
        ("return_created", first.rma, order.id)
    # The audit survives a new process opening the file.
    reopened = SQLiteShop(store.path, window=WINDOW)
    assert [e.target for e in reopened.audit_log("conv-1")] == [first.rma]
    reopened.close()


def test_the_audit_log_cannot_be_edited_or_deleted(store: SQLiteShop) -> None:
    order = next(o for o in all_orders(store) if o.status == "processing")
    store.cancel_order(order.id, "conv-2")
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET action = 'nothing'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    # Only a privacy request may blank a row's detail, and change nothing else with it.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET detail = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET detail = ?, target = 'x'", [REDACTED])
    conn.execute("UPDATE audit SET detail = ?", [REDACTED])
    conn.close()


def test_cancel_and_readdress_only_before_shipping(store: SQLiteShop) -> None:
    orders = all_orders(store)
    waiting = next(o for o in orders if o.status == "placed")
    shipped = next(o for o in orders if o.status == "shipped")
    changed = store.change_address(waiting.id, ADDRESS, "conv-3")
    assert changed.shipping_address == ADDRESS
    assert store.cancel_order(waiting.id, "conv-3").status == "cancelled"
    for attempt in (lambda: store.cancel_order(shipped.id, "conv-3"),
                    lambda: store.change_address(shipped.id, ADDRESS, "conv-3")):
        with pytest.raises(NotAllowed) as refused:
            attempt()
        assert refused.value.code == "shipped"
    with pytest.raises(NotAllowed) as again:
        store.cancel_order(waiting.id, "conv-3")
    assert again.value.code == "cancelled"
    assert [e.action for e in store.audit_log("conv-3")] == ["address_changed",
                                                            "order_cancelled"]
    assert store.get_order(shipped.id) == shipped
    with pytest.raises(OrderNotFound):
        store.cancel_order("SC-999999", None)


def test_returns_outside_the_window_or_of_excluded_items_are_refused(store: SQLiteShop) -> None:
    orders = all_orders(store)
    old = next(o for o in orders if o.status == "delivered" and o.delivered_at
               and NOW - o.delivered_at > timedelta(days=65))
    with pytest.raises(NotAllowed) as late:
        store.create_return(old.id, [ReturnLine(line_id=1, qty=1)], "late", None)
    assert late.value.code == "window_expired"
    mixed = next(o for o in orders if o.status == "delivered" and o.delivered_at
                 and NOW - o.delivered_at < timedelta(days=25)
                 and any(not line.returnable for line in o.lines))
    gas = next(line for line in mixed.lines if not line.returnable)
    with pytest.raises(NotAllowed) as excluded:
        store.create_return(mixed.id, [ReturnLine(line_id=gas.line_id, qty=1)], "x", None)
    assert excluded.value.code == "non_returnable"
    assert store.audit_log() == []


def test_a_bad_demo_file_is_reported_with_file_and_record(tmp_path: Path) -> None:
    data = tmp_path / "shop"
    data.mkdir()
    for name in ("products.yml", "customers.yml", "returns.yml"):
        (data / name).write_text((PROJECT_DIR / "data" / "shop" / name).read_text())
    orders = (PROJECT_DIR / "data" / "shop" / "orders.yml").read_text()
    (data / "orders.yml").write_text(orders.replace("FLC-FJORD-M-GRY", "NO-SUCH-VARIANT", 1))
    shop = SQLiteShop(tmp_path / "shop.db", window=WINDOW)
    with pytest.raises(DemoDataError, match=r"orders\.yml: SC-\d+: line 1: unknown variant "
                                            "NO-SUCH-VARIANT"):
        load_demo(shop, data, NOW)
    (data / "orders.yml").write_text("orders: [unclosed")
    with pytest.raises(DemoDataError, match="not valid YAML"):
        load_demo(shop, data, NOW)
    assert shop.is_empty()
    shop.close()
