"""Errors the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

__all__ = ["ShopchatError"]


class ShopchatError(Exception):
    """Something a person must fix; the message says what to do."""
