"""`shopchat train` decides from a fingerprint of its inputs whether to train again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR, Settings
from shopchat.exceptions import ShopchatError
from shopchat.training import current_model, train, training_fingerprint


@pytest.fixture
def project(tmp_path: Path) -> Settings:
    """A copy of the training inputs in a temporary project directory."""
    shutil.copy(PROJECT_DIR / "config.yml", tmp_path / "config.yml")
    (tmp_path / "bot").mkdir()
    shutil.copy(PROJECT_DIR / "bot" / "domain.yml", tmp_path / "bot" / "domain.yml")
    shutil.copytree(PROJECT_DIR / "data", tmp_path / "data")
    shutil.copytree(PROJECT_DIR / "bot" / "nlu", tmp_path / "bot" / "nlu",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return Settings(project_dir=tmp_path)


def test_fingerprint_changes_with_training_data_only(project: Settings) -> None:
    before = training_fingerprint(project)
    (project.project_dir / "README.md").write_text("not a training input")
    assert training_fingerprint(project) == before
    nlu = project.project_dir / "data" / "nlu" / "chitchat.yml"
    nlu.write_text(nlu.read_text() + "\n")
    assert training_fingerprint(project) != before


def test_fingerprint_changes_with_the_pipeline_components_code(project: Settings) -> None:
    before = training_fingerprint(project)
    classifier = project.project_dir / "bot" / "nlu" / "classifier.py"
    classifier.write_text(classifier.read_text() + "\n# a change\n")
    assert training_fingerprint(project) != before


def test_unchanged_inputs_skip_training(project: Settings) -> None:
    models = project.models_path
    models.mkdir()
    (models / "shopchat-old.tar.gz").write_bytes(b"model")
    (models / "current.json").write_text(json.dumps(
        {"model": "shopchat-old.tar.gz", "fingerprint": training_fingerprint(project)}))
    result = train(project)  # would fail loudly if it ran Rasa: no .venv-rasa in tmp
    assert result.skipped and result.model == models / "shopchat-old.tar.gz"
    assert current_model(project) == result.model


def test_no_model_yet_says_how_to_get_one(project: Settings) -> None:
    with pytest.raises(ShopchatError, match="shopchat train"):
        current_model(project)
