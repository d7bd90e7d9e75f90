"""``shopchat train``: train the Rasa model when its inputs changed; remember the current one."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    #: False when the new model measured worse than the live one and was not activated.
    activated: bool = True
    accuracy: float | None = None
    live_accuracy: float | None = None
    reason: str | None = None


def _training_inputs(settings: Settings) -> list[Path]:
    root = settings.project_dir
    files = [root / "config.yml", root / "bot" / "domain.yml"]
    # The project's own pipeline components: a change to their code is a new model.
    files += sorted((root / "bot" / "nlu").glob("*.py"))
    for folder in RASA_DATA_DIRS:
        files += sorted(p for p in (root / folder).rglob("*") if p.suffix in {".yml", ".yaml"})
    return files


def training_fingerprint(settings: Settings) -> str:
    """Hash of everything Rasa trains from: config, domain, training data and the
    code of the project's NLU components (``bot/nlu/``)."""
    digest = hashlib.sha256()
    for path in _training_inputs(settings):
        digest.update(str(path.relative_to(settings.project_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _state(settings: Settings) -> dict[str, Any] | None:
    path = settings.models_path / CURRENT
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
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


def _heldout_accuracy(settings: Settings, model: Path) -> float:
    from shopchat.nlu_eval import evaluate

    heldout = settings.heldout_path if settings.heldout_path.is_absolute() else \
        settings.project_dir / settings.heldout_path
    return float(evaluate(settings, model, heldout)["accuracy"])


def _guard(settings: Settings, state: dict[str, Any] | None,
           model: Path) -> tuple[bool, float | None, float | None, str | None]:
    """(activate?, new accuracy, live accuracy, why not) for a freshly trained ``model``.

    The first model has nothing to compare with and goes live. Later ones are
    measured on the held-out set next to the live model (its figure is kept in
    ``current.json``), and refused if they lose more than ``max_accuracy_drop``.
    """
    heldout = settings.heldout_path if settings.heldout_path.is_absolute() else \
        settings.project_dir / settings.heldout_path
    live = settings.models_path / state["model"] if state else None
    if live is None or not live.exists() or not heldout.exists():
        return True, None, None, None
    live_accuracy = state.get("heldout_accuracy") if state else None
    if not isinstance(live_accuracy, int | float):
        live_accuracy = _heldout_accuracy(settings, live)
    accuracy = _heldout_accuracy(settings, model)
    if accuracy < live_accuracy - settings.max_accuracy_drop:
        return False, accuracy, live_accuracy, (
            f"held-out accuracy {accuracy:.4f} is more than {settings.max_accuracy_drop} below "
            f"the live model's {live_accuracy:.4f}; {live.name} stays live")
    return True, accuracy, live_accuracy, None


def train(settings: Settings, force: bool = False, guard: bool = True) -> TrainResult:
    """Train into ``models/`` unless config, domain and data are unchanged since the last run.

    With ``guard`` a new model goes live (``current.json``) only if it does not
    measure worse than the live one on the held-out set; otherwise it is kept
    on disk, recorded in ``rejected.json``, and the live model stays.
    """
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
    activate, accuracy, live_accuracy, reason = (
        _guard(settings, state, model) if guard else (True, None, None, None))
    if not activate:
        (settings.models_path / "rejected.json").write_text(json.dumps({
            "model": model.name, "fingerprint": fingerprint, "heldout_accuracy": accuracy,
            "live_accuracy": live_accuracy, "reason": reason}, indent=2) + "\n")
        return TrainResult(model, fingerprint, skipped=False, activated=False,
                           accuracy=accuracy, live_accuracy=live_accuracy, reason=reason)
    record: dict[str, Any] = {"model": model.name, "fingerprint": fingerprint}
    if accuracy is not None:
        record["heldout_accuracy"] = accuracy
    (settings.models_path / CURRENT).write_text(json.dumps(record, indent=2) + "\n")
    return TrainResult(model, fingerprint, skipped=False, accuracy=accuracy,
                       live_accuracy=live_accuracy)
