"""A shopper who answers a form's question with something else: a person, "stop", a question.

The forms take free text for their slots (an order number, an email, an
address), so nothing a shopper types is lost to a wrong intent guess. Only
when the text is *not* what was asked does the intent decide: a request for a
person hands the chat over, "no"/"bye" ends the form, a help question gets its
article and the question is asked again.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import kb_reply, knowledge_base
from actions.shop import latest_intent
from bot.escalation import handoff_payload
from bot.kb.answer import decide
from bot.kb.index import IndexMissing

__all__ = ["CONFIDENT", "interrupted"]

#: How sure the NLU must be before a non-answer is read as a change of mind.
CONFIDENT = 0.7


def interrupted(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any] | None:
    """Slots that end the form (after saying why), ``{}`` to ask again, None: not handled."""
    intent, confidence = latest_intent(tracker)
    if confidence < CONFIDENT:
        return None
    if intent in ("human_handoff", "complain"):
        if intent == "complain":
            dispatcher.utter_message(response="utter_complain")
        reason = "shopper complained" if intent == "complain" else "shopper asked for a person"
        trigger = "complaint" if intent == "complain" else "requested"
        dispatcher.utter_message(json_message=handoff_payload(reason, trigger))
        return {"stop_form": True, "human_offered": False}
    if intent in ("deny", "goodbye"):
        dispatcher.utter_message(
            response="utter_order_task_stopped" if intent == "deny" else "utter_goodbye")
        return {"stop_form": True}
    if intent == "faq":
        text = tracker.latest_message.get("text") or ""
        try:
            decision = decide(knowledge_base().retriever.search(text, k=3))
        except IndexMissing:
            return None
        if decision.kind == "answer":
            kb_reply(dispatcher, decision)
            return {}
    return None
