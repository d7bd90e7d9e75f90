"""The demo shop (``data/shop/*.yml``) loaded into an empty SQLite store.

The YAML is strict: an unknown field, a missing one or an order line naming a
variant that does not exist is reported with the file and the record, and
nothing is loaded. Dates are written relative to the moment of loading
("delivered 5 days ago"), so the demo's return windows never expire.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.settings import Settings
from bot.store.models import (
    Address,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    RefundStatus,
    Return,
    ReturnLine,
    ReturnStatus,
    Variant,
)
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop, now_utc

__all__ = ["NON_RETURNABLE_CATEGORIES", "DemoDataError", "DemoSummary", "ensure_demo_data",
           "load_demo"]

#: The returns policy's exclusions (data/kb/non-returnable-items.md), by product category.
NON_RETURNABLE_CATEGORIES = frozenset({"Fuel", "Underwear", "Personalised", "Gift cards"})
PRODUCT_URL = "https://trailhead.example/products/{}"


class DemoDataError(ValueError):
    """A demo data file is unreadable or inconsistent; the message names file and record."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ProductIn(_Strict):
    sku: str
    name: str
    category: str
    price: float = Field(ge=0)
    description: str = ""
    specs: dict[str, str] = Field(default_factory=dict)
    variants: list[Variant] = Field(min_length=1)


class _LineIn(_Strict):
    variant_sku: str
    qty: int = Field(ge=1)


class _OrderIn(_Strict):
    id: str = Field(pattern=r"^SC-\d{5,12}$")
    customer_id: str
    status: OrderStatus
    placed_days_ago: float = Field(ge=0)
    shipped_days_ago: float | None = None
    delivered_days_ago: float | None = None
    expected_in_days: int | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    lines: list[_LineIn] = Field(min_length=1)
    shipping_address: Address


class _ReturnIn(_Strict):
    rma: str = Field(pattern=r"^RMA-\d{3,12}$")
    order_id: str
    lines: list[ReturnLine] = Field(min_length=1)
    reason: str
    status: ReturnStatus
    refund_status: RefundStatus
    created_days_ago: float = Field(ge=0)
    refunded_days_ago: float | None = None


@dataclass(frozen=True)
class DemoSummary:
    products: int
    customers: int
    orders: int
    returns: int

    def __str__(self) -> str:
        return (f"{self.products} products, {self.customers} customers, {self.orders} orders, "
                f"{self.returns} returns")


@functools.lru_cache(maxsize=16)
def _load_yaml(text: str) -> Any:
    """Parsed once per process and text: ruamel's pure-Python parser takes about a second
    for the demo shop's files, which every test that loads the demo shop paid again.
    Callers only read what it returns (pydantic validates it into new objects)."""
    return YAML(typ="safe").load(text)


def _read(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        loaded = _load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DemoDataError(f"{path}: missing") from error
    except YAMLError as error:
        raise DemoDataError(f"{path}: not valid YAML: {error}") from error
    items = loaded.get(key) if isinstance(loaded, dict) else None
    if not isinstance(items, list):
        raise DemoDataError(f"{path}: expected a top-level '{key}:' list")
    return items


def _parse(path: Path, key: str, model: type[Any]) -> list[Any]:
    parsed = []
    for n, item in enumerate(_read(path, key), start=1):
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as error:
            name = item.get("id") or item.get("sku") or item.get("rma") if isinstance(
                item, dict) else None
            where = f"{key}[{n}]" + (f" ({name})" if name else "")
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in error.errors())
            raise DemoDataError(f"{path}: {where}: {problems}") from error
    return parsed


def _ago(now: datetime, days: float | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def load_demo(store: SQLiteShop, data_dir: Path, now: datetime) -> DemoSummary:
    """Read and check every file first; only then write them all to ``store``."""
    products = [Product(**p.model_dump(), url=PRODUCT_URL.format(p.sku.lower()),
                        returnable=p.category not in NON_RETURNABLE_CATEGORIES)
                for p in _parse(data_dir / "products.yml", "products", _ProductIn)]
    customers = _parse(data_dir / "customers.yml", "customers", Customer)
    by_variant = {v.sku: (p, v) for p in products for v in p.variants}
    known_customers = {c.id for c in customers}
    orders = []
    for raw in _parse(data_dir / "orders.yml", "orders", _OrderIn):
        where = f"{data_dir / 'orders.yml'}: {raw.id}"
        if raw.customer_id not in known_customers:
            raise DemoDataError(f"{where}: unknown customer {raw.customer_id}")
        lines = []
        for n, line in enumerate(raw.lines, start=1):
            if line.variant_sku not in by_variant:
                raise DemoDataError(f"{where}: line {n}: unknown variant {line.variant_sku}")
            product, variant = by_variant[line.variant_sku]
            lines.append(OrderLine(
                line_id=n, product_sku=product.sku, variant_sku=variant.sku, name=product.name,
                category=product.category, size=variant.size, colour=variant.colour,
                qty=line.qty, price=product.price, returnable=product.returnable))
        customer = next(c for c in customers if c.id == raw.customer_id)
        expected = None if raw.expected_in_days is None else \
            (now + timedelta(days=raw.expected_in_days)).date()
        orders.append(Order(
            id=raw.id, customer_id=raw.customer_id, email=customer.email, status=raw.status,
            placed_at=now - timedelta(days=raw.placed_days_ago),
            shipped_at=_ago(now, raw.shipped_days_ago),
            delivered_at=_ago(now, raw.delivered_days_ago), expected_delivery=expected,
            carrier=raw.carrier, tracking_number=raw.tracking_number,
            tracking_url=raw.tracking_url, lines=lines, shipping_address=raw.shipping_address,
            total=round(sum(line.price * line.qty for line in lines), 2)))
    by_order = {o.id: o for o in orders}
    returns = []
    for raw in _parse(data_dir / "returns.yml", "returns", _ReturnIn):
        order = by_order.get(raw.order_id)
        if order is None:
            raise DemoDataError(f"{data_dir / 'returns.yml'}: {raw.rma}: unknown order "
                                f"{raw.order_id}")
        prices = {line.line_id: line.price for line in order.lines}
        if any(item.line_id not in prices for item in raw.lines):
            raise DemoDataError(f"{data_dir / 'returns.yml'}: {raw.rma}: a line that order "
                                f"{raw.order_id} does not have")
        returns.append(Return(
            rma=raw.rma, order_id=raw.order_id, lines=raw.lines, reason=raw.reason,
            status=raw.status, refund_status=raw.refund_status,
            refund_amount=round(sum(prices[i.line_id] * i.qty for i in raw.lines), 2),
            created_at=now - timedelta(days=raw.created_days_ago),
            refunded_at=_ago(now, raw.refunded_days_ago)))
    for product in products:
        store.put_product(product)
    for customer in customers:
        store.put_customer(customer)
    for order in orders:
        store.put_order(order)
    for ret in returns:
        store.put_return(ret)
    return DemoSummary(len(products), len(customers), len(orders), len(returns))


def ensure_demo_data(settings: Settings) -> DemoSummary | None:
    """Load the demo shop into ``settings.shop_db`` if it is empty (and demo data is on)."""
    if not settings.demo_data:
        return None
    store = SQLiteShop(settings.shop_db, window=ReturnWindow(
        settings.return_window_days, settings.member_return_window_days))
    try:
        if not store.is_empty():
            return None
        return load_demo(store, settings.shop_demo_data_path, now_utc())
    finally:
        store.close()
