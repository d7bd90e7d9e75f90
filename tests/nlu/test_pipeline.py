"""The NLU pipeline of config.yml, trained for real by Rasa in its own venv.

A small subset of the project's own training data (a few examples per intent)
keeps it to well under a minute; what it checks holds for the full data too:
the components load in `.venv-rasa`, entities are still extracted, confidences
form a distribution, and training twice gives the same predictions.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.settings import PROJECT_DIR, Settings
from shopchat.rasa_env import rasa_env, rasa_executable, rasa_python

pytestmark = pytest.mark.slow

PER_INTENT = 8
TEXTS = [
    "where is my order SC-100482?",
    "my email is anna.berg@example.com",
    "I want to send the jacket back",
    "let me talk to a human",
    "this is hopeless, nothing works",
    "what's the capital of Peru",
    "do you ship to Canada",
    "hello there",
]


def _annotated(texts: list[str], per_entity: int = 3) -> list[str]:
    return [t for entity in ("order_id", "email") for t in
            [t for t in texts if f"]({entity})" in t][:per_entity]]


def _subset(out: Path) -> Path:
    """The first PER_INTENT examples of every intent, a few with annotated entities
    (the regex extractor uses only the regexes of entities the data annotates),
    and the entity regexes."""
    yaml = YAML(typ="safe")
    examples: dict[str, list[str]] = defaultdict(list)
    regexes = []
    for path in sorted((PROJECT_DIR / "data" / "nlu").glob("*.yml")):
        for item in yaml.load(path).get("nlu") or []:
            if "regex" in item:
                regexes.append(item)
            elif "intent" in item:
                lines = [line[2:] for line in item["examples"].splitlines()
                         if line.startswith("- ")]
                examples[item["intent"]].extend(lines)
    nlu: list[dict[str, Any]] = [
        {"intent": intent, "examples": "".join(
            f"- {t}\n" for t in dict.fromkeys(texts[:PER_INTENT] + _annotated(texts)))}
        for intent, texts in sorted(examples.items())
    ]
    target = out / "nlu.yml"
    with target.open("w", encoding="utf-8") as handle:
        YAML().dump({"version": "3.1", "nlu": nlu + regexes}, handle)
    return target


def _train(settings: Settings, data: Path, out: Path, name: str) -> Path:
    completed = subprocess.run(
        [str(rasa_executable(settings)), "train", "nlu", "--config", "config.yml",
         "--nlu", str(data), "--out", str(out), "--fixed-model-name", name],
        cwd=PROJECT_DIR, env=rasa_env(settings), capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out / f"{name}.tar.gz"


def _parse(settings: Settings, model: Path, tmp: Path) -> list[dict[str, Any]]:
    texts, out = tmp / f"{model.stem}.texts.json", tmp / f"{model.stem}.parsed.json"
    texts.write_text(json.dumps(TEXTS), encoding="utf-8")
    subprocess.run(
        [str(rasa_python(settings)), str(PROJECT_DIR / "bot" / "rasa_parse.py"),
         "--model", str(model), "--texts", str(texts), "--out", str(out)],
        cwd=PROJECT_DIR, env=rasa_env(settings), check=True, capture_output=True, timeout=300,
    )
    parsed: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return parsed


@pytest.fixture(scope="module")
def two_trainings(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[Any]]:
    tmp = tmp_path_factory.mktemp("nlu-pipeline")
    settings = Settings(var_dir=tmp / "var")
    data = _subset(tmp)
    first = _parse(settings, _train(settings, data, tmp, "first"), tmp)
    second = _parse(settings, _train(settings, data, tmp, "second"), tmp)
    return first, second


def test_training_the_same_data_twice_gives_identical_predictions(
    two_trainings: tuple[list[Any], list[Any]],
) -> None:
    first, second = two_trainings
    assert [p["intent"] for p in first] == [p["intent"] for p in second]
    for a, b in zip(first, second, strict=True):
        assert [r["name"] for r in a["ranking"]] == [r["name"] for r in b["ranking"]]
        assert [round(r["confidence"], 6) for r in a["ranking"]] == \
            [round(r["confidence"], 6) for r in b["ranking"]]


def test_entities_are_extracted_and_confidences_are_a_distribution(
    two_trainings: tuple[list[Any], list[Any]],
) -> None:
    parsed = dict(zip(TEXTS, two_trainings[0], strict=True))
    assert {"entity": "order_id", "value": "SC-100482"} in parsed[TEXTS[0]]["entities"]
    assert {"entity": "email", "value": "anna.berg@example.com"} in parsed[TEXTS[1]]["entities"]
    for result in parsed.values():
        # nlu_fallback, when it wins, is put on top with the threshold as its confidence.
        confidences = [r["confidence"] for r in result["ranking"] if r["name"] != "nlu_fallback"]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences) and sum(confidences) <= 1.0 + 1e-6
