"""The REST adapter against a real local fake shop: reads, writes, refusals, outages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.store.errors import NotAllowed, ShopUnavailable
from bot.store.http import HttpShop
from bot.store.models import Address, ReturnLine
from bot.store.sqlite import SQLiteShop
from tests.store.conftest import WINDOW
from tests.store.fake_shop import TOKEN, running
from tests.store.test_sqlite import all_orders


def adapter(url: str, tmp_path: Path, token: str | None = TOKEN) -> HttpShop:
    return HttpShop(url, token, 5.0, tmp_path / "audit.db", window=WINDOW)


def test_reads_round_trip_through_the_api(store: SQLiteShop, tmp_path: Path) -> None:
    with running(store) as url:
        shop = adapter(url, tmp_path)
        order = all_orders(store)[0]
        assert shop.get_order(order.id) == order
        assert shop.get_order("SC-999999") is None
        assert shop.get_customer("cus_0001") == store.get_customer("cus_0001")
        assert shop.orders_for_customer("cus_0001", 2) == store.orders_for_customer("cus_0001", 2)
        assert shop.get_product("JKT-STORM-M-M-BLU") == store.get_product("JKT-STORM-M")
        assert [p.sku for p in shop.find_products("ridgeline tent")] == \
            [p.sku for p in store.find_products("ridgeline tent")]
        with_returns = next(o for o in all_orders(store) if store.returns_for_order(o.id))
        assert shop.returns_for_order(with_returns.id) == store.returns_for_order(with_returns.id)
        shop.close()


def test_writes_go_to_the_shop_and_into_the_local_audit(store: SQLiteShop, tmp_path: Path) -> None:
    waiting = next(o for o in all_orders(store) if o.status == "placed")
    address = Address(name="Jo", line1="Main 1", city="Gent", postcode="9000", country="BE")
    with running(store) as url:
        shop = adapter(url, tmp_path)
        assert shop.change_address(waiting.id, address, "conv-h").shipping_address == address
        assert shop.cancel_order(waiting.id, "conv-h").status == "cancelled"
        assert [e.action for e in shop.audit_log("conv-h")] == ["address_changed",
                                                               "order_cancelled"]
        shop.close()
    assert store.get_order(waiting.id).status == "cancelled"  # type: ignore[union-attr]


def test_rules_are_checked_before_the_api_is_asked(store: SQLiteShop, tmp_path: Path) -> None:
    shipped = next(o for o in all_orders(store) if o.status == "shipped")
    with running(store) as url:
        shop = adapter(url, tmp_path)
        with pytest.raises(NotAllowed) as refused:
            shop.cancel_order(shipped.id, "conv-h")
        assert refused.value.code == "shipped" and shop.audit_log() == []
        shop.close()


def test_a_refusal_from_the_shop_becomes_not_allowed(store: SQLiteShop, tmp_path: Path) -> None:
    delivered = next(o for o in all_orders(store) if o.status == "delivered"
                     and any(line.returnable for line in o.lines)
                     and o.delivered_at and (store.clock() - o.delivered_at).days < 25
                     and not store.returns_for_order(o.id))
    line = next(line for line in delivered.lines if line.returnable)
    with running(store, refuse_writes=True) as url:
        shop = adapter(url, tmp_path)
        with pytest.raises(NotAllowed, match="frozen during stock-taking"):
            shop.create_return(delivered.id, [ReturnLine(line_id=line.line_id, qty=1)],
                               "too big", "conv-h")
        assert shop.audit_log() == []
        shop.close()


def test_a_wrong_token_or_a_dead_server_is_an_outage(store: SQLiteShop, tmp_path: Path) -> None:
    with running(store) as url:
        shop = adapter(url, tmp_path, token="wrong")
        with pytest.raises(ShopUnavailable, match="refused our token"):
            shop.get_customer("cus_0001")
        shop.close()
    dead = adapter(url, tmp_path)  # the server has stopped
    with pytest.raises(ShopUnavailable):
        dead.get_order("SC-100401")
    dead.close()
