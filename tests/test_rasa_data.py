"""Rasa's own check of the domain, rules, stories and NLU data."""

from __future__ import annotations

import subprocess

import pytest

from bot.settings import PROJECT_DIR, Settings
from shopchat.rasa_env import RASA_DATA_DIRS, rasa_env, rasa_executable


@pytest.mark.slow
def test_rasa_data_validate_passes() -> None:
    settings = Settings()
    completed = subprocess.run(
        [str(rasa_executable(settings)), "data", "validate", "--fail-on-warnings",
         "--config", "config.yml", "--domain", "bot/domain.yml", "--data", *RASA_DATA_DIRS],
        cwd=PROJECT_DIR, env=rasa_env(settings), capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
