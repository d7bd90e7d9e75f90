"""A new model goes live only if it is not worse, and switching models loses no message."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.settings import PROJECT_DIR, Settings
from shopchat.rasa_env import RASA_DATA_DIRS
from shopchat.stack import StackHandle, activate_model
from shopchat.training import train
from tests.conftest import is_bot_message


def test_a_damaging_training_change_is_refused_and_the_live_model_stays(
    trained_model: Path, tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".venv-rasa").symlink_to(PROJECT_DIR / ".venv-rasa")
    for folder in RASA_DATA_DIRS:
        shutil.copytree(PROJECT_DIR / folder, project / folder)
    (project / "bot").mkdir()
    shutil.copy(PROJECT_DIR / "bot" / "domain.yml", project / "bot" / "domain.yml")
    (project / "tests" / "data").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "tests" / "data" / "heldout_intents.csv",
                project / "tests" / "data" / "heldout_intents.csv")
    # The damage: one epoch of training instead of a hundred.
    config = (PROJECT_DIR / "config.yml").read_text()
    (project / "config.yml").write_text(re.sub(r"epochs: \d+", "epochs: 1", config))
    models = tmp_path / "models"
    models.mkdir()
    (models / trained_model.name).symlink_to(trained_model)
    live = {"model": trained_model.name, "fingerprint": "the live one"}
    (models / "current.json").write_text(json.dumps(live))
    settings = Settings(project_dir=project, models_dir=models, var_dir=tmp_path / "var")

    result = train(settings)

    assert not result.activated and result.accuracy is not None
    assert result.live_accuracy is not None and result.live_accuracy >= 0.85
    assert result.accuracy < result.live_accuracy - settings.max_accuracy_drop
    assert f"{trained_model.name} stays live" in (result.reason or "")
    assert json.loads((models / "current.json").read_text()) == live
    rejected = json.loads((models / "rejected.json").read_text())
    assert rejected["model"] == result.model.name and rejected["reason"] == result.reason


@pytest.mark.stack
async def test_switching_the_live_model_loses_no_message(
    chat: Any, stack: StackHandle, trained_model: Path,
) -> None:
    async with chat() as client:
        await client.hello()
        await client.turn("hi")
        switch = threading.Thread(target=activate_model, args=(
            stack.settings.rasa_url, "test-token", trained_model))
        switch.start()
        sent = []
        for n in range(5):
            sent.append(await client.say(f"hello number {n}"))
            await asyncio.sleep(0.5)
        await asyncio.to_thread(switch.join, 300)
        answered: set[int] = set()
        acked: dict[str, int] = {}
        while len(answered) < len(sent):
            frame = await client.recv(timeout=120)
            if frame["type"] == "ack":
                acked[frame["client_id"]] = frame["seq"]
            elif is_bot_message(frame):
                answered.add(frame["reply_to"])
    assert set(acked) == set(sent)
    assert answered == set(acked.values())
