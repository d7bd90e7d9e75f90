"""``shopchat eval nlu``: score the trained model on a labelled CSV of shopper messages."""

from __future__ import annotations

import csv
import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bot
from bot.intents import CANONICAL_INTENTS, FALLBACK_INTENT, to_canonical
from bot.nlu.calibration import expected_calibration_error, overconfident_error_rate
from bot.settings import Settings
from shopchat.exceptions import ShopchatError
from shopchat.rasa_env import rasa_env, rasa_python

__all__ = [
    "Example",
    "Prediction",
    "calibration_figures",
    "evaluate",
    "parse_texts",
    "read_examples",
    "score",
    "sweep_thresholds",
]


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


@dataclass(frozen=True)
class Prediction:
    rasa_intent: str | None
    confidence: float
    #: The classifier's ranking (name, confidence), best first, without ``nlu_fallback``.
    ranking: tuple[tuple[str, float], ...] = ()

    @property
    def intent(self) -> str:
        """The canonical label: ``nlu_fallback`` (under the threshold) reads as out_of_scope."""
        return to_canonical(self.rasa_intent)

    @property
    def classifier_intent(self) -> str:
        """The classifier's own best reading (canonical), before the fallback threshold."""
        return to_canonical(self.ranking[0][0]) if self.ranking else self.intent

    @property
    def classifier_confidence(self) -> float:
        return self.ranking[0][1] if self.ranking else self.confidence

    def with_thresholds(self, threshold: float, ambiguity: float) -> str:
        """The canonical label under other fallback thresholds (as FallbackClassifier decides)."""
        if not self.ranking:
            return self.intent
        top = self.ranking[0][1]
        second = self.ranking[1][1] if len(self.ranking) > 1 else 0.0
        if top < threshold or top - second < ambiguity:
            return "out_of_scope"
        return self.classifier_intent


def read_examples(path: Path) -> list[Example]:
    """Read a ``text,intent`` CSV (extra columns are ignored), checking every label."""
    if not path.is_file():
        raise ShopchatError(f"{path}: no such file.")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "intent"} - set(reader.fieldnames or [])
        if missing:
            raise ShopchatError(
                f"{path}: the header must have columns text,intent (missing: "
                f"{', '.join(sorted(missing))})."
            )
        examples = []
        for line, row in enumerate(reader, start=2):
            text, intent = (row["text"] or "").strip(), (row["intent"] or "").strip()
            if not text:
                raise ShopchatError(f"{path}:{line}: empty text.")
            if intent not in CANONICAL_INTENTS:
                raise ShopchatError(
                    f"{path}:{line}: unknown intent {intent!r}; use one of: "
                    f"{', '.join(CANONICAL_INTENTS)}."
                )
            examples.append(Example(text, intent))
    if not examples:
        raise ShopchatError(f"{path}: no rows to evaluate.")
    return examples


def parse_texts(settings: Settings, model: Path, texts: Sequence[str]) -> list[Prediction]:
    """Run the Rasa model over ``texts`` (in Rasa's own venv) and return its predictions."""
    # The script is code, not project data: it lives next to the installed bot package.
    script = Path(bot.__file__).resolve().parent / "rasa_parse.py"
    with tempfile.TemporaryDirectory(prefix="shopchat-eval-") as tmp:
        inp, out = Path(tmp) / "texts.json", Path(tmp) / "parsed.json"
        inp.write_text(json.dumps(list(texts)), encoding="utf-8")
        completed = subprocess.run(
            [str(rasa_python(settings)), str(script), "--model", str(model),
             "--texts", str(inp), "--out", str(out)],
            cwd=settings.project_dir, env=rasa_env(settings), capture_output=True, text=True,
            check=False,
        )
        if completed.returncode != 0 or not out.exists():
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            raise ShopchatError(f"Parsing with {model.name} failed:\n{tail}")
        parsed = json.loads(out.read_text(encoding="utf-8"))
    return [
        Prediction(p["intent"], p["confidence"], tuple(
            (r["name"], r["confidence"]) for r in p.get("ranking", [])
            if r["name"] != FALLBACK_INTENT))
        for p in parsed
    ]


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the labels present in ``gold``, and a per-intent breakdown."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    n = len(gold)
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    support = Counter(gold)
    predicted_count = Counter(predicted)
    hits = Counter(g for g, p in zip(gold, predicted, strict=True) if g == p)
    per_intent: dict[str, dict[str, Any]] = {}
    for label in sorted(support):
        precision = hits[label] / predicted_count[label] if predicted_count[label] else 0.0
        recall = hits[label] / support[label]
        per_intent[label] = {
            "support": support[label],
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(_f1(precision, recall), 4),
        }
    confusions = Counter(
        (g, p) for g, p in zip(gold, predicted, strict=True) if g != p
    ).most_common(10)
    return {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(v["f1"] for v in per_intent.values()) / len(per_intent), 4)
        if per_intent else 0.0,
        "per_intent": per_intent,
        "top_confusions": [
            {"gold": g, "predicted": p, "count": c} for (g, p), c in confusions
        ],
    }


def calibration_figures(gold: Sequence[str], predictions: Sequence[Prediction]
                        ) -> dict[str, Any]:
    """How far the classifier's confidence can be trusted, before any fallback threshold.

    ``ece``: expected calibration error (10 bins); ``confident_wrong``: share of
    all messages read wrongly at confidence >= 0.9 (no threshold can catch those).
    """
    confidences = [p.classifier_confidence for p in predictions]
    correct = [g == p.classifier_intent for g, p in zip(gold, predictions, strict=True)]
    return {
        "classifier_accuracy": round(sum(correct) / len(correct), 4) if correct else 0.0,
        "ece": round(expected_calibration_error(confidences, correct), 4),
        "confident_wrong": round(overconfident_error_rate(confidences, correct, 0.9), 4),
    }


SWEEP_THRESHOLDS = tuple(step / 20 for step in range(2, 19))


def sweep_thresholds(gold: Sequence[str], predictions: Sequence[Prediction],
                     thresholds: Sequence[float] = SWEEP_THRESHOLDS,
                     ambiguities: Sequence[float] = (0.0, 0.02, 0.05, 0.1, 0.15),
                     ) -> list[dict[str, float]]:
    """Accuracy under each pair of fallback thresholds (below ``threshold`` or within
    ``ambiguity`` of the runner-up, a message reads as out_of_scope), best first.

    Run it on a calibration set, never on the sets the model is judged on.
    """
    rows = []
    for threshold in thresholds:
        for ambiguity in ambiguities:
            hits = sum(g == p.with_thresholds(threshold, ambiguity)
                       for g, p in zip(gold, predictions, strict=True))
            rows.append({"threshold": threshold, "ambiguity_threshold": ambiguity,
                         "accuracy": round(hits / len(gold), 4) if gold else 0.0})
    # Ties: prefer the lower threshold and the smaller ambiguity gap (fewer fallbacks).
    rows.sort(key=lambda r: (-r["accuracy"], r["threshold"], r["ambiguity_threshold"]))
    return rows


def evaluate(settings: Settings, model: Path, data: Path,
             calibrate: bool = False) -> dict[str, Any]:
    """Score ``model`` on the CSV at ``data``; the figures plus which model and file.

    With ``calibrate``, also the fallback thresholds that would serve this set
    best (``thresholds``: the five best pairs).
    """
    examples = read_examples(data)
    predictions = parse_texts(settings, model, [e.text for e in examples])
    gold = [e.intent for e in examples]
    report = score(gold, [p.intent for p in predictions])
    report.update(calibration_figures(gold, predictions))
    if calibrate:
        report["thresholds"] = sweep_thresholds(gold, predictions)[:5]
    errors = [
        {"text": e.text, "gold": e.intent, "predicted": p.intent,
         "confidence": round(p.confidence, 3)}
        for e, p in zip(examples, predictions, strict=True) if e.intent != p.intent
    ]
    return {"data": str(data), "model": model.name, **report, "errors": errors[:50]}
