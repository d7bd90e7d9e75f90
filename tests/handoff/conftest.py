"""Gateways with desk settings for a test, talking to the session stack's Rasa."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.settings import Settings
from tests.conftest import Gateway


@pytest.fixture
def make_gateway(gateway_settings: Settings) -> Callable[..., Any]:
    """Start an in-process gateway with desk settings for the test: ``async with make(...)``."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Gateway]:
        settings = gateway_settings.model_copy(update={"presence_grace": 0.2, **overrides})
        gateway = Gateway(settings)
        await gateway.start()
        try:
            yield gateway
        finally:
            await gateway.stop()

    return make
