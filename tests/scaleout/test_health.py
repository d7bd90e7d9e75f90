"""/healthz on a gateway configured for shared servers reports PostgreSQL and Redis, against
real ones: both up is healthy; a Redis that does not answer makes the gateway report 503
and say which, without its address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from shopchat.stack import free_port
from tests.scaleout.servers import Postgres, Redis

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]


async def healthz(http: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{http}/healthz") as response:
        return response.status, await response.json()


async def test_healthz_reports_postgres_and_redis(
    scripted_gateway_with: Callable[..., Any], postgres: Postgres, redis: Redis,
) -> None:
    shared = {"database_url": SecretStr(postgres.url), "redis_url": SecretStr(redis.url)}
    async with scripted_gateway_with(**shared) as gateway:
        status, body = await healthz(gateway.http)
        assert status == 200, body
        assert body["dependencies"]["postgres"] == {"ok": True}
        assert body["dependencies"]["redis"] == {"ok": True}
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with scripted_gateway_with(**{**shared, "redis_url": SecretStr(nobody)}) as gateway:
        status, body = await healthz(gateway.http)
        assert status == 503 and body["ok"] is False
        assert body["dependencies"]["postgres"]["ok"] is True
        assert body["dependencies"]["redis"]["ok"] is False
        assert "127.0.0.1" not in str(body)
    async with scripted_gateway_with() as gateway:  # not configured: not checked
        status, body = await healthz(gateway.http)
        assert status == 200 and "postgres" not in body["dependencies"]
