"""Everything the shop store can refuse, with messages a shopper may read."""

from __future__ import annotations

__all__ = ["NotAllowed", "OrderNotFound", "ShopUnavailable", "StoreError"]


class StoreError(Exception):
    """Base class: the store could not do what was asked."""


class OrderNotFound(StoreError):
    """No such order (never said to a shopper who has not proven the order is theirs)."""


class NotAllowed(StoreError):
    """The change breaks a rule (already shipped, outside the return window, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ShopUnavailable(StoreError):
    """The shop's backend (a remote API) did not answer."""
