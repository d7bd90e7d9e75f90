"""A stand-in for Rasa in the fast tier: answers by a few rules, in Rasa's own formats
(REST webhook replies, tracker events with parse data), so the gateway's own logic (the
desk, queues, agents, webhooks) is tested without a trained model. What Rasa understands
is tested against the real Rasa, in tests/flows and tests/browser."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from bot.escalation import handoff_payload
from handoff.exceptions import RasaUnavailable

__all__ = ["ScriptedBot"]

#: (pattern, intent, confidence, replies): the first pattern that matches decides.
RULES: list[tuple[re.Pattern[str], str, float, list[dict[str, Any]]]] = [
    (re.compile(r"\b(person|human|agent|someone real)\b", re.I), "human_handoff", 0.97,
     [{"custom": handoff_payload("The shopper asked for a person.", "requested")}]),
    (re.compile(r"^\s*(hi|hello|hey)\b", re.I), "greet", 0.99,
     [{"text": "Hi! I can help with orders, returns and questions about the shop."}]),
    (re.compile(r"\bbot\b", re.I), "bot_challenge", 0.95,
     [{"text": "I'm the shop's assistant, a bot. I can get you a person any time."}]),
]
FALLBACK = ("out_of_scope", 0.62, [{"text": "Sorry, I can't help with that. Ask me about an "
                                            "order, a return, or the shop."}])


class ScriptedBot:
    """Implements :class:`handoff.rasa_bridge.Bot`. ``down = True`` makes every call fail
    as an unreachable Rasa does."""

    def __init__(self) -> None:
        self.trackers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.slots: dict[str, dict[str, object]] = defaultdict(dict)
        self.down = False

    def _reachable(self) -> None:
        if self.down:
            raise RasaUnavailable("the scripted bot is down")

    @staticmethod
    def read(text: str) -> tuple[str, float, list[dict[str, Any]]]:
        for pattern, intent, confidence, replies in RULES:
            if pattern.search(text):
                return intent, confidence, replies
        return FALLBACK

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        self._reachable()
        intent, confidence, replies = self.read(text)
        self.trackers[sender].append({
            "event": "user", "text": text, "metadata": metadata,
            "parse_data": {"intent": {"name": intent, "confidence": confidence}},
        })
        self.trackers[sender] += [{"event": "bot", "text": r["text"]} for r in replies
                                  if "text" in r]
        return [{"recipient_id": sender, **reply} for reply in replies]

    async def tracker(self, sender: str) -> dict[str, Any]:
        self._reachable()
        return {"sender_id": sender, "slots": dict(self.slots[sender]),
                "events": list(self.trackers[sender])}

    async def append_events(self, sender: str, events: list[dict[str, Any]]
                            ) -> dict[str, Any]:
        self._reachable()
        for event in events:
            if event.get("event") == "slot":
                self.slots[sender][event["name"]] = event.get("value")
            self.trackers[sender].append(event)
        users = [e for e in self.trackers[sender] if e.get("event") == "user"]
        return {"sender_id": sender, "latest_message": users[-1] if users else {}}

    async def set_slot(self, sender: str, name: str, value: object) -> None:
        await self.append_events(sender, [{"event": "slot", "name": name, "value": value}])

    async def record_user_message(self, sender: str, text: str, seq: int) -> None:
        intent, confidence, _ = self.read(text)
        await self.append_events(sender, [{
            "event": "user", "text": text, "metadata": {"seq": seq, "to": "agent"},
            "parse_data": {"intent": {"name": intent, "confidence": confidence}},
        }])

    async def health(self) -> dict[str, dict[str, Any]]:
        ok = {"ok": not self.down}
        return {"rasa": ok, "action_server": ok}
