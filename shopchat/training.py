"""``shopchat train``: train the Rasa model when its inputs changed; remember the current one."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings
from shopchat.exceptions import ShopchatError
from shopchat.rasa_env import RASA_DATA_DIRS, rasa_env, rasa_executable

__all__ = ["TrainResult", "current_model", "train", "training_fingerprint"]

CURRENT = "current.json"


@dataclass(frozen=True)
class TrainResult:
    model: Path
    fingerprint: str
    skipped: bool


def _training_inputs(settings: Settings) -> list[Path]:
    root = settings.project_dir
    files = [root / "config.yml", root / "bot" / "domain.yml"]
    for folder in RASA_DATA_DIRS:
        files += sorted(p for p in (root / folder).rglob("*") if p.suffix in {".yml", ".yaml"})
    return files


def training_fingerprint(settings: Settings) -> str:
    """Hash of everything Rasa trains from: config, domain and training data."""
    digest = hashlib.sha256()
    for path in _training_inputs(settings):
        digest.update(str(path.relative_to(settings.project_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _state(settings: Settings) -> dict[str, str] | None:
    path = settings.models_path / CURRENT
    if not path.exists():
        return None
    state: dict[str, str] = json.loads(path.read_text())
    return state


def current_model(settings: Settings) -> Path:
    """The model archive to serve: ``settings.model`` or the last one trained."""
    if settings.model is not None:
        model = settings.model
    else:
        state = _state(settings)
        if state is None:
            raise ShopchatError("No trained model yet. Run `shopchat train` (or `make run`).")
        model = settings.models_path / state["model"]
    if not model.exists():
        raise ShopchatError(f"Model {model} is missing. Run `shopchat train --force`.")
    return model


def train(settings: Settings, force: bool = False) -> TrainResult:
    """Train into ``models/`` unless config, domain and data are unchanged since the last run."""
    fingerprint = training_fingerprint(settings)
    state = _state(settings)
    if not force and state is not None and state.get("fingerprint") == fingerprint:
        model = settings.models_path / state["model"]
        if model.exists():
            return TrainResult(model, fingerprint, skipped=True)
    settings.models_path.mkdir(parents=True, exist_ok=True)
    name = f"shopchat-{fingerprint[:12]}"
    root = settings.project_dir
    command = [
        str(rasa_executable(settings)), "train",
        "--config", str(root / "config.yml"),
        "--domain", str(root / "bot" / "domain.yml"),
        "--data", *(str(root / d) for d in RASA_DATA_DIRS),
        "--out", str(settings.models_path),
        "--fixed-model-name", name,
        "--force",
    ]
    completed = subprocess.run(command, cwd=root, env=rasa_env(settings), check=False)
    model = settings.models_path / f"{name}.tar.gz"
    if completed.returncode != 0 or not model.exists():
        raise ShopchatError(
            f"Rasa training failed (exit {completed.returncode}); its output above says why."
        )
    (settings.models_path / CURRENT).write_text(
        json.dumps({"model": model.name, "fingerprint": fingerprint}, indent=2) + "\n"
    )
    return TrainResult(model, fingerprint, skipped=False)
