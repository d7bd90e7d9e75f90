"""A shop's own REST API as the store (docs/shop-api.md): for Shopify, WooCommerce & co.

The shop's system stays the source of truth; this adapter only translates. The
shop's rules are still checked here before any write (a buggy or permissive
API must not let the bot cancel a shipped order), and every successful write
is appended to the local audit log.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from bot.store.audit import AuditLog
from bot.store.errors import NotAllowed, OrderNotFound, ShopUnavailable
from bot.store.models import Address, AuditEntry, Customer, Order, Product, Return, ReturnLine
from bot.store.policy import ReturnWindow, check_change, check_return
from bot.store.sqlite import now_utc
from bot.store.updates import OrderUpdate

__all__ = ["HttpShop"]


class HttpShop:
    """:class:`~bot.store.base.ShopStore` over HTTP+JSON, with a local SQLite audit log."""

    def __init__(self, base_url: str, token: str | None, timeout: float, audit_path: Path,
                 *, window: ReturnWindow) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.window = window
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"
        audit_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(audit_path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self.audit = AuditLog(self._conn)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()
        self._conn.close()

    # -- transport ------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """JSON from the API; None for 404. Refusals and outages become store errors."""
        try:
            response = self.session.request(method, self.base_url + path, json=body,
                                            timeout=self.timeout)
        except requests.RequestException as error:
            raise ShopUnavailable(f"{method} {path}: {error.__class__.__name__}") from error
        if response.status_code == 404:
            return None
        if response.status_code in (409, 422):
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            raise NotAllowed(str(problem.get("code", "refused")),
                             str(problem.get("message", "The shop refused that change.")))
        if response.status_code in (401, 403):
            raise ShopUnavailable(f"{method} {path}: the shop API refused our token "
                                  f"({response.status_code}); check SHOPCHAT_SHOP_API_TOKEN")
        if response.status_code >= 400:
            raise ShopUnavailable(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise ShopUnavailable(f"{method} {path}: not JSON") from error

    def _get(self, path: str) -> Any:
        return self._call("GET", path)

    # -- reads ----------------------------------------------------------------

    def get_customer(self, customer_id: str) -> Customer | None:
        data = self._get(f"/customers/{quote(customer_id, safe='')}")
        return None if data is None else Customer.model_validate(data)

    def get_order(self, order_id: str) -> Order | None:
        data = self._get(f"/orders/{quote(order_id, safe='')}")
        return None if data is None else Order.model_validate(data)

    def orders_for_customer(self, customer_id: str, limit: int = 5) -> list[Order]:
        data = self._get(f"/customers/{quote(customer_id, safe='')}/orders?limit={limit}")
        return [Order.model_validate(item) for item in data or []]

    def get_product(self, sku: str) -> Product | None:
        data = self._get(f"/products/{quote(sku.strip(), safe='')}")
        return None if data is None else Product.model_validate(data)

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        data = self._call("GET", f"/products?q={quote(text)}&limit={limit}")
        return [Product.model_validate(item) for item in data or []]

    def list_products(self) -> list[Product]:
        return [Product.model_validate(item) for item in self._get("/products") or []]

    def returns_for_order(self, order_id: str) -> list[Return]:
        data = self._get(f"/orders/{quote(order_id, safe='')}/returns")
        return [Return.model_validate(item) for item in data or []]

    def get_return(self, rma: str) -> Return | None:
        data = self._get(f"/returns/{quote(rma, safe='')}")
        return None if data is None else Return.model_validate(data)

    def audit_log(self, conversation_id: str | None = None) -> list[AuditEntry]:
        with self._lock:
            return self.audit.entries(conversation_id)

    def record_update(self, order_id: str, update: OrderUpdate
                      ) -> tuple[Order, list[Return]] | None:
        """The shop's API is the truth and sent the event after changing the order: read
        it back (nothing is kept here; every answer of the bot asks the API afresh)."""
        order = self.get_order(order_id)
        if order is None:
            return None
        refunded = [ret for ret in self.returns_for_order(order_id)
                    if update.type == "refund_issued" and ret.refund_status == "issued"
                    and (update.rma is None or ret.rma == update.rma)]
        return order, refunded

    # -- writes -----------------------------------------------------------------

    def _existing(self, order_id: str) -> Order:
        order = self.get_order(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def _audit(self, action: str, target: str, detail: dict[str, Any],
               conversation_id: str | None) -> None:
        with self._lock:
            self.audit.record(action, target, detail, conversation_id)

    def create_return(self, order_id: str, lines: list[ReturnLine], reason: str,
                      conversation_id: str | None) -> Return:
        order = self._existing(order_id)
        customer = self.get_customer(order.customer_id)
        check_return(order, self.returns_for_order(order_id), lines, now=now_utc(),
                     window=self.window, member=bool(customer and customer.member))
        data = self._call("POST", f"/orders/{quote(order_id, safe='')}/returns",
                          {"lines": [line.model_dump() for line in lines], "reason": reason})
        created = Return.model_validate(data)
        self._audit("return_created", created.rma,
                    {"order_id": order_id, "lines": [i.model_dump() for i in lines],
                     "reason": reason, "refund_amount": created.refund_amount}, conversation_id)
        return created

    def cancel_order(self, order_id: str, conversation_id: str | None) -> Order:
        order = self._existing(order_id)
        check_change(order, "cancel it")
        cancelled = Order.model_validate(
            self._call("POST", f"/orders/{quote(order_id, safe='')}/cancel", {}))
        self._audit("order_cancelled", order_id,
                    {"previous_status": order.status, "refund": order.total}, conversation_id)
        return cancelled

    def change_address(self, order_id: str, address: Address,
                       conversation_id: str | None) -> Order:
        order = self._existing(order_id)
        check_change(order, "change its delivery address")
        changed = Order.model_validate(self._call(
            "PUT", f"/orders/{quote(order_id, safe='')}/shipping_address", address.model_dump()))
        self._audit("address_changed", order_id,
                    {"from": order.shipping_address.model_dump(), "to": address.model_dump()},
                    conversation_id)
        return changed
