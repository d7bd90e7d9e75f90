"""Where Rasa lives (its own Python 3.10 venv) and how to run it quietly and offline."""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import bot
from bot.settings import Settings
from shopchat.exceptions import ShopchatError

__all__ = ["RASA_DATA_DIRS", "endpoints_file", "rasa_env", "rasa_executable", "rasa_python",
           "shared_storage_env"]

#: Training data folders, relative to the project (data/kb/ is not Rasa's).
RASA_DATA_DIRS = ("data/nlu", "data/rules", "data/stories")


def _venv_bin(settings: Settings, name: str) -> Path:
    path = settings.project_dir / ".venv-rasa" / "bin" / name
    if not path.exists():
        raise ShopchatError(
            f"{path} is missing: Rasa's Python 3.10 environment is not set up. Run `make`."
        )
    return path


def rasa_executable(settings: Settings) -> Path:
    return _venv_bin(settings, "rasa")


def rasa_python(settings: Settings) -> Path:
    return _venv_bin(settings, "python")


def rasa_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a Rasa process: no telemetry, no downloads, quiet TensorFlow."""
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore",
            # Rasa writes a .rasa/ cache into the working directory; keep it in var/.
            "RASA_CACHE_DIRECTORY": str(settings.var_path / "rasa-cache"),
        }
    )
    # config.yml names our own components (bot.nlu.*): Rasa must import them from
    # this code, whatever project directory it trains or runs in.
    code = str(Path(bot.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def endpoints_file(settings: Settings) -> Path:
    """The endpoints Rasa runs with: ``bot/endpoints.yml`` (SQLite in var/, the default) or,
    with database_url and redis_url set, ``bot/endpoints-scaleout.yml`` (Postgres + Redis)."""
    name = "endpoints.yml" if settings.database_url is None else "endpoints-scaleout.yml"
    return settings.project_dir / "bot" / name


def shared_storage_env(settings: Settings) -> dict[str, str]:
    """What ``bot/endpoints-scaleout.yml`` and Rasa read from the environment: the
    tracker store's URL, the lock store's address, the pool sizes, the lock lifetime.
    Empty when the stack keeps Rasa on SQLite."""
    if settings.database_url is None or settings.redis_url is None:
        return {}
    database = urlsplit(settings.database_url.get_secret_value())
    # SQLAlchemy 1.4 (Rasa's) knows only postgresql://; psycopg2 is Rasa's own driver.
    tracker_url = urlunsplit(("postgresql", *database[1:]))
    redis = urlsplit(settings.redis_url.get_secret_value())
    return {
        "SHOPCHAT_TRACKER_URL": tracker_url,
        "SHOPCHAT_LOCK_HOST": redis.hostname or "127.0.0.1",
        "SHOPCHAT_LOCK_PORT": str(redis.port or 6379),
        "SHOPCHAT_LOCK_DB": redis.path.strip("/") or "0",
        "SHOPCHAT_LOCK_USERNAME": unquote(redis.username or ""),
        "SHOPCHAT_LOCK_PASSWORD": unquote(redis.password or ""),
        # Rasa's defaults (50 + 100 per server) would let two servers exhaust
        # Postgres' 100 connections; a server uses one at a time (its store is synchronous).
        "SQL_POOL_SIZE": str(settings.rasa_sql_pool_size),
        "SQL_MAX_OVERFLOW": str(settings.rasa_sql_max_overflow),
        # A server killed during a turn leaves its conversation's lock in Redis until this
        # runs out (Rasa's default: 60 s); the gateway gives a turn up after rasa_timeout.
        "TICKET_LOCK_LIFETIME": str(math.ceil(settings.rasa_timeout)),
    }
