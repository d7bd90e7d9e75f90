"""FAQ answers from the knowledge base (bot.kb), and the shopper's "did this help?"."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.cards import card_payload
from bot.kb.answer import Decision, decide
from bot.kb.index import IndexMissing, Retriever
from bot.kb.log import KBLog
from bot.settings import Settings

__all__ = ["ActionAnswerFaq", "KnowledgeBase", "kb_reply", "knowledge_base", "warm_up"]

log = logging.getLogger(__name__)

HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/human_handoff"}


class KnowledgeBase:
    """The retriever and the answer log, made once per action-server process."""

    def __init__(self, settings: Settings) -> None:
        self.retriever = Retriever(settings.kb_index_path)
        self.log = KBLog(settings.kb_log_db)


_instance: KnowledgeBase | None = None
_instance_lock = threading.Lock()


def knowledge_base(settings: Settings | None = None) -> KnowledgeBase:
    """The process's knowledge base; ``settings`` (tests) replaces it with a new one."""
    global _instance
    with _instance_lock:
        if _instance is None or settings is not None:
            _instance = KnowledgeBase(settings or Settings())
        return _instance


def warm_up() -> None:
    """Load the embedding model and the index now, while the action server starts.

    It is called before the server listens, so its ``/health`` (and with it the
    gateway's ``/healthz`` and the "ready" line of ``shopchat up``) answers only once
    an FAQ question will not wait for the model. Loaded in a background thread
    instead, the model raced the first shoppers: on a busy 2-core machine the first
    question waited over 20 s behind it.
    """
    try:
        knowledge_base().retriever.search("warm up", 1)
    except Exception as error:  # a missing index is reported when a shopper asks
        log.warning("knowledge base not ready: %s", error)


def _feedback_buttons(article_id: str) -> list[dict[str, str]]:
    def payload(helpful: str) -> str:
        return "/faq" + json.dumps({"article_id": article_id, "kb_feedback": helpful},
                                   separators=(",", ":"))
    return [{"title": "Yes, that helped", "payload": payload("yes")},
            {"title": "Not really", "payload": payload("no")}]


def kb_reply(dispatcher: CollectingDispatcher, decision: Decision) -> None:
    """Say what a decision means: the article, a choice, or an honest "I don't know"."""
    if decision.kind == "answer" and decision.best is not None:
        best = decision.best
        # The text is the answer; the title and link travel beside it as a card.
        dispatcher.utter_message(text=best.body, buttons=_feedback_buttons(best.article_id),
                                 json_message=card_payload(best.title, best.url))
    elif decision.kind == "choose":
        buttons = [{"title": m.title,
                    "payload": "/faq" + json.dumps({"article_id": m.article_id},
                                                   separators=(",", ":"))}
                   for m in decision.matches]
        dispatcher.utter_message(text="I found a few articles that might answer that. "
                                      "Which one do you mean?", buttons=buttons)
    else:
        dispatcher.utter_message(
            text="I couldn't find that in our help articles, sorry. A person from our team "
                 "can answer it.",
            buttons=[HUMAN_BUTTON],
        )


def _entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None


class ActionAnswerFaq(Action):
    """Intent ``faq``: answer from the best article, ask which one, or offer a person.

    Buttons the bot itself offered come back as ``/faq{"article_id": …}`` (the
    shopper picked an article) or ``/faq{"article_id": …, "kb_feedback": "yes"}``
    (the shopper said whether it helped); the gateway only forwards payloads the
    bot offered, so these cannot be forged by a client.
    """

    def name(self) -> str:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        kb = knowledge_base()
        conversation = tracker.sender_id
        article_id = _entity(tracker, "article_id")
        feedback = _entity(tracker, "kb_feedback")
        try:
            if article_id and feedback in ("yes", "no"):
                kb.log.feedback(conversation, article_id, helpful=feedback == "yes")
                if feedback == "yes":
                    dispatcher.utter_message(text="Great, glad that helped! Anything else?")
                else:
                    dispatcher.utter_message(
                        text="Sorry that didn't help. Can you tell me more, or would you "
                             "like a person from our team?", buttons=[HUMAN_BUTTON])
                return []
            if article_id:
                chosen = kb.retriever.index().article(article_id)
                if chosen is not None:
                    kb_reply(dispatcher, Decision("answer", (chosen,)))
                    return []
            text = tracker.latest_message.get("text") or ""
            matches = kb.retriever.search(text, k=3)
        except IndexMissing as error:
            log.error("%s", error)
            dispatcher.utter_message(response="utter_faq_unavailable")
            return []
        decision = decide(matches)
        kb.log.answered(conversation, text, decision.kind, matches)
        kb_reply(dispatcher, decision)
        return []
