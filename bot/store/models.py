"""The shop's data as the bot sees it: plain pydantic models, whatever the backend.

The SQLite store and the HTTP adapter both return these, so actions never know
where the data came from.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Address",
    "AuditEntry",
    "Customer",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Product",
    "Return",
    "ReturnLine",
    "Variant",
    "normalise_order_id",
    "normalise_rma",
]

OrderStatus = Literal[
    "placed", "processing", "shipped", "out_for_delivery", "delivered", "cancelled"
]
#: Statuses in which the parcel has not left the warehouse: cancel and re-address allowed.
NOT_SHIPPED: frozenset[str] = frozenset({"placed", "processing"})
ReturnStatus = Literal["requested", "in_transit", "received", "refunded", "rejected"]
RefundStatus = Literal["not_started", "pending", "issued", "rejected"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variant(_Model):
    sku: str
    size: str | None = None
    colour: str | None = None
    stock: int = Field(ge=0)


class Product(_Model):
    sku: str
    name: str
    category: str
    price: float = Field(ge=0)
    currency: str = "EUR"
    url: str | None = None
    description: str = ""
    #: Spec name → value, e.g. {"weight": "1.9 kg", "waterproof rating": "3,000 mm"}.
    specs: dict[str, str] = Field(default_factory=dict)
    variants: list[Variant] = Field(default_factory=list)
    #: False for categories the returns policy excludes (gas, gift cards, ...).
    returnable: bool = True


class Customer(_Model):
    id: str
    email: str
    first_name: str
    last_name: str
    #: Trailhead Club members get 60 days to return instead of 30.
    member: bool = False


class Address(_Model):
    name: str = Field(min_length=1, max_length=120)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    postcode: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")

    def one_line(self) -> str:
        parts = [self.name, self.line1, self.line2, f"{self.postcode} {self.city}", self.country]
        return ", ".join(part for part in parts if part)


class OrderLine(_Model):
    line_id: int = Field(ge=1)
    product_sku: str
    variant_sku: str
    name: str
    category: str
    size: str | None = None
    colour: str | None = None
    qty: int = Field(ge=1)
    price: float = Field(ge=0)
    returnable: bool = True

    def label(self) -> str:
        options = ", ".join(part for part in (self.size, self.colour) if part)
        return f"{self.name} ({options})" if options else self.name


class Order(_Model):
    id: str
    customer_id: str
    email: str
    status: OrderStatus
    placed_at: datetime
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    expected_delivery: date | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: list[OrderLine]
    shipping_address: Address
    total: float = Field(ge=0)
    currency: str = "EUR"

    @property
    def shipped(self) -> bool:
        return self.status not in NOT_SHIPPED and self.status != "cancelled"


class ReturnLine(_Model):
    line_id: int = Field(ge=1)
    qty: int = Field(ge=1)


class Return(_Model):
    rma: str
    order_id: str
    lines: list[ReturnLine]
    reason: str
    status: ReturnStatus
    refund_amount: float = Field(ge=0)
    refund_status: RefundStatus
    created_at: datetime
    refunded_at: datetime | None = None


class AuditEntry(_Model):
    """One change the bot made to the shop's data (or a privacy redaction): append-only."""

    id: int
    at: datetime
    conversation_id: str | None
    action: Literal["return_created", "order_cancelled", "address_changed", "privacy_redaction"]
    target: str
    detail: dict[str, Any]


_ORDER_ID = re.compile(r"^#?\s*(?:SC-?)?(\d{5,12})$", re.IGNORECASE)
_RMA = re.compile(r"^(?:RMA-?)(\d{3,12})$", re.IGNORECASE)


def normalise_order_id(text: str) -> str | None:
    """``#100482``, ``sc100482`` and ``SC-100482`` all mean ``SC-100482``; anything else None."""
    match = _ORDER_ID.match(text.strip())
    return f"SC-{match.group(1)}" if match else None


def normalise_rma(text: str) -> str | None:
    match = _RMA.match(text.strip())
    return f"RMA-{match.group(1)}" if match else None
