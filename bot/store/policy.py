"""The shop's rules as pure functions: who may see an order, what may be returned or changed.

No I/O: the actions and every store backend call these with plain data, so the
rules hold whichever backend answers and are tested without one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.errors import NotAllowed
from bot.store.models import NOT_SHIPPED, Order, OrderLine, Return, ReturnLine
from bot.store.parsing import normalise_email

__all__ = [
    "ReturnWindow",
    "check_change",
    "check_return",
    "returnable_lines",
    "verify_owner",
]


def verify_owner(order: Order | None, *, email: str | None = None,
                 customer_id: str | None = None) -> bool:
    """True only when the shopper proved the order is theirs.

    Either the storefront vouched for the customer (a verified ``customer_id``
    that owns the order) or the shopper gave the order's email (normalised: case,
    Unicode form, IDN domain; see :func:`normalise_email`). Compared in constant
    time; an unknown order and a wrong email look the same to callers.
    """
    if order is None:
        return False
    if customer_id is not None and hmac.compare_digest(order.customer_id, customer_id):
        return True
    if email is not None:
        given = normalise_email(email).encode()
        return hmac.compare_digest(normalise_email(order.email).encode(), given)
    return False


@dataclass(frozen=True)
class ReturnWindow:
    days: int
    member_days: int


def check_change(order: Order, what: str) -> None:
    """Cancelling or re-addressing is possible only before the parcel leaves the warehouse."""
    if order.status == "cancelled":
        raise NotAllowed("cancelled", f"Order {order.id} is already cancelled.")
    if order.status not in NOT_SHIPPED:
        raise NotAllowed(
            "shipped",
            f"Order {order.id} has already shipped, so I can't {what} any more.",
        )


def _returned_qty(returns: list[Return], line_id: int) -> int:
    return sum(
        item.qty for ret in returns if ret.status != "rejected"
        for item in ret.lines if item.line_id == line_id
    )


def returnable_lines(order: Order, returns: list[Return]) -> list[tuple[OrderLine, int]]:
    """Lines that may still be returned, each with the quantity left to return."""
    left = []
    for line in order.lines:
        qty = line.qty - _returned_qty(returns, line.line_id)
        if line.returnable and qty > 0:
            left.append((line, qty))
    return left


def check_return(order: Order, returns: list[Return], lines: list[ReturnLine] | None,
                 *, now: datetime, window: ReturnWindow, member: bool) -> None:
    """Raise :class:`NotAllowed` unless ``lines`` (or, with None, anything) may be returned now."""
    if order.status == "cancelled":
        raise NotAllowed("cancelled", f"Order {order.id} was cancelled, so there is "
                                      "nothing to return.")
    if order.status != "delivered" or order.delivered_at is None:
        raise NotAllowed(
            "not_delivered",
            f"Order {order.id} hasn't been delivered yet. Once it arrives you can return it "
            "within the return window.",
        )
    days = window.member_days if member else window.days
    deadline = order.delivered_at + timedelta(days=days)
    if now > deadline:
        raise NotAllowed(
            "window_expired",
            f"Order {order.id} was delivered on {order.delivered_at:%d %B %Y}; the "
            f"{days}-day return window ended on {deadline:%d %B %Y}. Faulty items are "
            "still covered by our warranty.",
        )
    left = dict((line.line_id, qty) for line, qty in returnable_lines(order, returns))
    if not left:
        raise NotAllowed(
            "nothing_returnable",
            f"Nothing in order {order.id} can be returned: the items are either already "
            "being returned or can't be returned for safety or hygiene reasons.",
        )
    by_id = {line.line_id: line for line in order.lines}
    for item in lines or []:
        line = by_id.get(item.line_id)
        if line is None:
            raise NotAllowed("unknown_line", f"Order {order.id} has no item {item.line_id}.")
        if not line.returnable:
            raise NotAllowed(
                "non_returnable",
                f"{line.name} can't be returned for safety or hygiene reasons. If it is "
                "faulty, our warranty covers it.",
            )
        if item.qty > left.get(item.line_id, 0):
            raise NotAllowed(
                "already_returned",
                f"{line.name} is already being returned.",
            )
