"""What the bot says about orders and returns: plain functions from models to text.

Kept apart from the actions so the wording is tested without Rasa, and so an
agent and the bot describe an order the same way.
"""

from __future__ import annotations

from datetime import date, datetime

from bot.store.models import Order, OrderLine, Return

__all__ = [
    "STATUS_WORDS",
    "describe_order",
    "describe_refunds",
    "mask_email",
    "money",
    "order_choice_title",
    "return_next_steps",
]

STATUS_WORDS = {
    "placed": "has been placed and is waiting to be packed",
    "processing": "is being packed in our warehouse",
    "shipped": "is on its way",
    "out_for_delivery": "is out for delivery today",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
}
_SHORT_STATUS = {
    "placed": "placed", "processing": "being packed", "shipped": "on its way",
    "out_for_delivery": "out for delivery", "delivered": "delivered", "cancelled": "cancelled",
}
_REFUND_WORDS = {
    "not_started": "the refund starts once we have received the items",
    "pending": "the refund is being processed",
    "issued": "the refund has been issued",
    "rejected": "the refund was declined",
}
_RETURN_WORDS = {
    "requested": "waiting for the parcel",
    "in_transit": "on its way back to us",
    "received": "received at our warehouse",
    "refunded": "refunded",
    "rejected": "not accepted",
}


def money(amount: float, currency: str = "EUR") -> str:
    symbol = {"EUR": "€", "GBP": "£", "USD": "$"}.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


def _day(value: date | datetime) -> str:
    return f"{value:%a %d %b}".replace(" 0", " ")


def _items(lines: list[OrderLine]) -> str:
    return "; ".join(f"{line.qty} × {line.label()}" for line in lines)  # noqa: RUF001 (typography shoppers read)


def describe_order(order: Order) -> str:
    """Everything a shopper asks about a verified order: status, dates, tracking, items."""
    parts = [f"Your order {order.id} {STATUS_WORDS[order.status]}"]
    if order.status == "delivered" and order.delivered_at is not None:
        parts[0] += f" on {_day(order.delivered_at)}."
    elif order.status in ("shipped", "out_for_delivery") and order.shipped_at is not None:
        parts[0] += f" (shipped {_day(order.shipped_at)} with {order.carrier})."
    else:
        parts[0] += f" (ordered {_day(order.placed_at)})."
    if order.status in ("placed", "processing", "shipped", "out_for_delivery") \
            and order.expected_delivery is not None:
        parts.append(f"Expected delivery: {_day(order.expected_delivery)}.")
    if order.tracking_url and order.status != "cancelled":
        parts.append(f"Track it with {order.carrier}: {order.tracking_url}")
    parts.append(f"Items: {_items(order.lines)}.")
    if order.status in ("placed", "processing"):
        parts.append("It hasn't shipped yet, so you can still cancel it or change the address.")
    return "\n".join(parts)


def order_choice_title(order: Order) -> str:
    """A button label for picking one of the shopper's orders."""
    return f"{order.id} · {_SHORT_STATUS[order.status]} · {money(order.total, order.currency)}"


def describe_refunds(order: Order, returns: list[Return]) -> str:
    if not returns:
        return (f"There's no return for order {order.id} yet, so no refund is under way. "
                "If you'd like to send something back, I can start a return.")
    names = {line.line_id: line.label() for line in order.lines}
    lines = [f"Returns for order {order.id}:"]
    for ret in returns:
        items = ", ".join(names.get(item.line_id, f"item {item.line_id}") for item in ret.lines)
        text = (f"• {ret.rma} ({items}): {_RETURN_WORDS[ret.status]}; "
                f"{_REFUND_WORDS[ret.refund_status]}")
        if ret.refund_status == "issued" and ret.refunded_at is not None:
            text += (f" — {money(ret.refund_amount, order.currency)} on "
                     f"{_day(ret.refunded_at)}; allow 3–5 working days for your bank to show it")  # noqa: RUF001 (typography shoppers read)
        elif ret.refund_status in ("not_started", "pending"):
            text += f" ({money(ret.refund_amount, order.currency)})"
        lines.append(text + ".")
    return "\n".join(lines)


def mask_email(email: str) -> str:
    """``anna.berg@example.com`` → ``a***@example.com``: enough to recognise, not to read."""
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "your email address"


def return_next_steps(ret: Return, order: Order) -> str:
    names = {line.line_id: line.label() for line in order.lines}
    items = ", ".join(names.get(item.line_id, f"item {item.line_id}") for item in ret.lines)
    return (
        f"Your return {ret.rma} is registered for: {items}.\n"
        f"Next steps: we've emailed a prepaid return label to {mask_email(order.email)}. "
        "Pack the item unused with its tags, stick the label on and drop it at any "
        f"{order.carrier or 'parcel'} point within 14 days. We refund "
        f"{money(ret.refund_amount, order.currency)} to your original payment method within "
        "3 working days of receiving it."
    )
