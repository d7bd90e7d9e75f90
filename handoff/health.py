"""Whether the shared servers a scaled-out shop runs on answer (``/healthz``): PostgreSQL
(``SHOPCHAT_DATABASE_URL``, where Rasa keeps its trackers) and Redis
(``SHOPCHAT_REDIS_URL``, its conversation locks). Each check has its own short timeout and
reports what failed, never the address or a password."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["CHECK_TIMEOUT", "postgres_health", "redis_health"]

#: Seconds each check may take before the server counts as down.
CHECK_TIMEOUT = 2.0


async def postgres_health(url: str, timeout: float = CHECK_TIMEOUT) -> dict[str, Any]:
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
        try:
            await conn.fetchval("SELECT 1", timeout=timeout)
        finally:
            await conn.close(timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return {"ok": False, "detail": f"not reachable ({type(error).__name__})"}
    return {"ok": True}


async def redis_health(url: str, timeout: float = CHECK_TIMEOUT) -> dict[str, Any]:
    client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except (OSError, TimeoutError, RedisError) as error:
        return {"ok": False, "detail": f"not reachable ({type(error).__name__})"}
    finally:
        await client.aclose()
    return {"ok": True}
