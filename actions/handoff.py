"""Handing the conversation to a person, or withdrawing the offer of one."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shop import settings
from bot.escalation import consecutive_misses, handoff_payload


def _handoff_reason(tracker: Tracker) -> tuple[str, str]:
    """(trigger, one-line reason) for the agent, from what led here."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent == "complain":
        return "complaint", "shopper complained"
    if float(tracker.get_slot("failed_lookups") or 0) >= settings().max_failed_lookups:
        return "verification_failed", "shopper could not prove an order was theirs " \
            f"({int(float(tracker.get_slot('failed_lookups')))} failed lookups)"
    if tracker.get_slot("human_offered"):
        misses = consecutive_misses(tracker.events[:-1])
        return "fallback", f"bot did not understand {max(misses, 1)} messages in a row"
    return "requested", "shopper asked for a person"


class ActionHandoff(Action):
    """Ask the gateway to queue the chat for a person.

    The bot says nothing itself: the gateway's desk tells the shopper what
    happens next, because only it knows whether anyone is online (queued, or
    "leave us a message"), so the shopper reads one announcement, not two.
    """

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[dict[str, Any]]:
        trigger, reason = _handoff_reason(tracker)
        dispatcher.utter_message(json_message=handoff_payload(reason, trigger))
        return [SlotSet("human_offered", False)]


class ActionDeclineHuman(Action):
    """The shopper said no to the offered person: withdraw the offer and carry on."""

    def name(self) -> str:
        return "action_decline_human"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_decline_human")
        return [SlotSet("human_offered", False)]
