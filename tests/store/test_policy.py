"""The shop's rules as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.errors import NotAllowed
from bot.store.models import Address, Order, OrderLine, Return, ReturnLine
from bot.store.policy import ReturnWindow, check_change, check_return, verify_owner

NOW = datetime(2026, 11, 25, tzinfo=UTC)
WINDOW = ReturnWindow(30, 60)


def order(status: str = "delivered", delivered_days: float | None = 5) -> Order:
    return Order(
        id="SC-100999", customer_id="cus_0009", email="Kim@Example.com", status=status,
        placed_at=NOW - timedelta(days=40),
        delivered_at=None if delivered_days is None else NOW - timedelta(days=delivered_days),
        lines=[OrderLine(line_id=1, product_sku="J", variant_sku="J-M", name="Jacket",
                         category="Clothing", qty=1, price=100),
               OrderLine(line_id=2, product_sku="G", variant_sku="G-1", name="Gas",
                         category="Fuel", qty=2, price=7, returnable=False)],
        shipping_address=Address(name="Kim", line1="A 1", city="B", postcode="1000",
                                 country="BE"),
        total=114,
    )


def test_the_owner_is_proven_by_email_in_any_case_or_by_customer_id() -> None:
    assert verify_owner(order(), email=" kim@example.COM ")
    assert verify_owner(order(), customer_id="cus_0009")
    assert not verify_owner(order(), email="kim@example.org")
    assert not verify_owner(order(), customer_id="cus_0001")
    assert not verify_owner(None, email="kim@example.com")
    assert not verify_owner(order())


def test_a_non_ascii_email_proves_the_order_in_any_unicode_form() -> None:
    mateo = order().model_copy(update={"email": "mateo.garcía@example.org"})
    assert verify_owner(mateo, email="Mateo.Garci\u0301a@EXAMPLE.org")
    assert not verify_owner(mateo, email="a@example.org")
    assert not verify_owner(mateo, email="mateo.garcia@example.org")


def test_changes_only_before_shipping() -> None:
    check_change(order("processing", None), "cancel it")
    for status, code in (("shipped", "shipped"), ("delivered", "shipped"),
                         ("cancelled", "cancelled")):
        with pytest.raises(NotAllowed) as refused:
            check_change(order(status), "cancel it")
        assert refused.value.code == code


@pytest.mark.parametrize("days, member, code", [
    (31, False, "window_expired"), (31, True, None), (61, True, "window_expired"),
])
def test_the_return_window_counts_from_delivery(days: int, member: bool,
                                                code: str | None) -> None:
    if code is None:
        check_return(order(delivered_days=days), [], None, now=NOW, window=WINDOW, member=member)
        return
    with pytest.raises(NotAllowed) as refused:
        check_return(order(delivered_days=days), [], None, now=NOW, window=WINDOW,
                     member=member)
    assert refused.value.code == code


def test_undelivered_excluded_and_already_returned_items_are_refused() -> None:
    cases = [
        (order("shipped", None), None, [], "not_delivered"),
        (order(), [ReturnLine(line_id=2, qty=1)], [], "non_returnable"),
        (order(), None, [Return(rma="RMA-1", order_id="SC-100999",
                                lines=[ReturnLine(line_id=1, qty=1)], reason="x",
                                status="requested", refund_amount=100,
                                refund_status="not_started", created_at=NOW)],
         "nothing_returnable"),
    ]
    for subject, lines, returns, code in cases:
        with pytest.raises(NotAllowed) as refused:
            check_return(subject, returns, lines, now=NOW, window=WINDOW, member=False)
        assert refused.value.code == code
