"""The built-in shop store: customers, products, orders and returns in one SQLite file.

Records are kept as their pydantic models' JSON next to the columns they are
looked up by, so the file stays simple to inspect (``sqlite3 var/shop.db``)
and the models stay the single description of the data. Every write checks
the shop's rules (:mod:`bot.store.policy`) and appends its audit row in the
same transaction as the change.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from bot.store.audit import AuditLog
from bot.store.errors import OrderNotFound
from bot.store.models import (
    Address,
    AuditEntry,
    Customer,
    Order,
    Product,
    Return,
    ReturnLine,
)
from bot.store.parsing import words
from bot.store.policy import ReturnWindow, check_change, check_return
from bot.store.updates import OrderUpdate, apply_update

__all__ = ["SQLiteShop", "now_utc"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    sku TEXT PRIMARY KEY, product_sku TEXT NOT NULL REFERENCES products(sku)
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, placed_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, placed_at);
CREATE TABLE IF NOT EXISTS returns (
    rma TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(id), number INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS returns_order ON returns (order_id);
"""


def now_utc() -> datetime:
    return datetime.now(UTC)


class SQLiteShop:
    """:class:`~bot.store.base.ShopStore` on a local SQLite file (WAL; safe across threads)."""

    def __init__(self, path: Path, *, window: ReturnWindow,
                 clock: Callable[[], datetime] = now_utc) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE).
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db = sqlite_utils.Database(self.conn)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        self.audit = AuditLog(self.conn)
        self.window = window
        self.clock = clock
        # One connection serves the action server's threads: one statement at a time.
        self._lock = threading.RLock()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _one(self, query: str, params: list[object]) -> str | None:
        with self._lock:
            row = self.conn.execute(query, params).fetchone()
        return None if row is None else str(row[0])

    def _all(self, query: str, params: list[object]) -> list[str]:
        with self._lock:
            return [str(row[0]) for row in self.conn.execute(query, params).fetchall()]

    def is_empty(self) -> bool:
        return self._one("SELECT count(*) FROM products", []) == "0"

    # -- loading (demo data, imports) ---------------------------------------

    def put_customer(self, customer: Customer) -> None:
        self.db.table("customers").upsert(
            {"id": customer.id, "email": customer.email, "data": customer.model_dump_json()},
            pk="id")

    def put_product(self, product: Product) -> None:
        self.db.table("products").upsert(
            {"sku": product.sku, "name": product.name, "data": product.model_dump_json()},
            pk="sku")
        for variant in product.variants:
            self.db.table("variants").upsert({"sku": variant.sku, "product_sku": product.sku},
                                             pk="sku")

    def put_order(self, order: Order) -> None:
        self.db.table("orders").upsert(
            {"id": order.id, "customer_id": order.customer_id,
             "placed_at": order.placed_at.timestamp(), "data": order.model_dump_json()},
            pk="id")

    def put_return(self, ret: Return) -> None:
        self.db.table("returns").upsert(
            {"rma": ret.rma, "order_id": ret.order_id, "number": _rma_number(ret.rma),
             "data": ret.model_dump_json()}, pk="rma")

    # -- reads --------------------------------------------------------------

    def get_customer(self, customer_id: str) -> Customer | None:
        data = self._one("SELECT data FROM customers WHERE id = ?", [customer_id])
        return None if data is None else Customer.model_validate_json(data)

    def get_order(self, order_id: str) -> Order | None:
        data = self._one("SELECT data FROM orders WHERE id = ?", [order_id])
        return None if data is None else Order.model_validate_json(data)

    def orders_for_customer(self, customer_id: str, limit: int = 5) -> list[Order]:
        rows = self._all("SELECT data FROM orders WHERE customer_id = ? "
                         "ORDER BY placed_at DESC, id DESC LIMIT ?", [customer_id, limit])
        return [Order.model_validate_json(data) for data in rows]

    def get_product(self, sku: str) -> Product | None:
        data = self._one(
            "SELECT data FROM products WHERE sku = ? UNION ALL SELECT p.data FROM variants v "
            "JOIN products p ON p.sku = v.product_sku WHERE v.sku = ? LIMIT 1",
            [sku.strip().upper(), sku.strip().upper()])
        return None if data is None else Product.model_validate_json(data)

    def list_products(self) -> list[Product]:
        return [Product.model_validate_json(data)
                for data in self._all("SELECT data FROM products ORDER BY sku", [])]

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        wanted = words(text)
        scored = []
        for product in self.list_products():
            score = len(wanted & words(product.name)) * 3 + len(wanted & words(product.category))
            if score:
                scored.append((score, product.sku, product))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [product for _, _, product in scored[:limit]]

    def returns_for_order(self, order_id: str) -> list[Return]:
        return [Return.model_validate_json(data) for data in self._all(
            "SELECT data FROM returns WHERE order_id = ? ORDER BY number", [order_id])]

    def get_return(self, rma: str) -> Return | None:
        data = self._one("SELECT data FROM returns WHERE rma = ?", [rma.strip().upper()])
        return None if data is None else Return.model_validate_json(data)

    def audit_log(self, conversation_id: str | None = None) -> list[AuditEntry]:
        with self._lock:
            return self.audit.entries(conversation_id)

    # -- writes: checked, audited, one transaction each ----------------------

    def _order_for_update(self, order_id: str) -> Order:
        row = self.conn.execute("SELECT data FROM orders WHERE id = ?", [order_id]).fetchone()
        if row is None:
            raise OrderNotFound(order_id)
        return Order.model_validate_json(row[0])

    def create_return(self, order_id: str, lines: list[ReturnLine], reason: str,
                      conversation_id: str | None) -> Return:
        with self.transaction() as conn:
            order = self._order_for_update(order_id)
            existing = [Return.model_validate_json(row[0]) for row in conn.execute(
                "SELECT data FROM returns WHERE order_id = ?", [order_id]).fetchall()]
            customer = self.get_customer(order.customer_id)
            check_return(order, existing, lines, now=self.clock(), window=self.window,
                         member=bool(customer and customer.member))
            (last,) = conn.execute("SELECT coalesce(max(number), 5000) FROM returns").fetchone()
            prices = {line.line_id: line.price for line in order.lines}
            created = Return(
                rma=f"RMA-{last + 1}", order_id=order_id, lines=lines, reason=reason,
                status="requested",
                refund_amount=round(sum(prices[item.line_id] * item.qty for item in lines), 2),
                refund_status="not_started", created_at=self.clock(),
            )
            conn.execute("INSERT INTO returns (rma, order_id, number, data) VALUES (?, ?, ?, ?)",
                         [created.rma, order_id, last + 1, created.model_dump_json()])
            self.audit.record("return_created", created.rma,
                              {"order_id": order_id, "lines": [i.model_dump() for i in lines],
                               "reason": reason, "refund_amount": created.refund_amount},
                              conversation_id)
        return created

    def cancel_order(self, order_id: str, conversation_id: str | None) -> Order:
        with self.transaction() as conn:
            order = self._order_for_update(order_id)
            check_change(order, "cancel it")
            cancelled = order.model_copy(update={"status": "cancelled", "expected_delivery": None})
            conn.execute("UPDATE orders SET data = ? WHERE id = ?",
                         [cancelled.model_dump_json(), order_id])
            self.audit.record("order_cancelled", order_id,
                              {"previous_status": order.status, "refund": order.total},
                              conversation_id)
        return cancelled

    def change_address(self, order_id: str, address: Address,
                       conversation_id: str | None) -> Order:
        with self.transaction() as conn:
            order = self._order_for_update(order_id)
            check_change(order, "change its delivery address")
            changed = order.model_copy(update={"shipping_address": address})
            conn.execute("UPDATE orders SET data = ? WHERE id = ?",
                         [changed.model_dump_json(), order_id])
            self.audit.record("address_changed", order_id,
                              {"from": order.shipping_address.model_dump(),
                               "to": address.model_dump()}, conversation_id)
        return changed

    def record_update(self, order_id: str, update: OrderUpdate
                      ) -> tuple[Order, list[Return]] | None:
        """Write what a shop's order event changes (status, dates, tracking, refunds), in
        one transaction; the bot's next answer reads it. Not audited: the audit log holds
        what the bot did, and this is the shop's own news."""
        with self.transaction() as conn:
            row = conn.execute("SELECT data FROM orders WHERE id = ?", [order_id]).fetchone()
            if row is None:
                return None
            returns = [Return.model_validate_json(r[0]) for r in conn.execute(
                "SELECT data FROM returns WHERE order_id = ? ORDER BY number", [order_id])]
            order, refunded = apply_update(Order.model_validate_json(row[0]), returns, update)
            conn.execute("UPDATE orders SET data = ? WHERE id = ?",
                         [order.model_dump_json(), order_id])
            for ret in refunded:
                conn.execute("UPDATE returns SET data = ? WHERE rma = ?",
                             [ret.model_dump_json(), ret.rma])
        return order, refunded


def _rma_number(rma: str) -> int:
    match = re.search(r"(\d+)$", rma)
    return int(match.group(1)) if match else 0
