"""Gateways with desk settings for a test, talking to the session stack's Rasa."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def make_gateway(gateway_with: Callable[..., Any]) -> Callable[..., Any]:
    """``gateway_with`` with a short presence grace, so desk timers run in test time."""
    return lambda **overrides: gateway_with(**{"presence_grace": 0.2, **overrides})
