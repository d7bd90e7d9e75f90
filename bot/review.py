"""The review inbox: shopper messages the bot handled badly, and the staff's verdicts on them.

Items come from what the product stores: Rasa's tracker store (messages read
as ``nlu_fallback``/``out_of_scope`` or under a confidence threshold), the KB
log (answers marked "not helpful") and the gateway's handoffs (the message
that led to a person). Staff assign the right intent, mark "new FAQ needed",
or ignore; verdicts live in the gateway database, and every assigned message
is written to ``data/nlu/reviewed.yml`` (deduplicated, never contradicting an
example already in the training data), so ``shopchat train`` learns from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.intents import CANONICAL_INTENTS
from bot.kb.log import UNHELPFUL_QUESTIONS
from bot.readonly import read_rows
from handoff.db.reads import queued_since
from handoff.db.review import delete_verdicts, save_verdicts, verdicts, verdicts_in_order

__all__ = ["Item", "ReviewError", "decide", "list_items", "undecide", "write_training_file"]

MISSES = frozenset({"nlu_fallback", "out_of_scope"})
VERDICTS = frozenset(CANONICAL_INTENTS) | {"new_faq", "ignore"}
REVIEWED_FILE = Path("data") / "nlu" / "reviewed.yml"



class ReviewError(ValueError):
    """A verdict that cannot be taken (unknown item or intent); the message says which."""


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # fallback | low_confidence | kb_not_helpful | handoff
    conversation_id: str
    at: float
    text: str
    intent: str | None
    confidence: float | None
    verdict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _item_id(conversation_id: str, at: float, text: str) -> str:
    return hashlib.sha1(f"{conversation_id}|{at:.3f}|{text}".encode()).hexdigest()[:12]


def list_items(gateway_db: Path, tracker_db: Path, kb_db: Path, since: float,
               threshold: float = 0.7, include_decided: bool = False) -> list[Item]:
    """Every message worth a look since ``since``, newest first."""
    handoffs: dict[str, list[float]] = {}
    for conversation_id, queued_at in queued_since(gateway_db, since):
        handoffs.setdefault(conversation_id, []).append(queued_at)
    items: dict[str, Item] = {}
    last_before_handoff: dict[tuple[str, float], tuple[float, str, str | None, float | None]] = {}
    for sender, ts, data in read_rows(
            tracker_db, "SELECT sender_id, timestamp, data FROM events WHERE type_name = 'user' "
                        "AND timestamp >= ? ORDER BY timestamp", [since]):
        event = json.loads(data or "{}")
        text = (event.get("text") or "").strip()
        if not text or text.startswith("/") or (event.get("metadata") or {}).get("to") == "agent":
            continue  # buttons are not language; messages to an agent are not the bot's
        intent = (event.get("parse_data") or {}).get("intent") or {}
        name, confidence = intent.get("name"), intent.get("confidence")
        kind = "fallback" if name in MISSES else (
            "low_confidence" if confidence is not None and confidence < threshold else None)
        if kind:
            item = Item(_item_id(sender, ts, text), kind, sender, ts, text, name, confidence)
            items[item.id] = item
        for queued_at in handoffs.get(sender, []):
            if ts <= queued_at:
                last_before_handoff[(sender, queued_at)] = (ts, text, name, confidence)
    for (sender, _), (ts, text, name, confidence) in last_before_handoff.items():
        item_id = _item_id(sender, ts, text)
        items.setdefault(item_id, Item(item_id, "handoff", sender, ts, text, name, confidence))
    for conversation_id, ts, query in read_rows(kb_db, UNHELPFUL_QUESTIONS, [since]):
        if query and not query.startswith("/"):
            item_id = _item_id(conversation_id, ts, query)
            items.setdefault(item_id, Item(item_id, "kb_not_helpful", conversation_id, ts,
                                           query, "faq", None))
    decided = verdicts(gateway_db)
    found = [Item(**{**i.as_dict(), "verdict": decided.get(i.id)}) for i in items.values()]
    if not include_decided:
        found = [i for i in found if i.verdict is None]
    return sorted(found, key=lambda i: -i.at)


def decide(gateway_db: Path, items: list[Item], item_ids: list[str], verdict: str,
           decided_by: str) -> list[Item]:
    """Record ``verdict`` (an intent, ``new_faq`` or ``ignore``) for the given items."""
    if verdict not in VERDICTS:
        raise ReviewError(f"unknown verdict {verdict!r}: use one of the intents "
                          f"({', '.join(CANONICAL_INTENTS)}), new_faq or ignore")
    by_id = {i.id: i for i in items}
    missing = [i for i in item_ids if i not in by_id]
    if missing:
        raise ReviewError(f"no such review item: {', '.join(missing)}")
    save_verdicts(gateway_db, {i: by_id[i].text for i in item_ids}, verdict, decided_by)
    return [Item(**{**by_id[i].as_dict(), "verdict": verdict}) for i in item_ids]


def undecide(gateway_db: Path, item_ids: list[str]) -> int:
    """Take the verdicts on these items back (they return to the inbox); how many there were."""
    return delete_verdicts(gateway_db, item_ids)


def _clean(text: str) -> str:
    """One line, no Rasa entity markup ("[x](y)" would be read as an annotation)."""
    return re.sub(r"[\[\]]", "", " ".join(text.split()))[:300]


def _existing_examples(project_dir: Path) -> dict[str, str]:
    """Normalised example → intent, from every NLU file except the reviewed one."""
    found: dict[str, str] = {}
    for path in sorted((project_dir / "data" / "nlu").glob("*.yml")):
        if path.name == REVIEWED_FILE.name:
            continue
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            intent = block.get("intent")
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if intent and line.startswith("- "):
                    example = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line[2:])
                    found[example.casefold().strip()] = intent
    return found


def write_training_file(gateway_db: Path, project_dir: Path) -> dict[str, Any]:
    """Rewrite ``data/nlu/reviewed.yml`` from every intent verdict; what was left out and why."""
    decisions = verdicts_in_order(gateway_db)
    existing = _existing_examples(project_dir)
    chosen: dict[str, tuple[str, str]] = {}  # normalised → (intent, text); the last verdict wins
    for text, verdict in decisions:
        if verdict in CANONICAL_INTENTS:
            clean = _clean(text)
            if clean:
                chosen[clean.casefold()] = (verdict, clean)
    skipped = []
    by_intent: dict[str, list[str]] = {}
    for key, (intent, text) in chosen.items():
        if key in existing:
            if existing[key] != intent:
                skipped.append({"text": text, "intent": intent,
                                "reason": f"already an example of {existing[key]}"})
            continue
        by_intent.setdefault(intent, []).append(text)
    lines = ['version: "3.1"', "",
             "# Written by the review inbox (`shopchat review`, /admin/): real shopper messages",
             "# the bot got wrong, with the intent staff assigned. Edit verdicts, not this file.",
             "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in sorted(by_intent[intent], key=str.casefold)]
    path = project_dir / REVIEWED_FILE
    if by_intent:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif path.exists():
        path.unlink()
    return {"path": str(path), "examples": sum(map(len, by_intent.values())),
            "skipped": skipped}
