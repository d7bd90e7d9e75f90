"""Two-strike fallback: ask to rephrase once, then offer a person."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import kb_reply, knowledge_base
from bot.escalation import STRIKES_BEFORE_OFFER, consecutive_misses
from bot.kb.answer import decide
from bot.kb.index import IndexMissing


class ActionFallback(Action):
    """Runs for ``nlu_fallback`` and ``out_of_scope``.

    Before giving up, the knowledge base gets a chance with a stricter
    threshold: a question the NLU could not place may still be answered by an
    article. Otherwise the first miss gets an honest "I didn't get that" (or
    "that's outside what I do"); from the second miss in a row the bot offers a
    person instead of looping on the same apology.
    """

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        if text and not text.startswith("/"):
            try:
                kb = knowledge_base()
                matches = kb.retriever.search(text, k=3)
            except IndexMissing:
                matches = []
            decision = decide(matches, strict=True)
            if decision.kind == "answer":
                kb.log.answered(tracker.sender_id, text, "fallback_answer", matches)
                kb_reply(dispatcher, decision)
                return [SlotSet("human_offered", False)]
            if matches:
                kb.log.answered(tracker.sender_id, text, "fallback_none", matches)
        if consecutive_misses(tracker.events) >= STRIKES_BEFORE_OFFER:
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("human_offered", True)]
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return [SlotSet("human_offered", False)]
