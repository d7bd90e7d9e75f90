"""Where Rasa lives (its own Python 3.10 venv) and how to run it quietly and offline."""

from __future__ import annotations

import os
from pathlib import Path

import bot
from bot.settings import Settings
from shopchat.exceptions import ShopchatError

__all__ = ["RASA_DATA_DIRS", "rasa_env", "rasa_executable", "rasa_python"]

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
