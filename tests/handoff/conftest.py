"""Gateways with desk settings for a test: on the session stack's Rasa, or on the
scripted stand-in for it (the fast tier)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def make_gateway(gateway_with: Callable[..., Any]) -> Callable[..., Any]:
    """``gateway_with`` with a short presence grace, so desk timers run in test time."""
    return lambda **overrides: gateway_with(**{"presence_grace": 0.2, **overrides})


@pytest.fixture
def make_scripted_gateway(scripted_gateway_with: Callable[..., Any]) -> Callable[..., Any]:
    """``scripted_gateway_with`` with a short presence grace, so desk timers run in test
    time; its assistant is tests/scripted_bot.py, not Rasa."""
    return lambda **overrides: scripted_gateway_with(**{"presence_grace": 0.2, **overrides})
