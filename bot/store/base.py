"""The interface every shop backend implements: the built-in SQLite store, or a real shop's API.

Actions depend on :class:`ShopStore` only. Reads return ``None`` or an empty list
for what does not exist; writes raise :class:`~bot.store.errors.NotAllowed` when a
rule forbids them and record an :class:`~bot.store.models.AuditEntry` when they
succeed (the audit log is always local SQLite, whatever the backend).
"""

from __future__ import annotations

from typing import Protocol

from bot.store.models import Address, AuditEntry, Customer, Order, Product, Return, ReturnLine
from bot.store.updates import OrderUpdate

__all__ = ["ShopStore"]


class ShopStore(Protocol):
    def get_customer(self, customer_id: str) -> Customer | None: ...

    def get_order(self, order_id: str) -> Order | None:
        """``order_id`` in canonical form (``SC-100482``)."""

    def orders_for_customer(self, customer_id: str, limit: int = 5) -> list[Order]:
        """Newest first."""

    def get_product(self, sku: str) -> Product | None:
        """By product SKU or by one of its variants' SKUs."""

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        """Products whose name best matches words in ``text``, best first."""

    def list_products(self) -> list[Product]: ...

    def returns_for_order(self, order_id: str) -> list[Return]: ...

    def get_return(self, rma: str) -> Return | None: ...

    def create_return(self, order_id: str, lines: list[ReturnLine], reason: str,
                      conversation_id: str | None) -> Return: ...

    def cancel_order(self, order_id: str, conversation_id: str | None) -> Order: ...

    def change_address(self, order_id: str, address: Address,
                       conversation_id: str | None) -> Order: ...

    def audit_log(self, conversation_id: str | None = None) -> list[AuditEntry]: ...

    def record_update(self, order_id: str, update: OrderUpdate
                      ) -> tuple[Order, list[Return]] | None:
        """A shop reported an event of the order (shipped, delayed, ...): the order as the
        bot now reads it and the returns refunded by it; None for an unknown order. The
        built-in store writes the change; a shop's API already holds it, and is read."""
