"""Real PostgreSQL 15 and Redis servers for the scale-out tests, once per session
(tests/scaleout/servers.py): each on a free loopback port with its data in a temporary
directory, stopped by PID at the end. When a server's binaries are missing the tests
that need it fail (never skip) and say what to install: CI (`.ci/run`) installs both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest

from tests.scaleout.servers import (
    Postgres,
    Redis,
    ServerMissing,
    running_postgres,
    running_redis,
)

T = TypeVar("T")


def _required(start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    try:
        with start() as server:
            yield server
    except ServerMissing as missing:
        pytest.fail(f"the scaleout tests need a real server: {missing}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    yield from _required(running_postgres)


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    yield from _required(running_redis)
