"""A demo shop in a temporary SQLite file, loaded at a fixed moment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from bot.store.demo import load_demo
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WINDOW = ReturnWindow(30, 60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteShop]:
    shop = SQLiteShop(tmp_path / "shop.db", window=WINDOW, clock=lambda: NOW)
    load_demo(shop, PROJECT_DIR / "data" / "shop", NOW)
    yield shop
    shop.close()
