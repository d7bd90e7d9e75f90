"""A stand-in for Rasa in the fast tier: answers by a few rules, in Rasa's own formats
(REST webhook replies, trackers with parse data, slots and session events) and with the
domain's own responses (bot/domain.yml), so the gateway's own logic (sockets, seq and
resume, the desk, queues, agents, webhooks) is tested without a trained model. Gateways
in-process use it directly (it implements :class:`handoff.rasa_bridge.Bot`); a gateway
that talks to Rasa over HTTP, in-process or as its own process, gets it through
tests/scripted_rasa.py. What Rasa understands is tested against the real Rasa, in
tests/flows, tests/browser and tests/handoff/test_chat_with_rasa.py."""

from __future__ import annotations

import functools
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.escalation import MISS_INTENTS, STRIKES_BEFORE_OFFER, consecutive_misses, handoff_payload
from handoff.exceptions import RasaUnavailable

__all__ = ["MODEL_ID", "ScriptedBot"]

DOMAIN = Path(__file__).resolve().parents[1] / "bot" / "domain.yml"

#: What the scripted assistant reports as its loaded model (Rasa's ``/status``).
MODEL_ID = "scripted"

#: (pattern, intent, confidence): the first pattern that matches decides.
RULES: list[tuple[re.Pattern[str], str, float]] = [
    (re.compile(r"\bare you (an? )?(real )?(bot|human|person)\b|\bbot\b", re.I),
     "bot_challenge", 0.95),
    (re.compile(r"\b(person|human|agent|someone real)\b", re.I), "human_handoff", 0.97),
    (re.compile(r"^\s*(hi|hello|hey)\b", re.I), "greet", 0.99),
    (re.compile(r"\b(thanks|thank you|cheers)\b", re.I), "thank", 0.98),
]
FALLBACK = ("out_of_scope", 0.62)
#: A button's payload names its intent, as in Rasa (``/human_handoff``).
PAYLOAD = re.compile(r"^/(\w+)$")

#: The domain response each plainly answered intent gets.
SAYS = {
    "greet": "utter_greet",
    "thank": "utter_you_are_welcome",
    "deny": "utter_anything_else",
}
#: The answer to "are you a bot?" instead of the domain's utter_iamabot: the desk's tests
#: (tests/handoff/test_desk.py) recognise it by the scripted bot's first wording, and the
#: chat tests by the domain's "I'm a bot", as they do against the real Rasa.
IAMABOT = ("I'm a bot. I'm the shop's assistant, a bot, and I can get you a person any time: "
           "just say so.")


@functools.cache
def _domain() -> dict[str, Any]:
    domain: dict[str, Any] = YAML(typ="safe").load(DOMAIN.read_text(encoding="utf-8"))
    return domain


def response(name: str) -> dict[str, Any]:
    """The domain's response ``name`` as the REST channel sends it (its first variant)."""
    variant = _domain()["responses"][name][0]
    return {key: variant[key] for key in ("text", "buttons", "custom") if key in variant}


def initial_slots() -> dict[str, object]:
    """Every slot of the domain at its initial value, as a new Rasa tracker has them."""
    return {name: spec.get("initial_value") for name, spec in _domain()["slots"].items()}


def parse(text: str) -> dict[str, Any]:
    """What the scripted NLU makes of ``text``, in the shape of Rasa's ``/model/parse``."""
    intent, confidence = FALLBACK
    payload = PAYLOAD.match(text.strip())
    if payload is not None:
        intent, confidence = payload.group(1), 1.0
    else:
        for pattern, name, score in RULES:
            if pattern.search(text):
                intent, confidence = name, score
                break
    reading = {"name": intent, "confidence": confidence}
    return {"text": text, "intent": reading, "entities": [], "intent_ranking": [reading]}


class ScriptedBot:
    """Implements :class:`handoff.rasa_bridge.Bot`. ``down = True`` makes every call fail
    as an unreachable Rasa does."""

    def __init__(self) -> None:
        self.trackers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.slots: dict[str, dict[str, object]] = defaultdict(initial_slots)
        self.down = False

    def _reachable(self) -> None:
        if self.down:
            raise RasaUnavailable("the scripted bot is down")

    def _events(self, sender: str) -> list[dict[str, Any]]:
        """The sender's tracker events; a new tracker starts a session, as Rasa's does."""
        events = self.trackers[sender]
        if not events:
            now = time.time()
            events += [
                {"event": "action", "timestamp": now, "name": "action_session_start"},
                {"event": "session_started", "timestamp": now},
                {"event": "action", "timestamp": now, "name": "action_listen"},
            ]
        return events

    def _reply(self, sender: str, intent: str) -> list[dict[str, Any]]:
        """The replies to a message read as ``intent``; sets the slots the actions would."""
        slots = self.slots[sender]
        if intent == "human_handoff":
            trigger = "fallback" if slots.get("human_offered") else "requested"
            slots["human_offered"] = False
            return [{"custom": handoff_payload("The shopper asked for a person.", trigger)}]
        if intent in MISS_INTENTS:
            offer = consecutive_misses(self.trackers[sender]) >= STRIKES_BEFORE_OFFER
            slots["human_offered"] = offer
            return [response("utter_offer_human" if offer else "utter_out_of_scope")]
        if intent == "bot_challenge":
            return [{"text": IAMABOT}]
        if intent == "deny" and slots.get("human_offered"):
            slots["human_offered"] = False
            return [response("utter_decline_human")]
        return [response(SAYS.get(intent, "utter_out_of_scope"))]

    def state(self, sender: str, include_events: bool = True) -> dict[str, Any]:
        """The tracker as Rasa's HTTP API returns it (``include_events`` ALL or NONE)."""
        events = self._events(sender)
        users = [e for e in events if e["event"] == "user"]
        latest = ({"text": users[-1]["text"], **users[-1]["parse_data"]} if users
                  else {"text": None, "intent": {}, "entities": []})
        return {
            "sender_id": sender, "slots": dict(self.slots[sender]), "latest_message": latest,
            "latest_event_time": events[-1]["timestamp"], "paused": False,
            "events": list(events) if include_events else None,
        }

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        self._reachable()
        events = self._events(sender)
        reading = parse(text)
        events.append({"event": "user", "timestamp": time.time(), "text": text,
                       "parse_data": reading, "input_channel": "rest", "metadata": metadata})
        replies = self._reply(sender, reading["intent"]["name"])
        for reply in replies:
            events.append({"event": "bot", "timestamp": time.time(), "text": reply.get("text"),
                           "data": {k: v for k, v in reply.items() if k != "text"}})
        events.append({"event": "action", "timestamp": time.time(), "name": "action_listen"})
        return [{"recipient_id": sender, **reply} for reply in replies]

    async def tracker(self, sender: str) -> dict[str, Any]:
        self._reachable()
        return self.state(sender)

    async def parse(self, text: str) -> dict[str, Any]:
        self._reachable()
        return parse(text)

    async def append_events(self, sender: str, events: list[dict[str, Any]]
                            ) -> dict[str, Any]:
        self._reachable()
        tracker = self._events(sender)
        for event in events:
            if event.get("event") == "slot":
                self.slots[sender][event["name"]] = event.get("value")
            tracker.append({"timestamp": time.time(), **event})
        return self.state(sender, include_events=False)

    async def set_slot(self, sender: str, name: str, value: object) -> None:
        await self.append_events(sender, [{"event": "slot", "name": name, "value": value}])

    async def record_user_message(self, sender: str, text: str, seq: int) -> None:
        await self.append_events(sender, [{
            "event": "user", "text": text, "parse_data": await self.parse(text),
            "input_channel": "rest", "metadata": {"seq": seq, "to": "agent"},
        }])

    async def health(self) -> dict[str, dict[str, Any]]:
        if self.down:
            down = {"ok": False, "detail": "the scripted bot is down"}
            return {"rasa": down, "action_server": down}
        return {"rasa": {"ok": True, "model": MODEL_ID}, "action_server": {"ok": True}}
