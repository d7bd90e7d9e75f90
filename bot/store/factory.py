"""Open the shop store the settings ask for: the built-in SQLite file or a shop's API."""

from __future__ import annotations

from bot.settings import Settings
from bot.store.base import ShopStore
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop

__all__ = ["open_store"]


def open_store(settings: Settings) -> ShopStore:
    window = ReturnWindow(settings.return_window_days, settings.member_return_window_days)
    if settings.shop_backend == "http":
        from bot.store.http import HttpShop

        if not settings.shop_api_url:
            raise ValueError("shop_backend is \"http\" but shop_api_url is not set "
                             "(SHOPCHAT_SHOP_API_URL).")
        token = settings.shop_api_token.get_secret_value() if settings.shop_api_token else None
        return HttpShop(settings.shop_api_url, token, settings.shop_api_timeout,
                        settings.shop_db, window=window)
    return SQLiteShop(settings.shop_db, window=window)
