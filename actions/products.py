"""Product questions: stock for a size or colour, price and specs, from the shop's data.

On a product page the widget passes the SKU, so "do you have it in M?" needs
nothing more; elsewhere the product is taken from the question ("is the
Ridgeline tent waterproof?") or the bot asks which one (``product_form``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.interruptions import interrupted
from actions.shop import HUMAN_BUTTON, intent_payload, page_metadata, payload_value, shop
from bot.cards import card_payload
from bot.store.errors import StoreError
from bot.store.models import Product
from bot.store.parsing import words
from bot.store.questions import answer_product_question

__all__ = [
    "ActionAskProductSku",
    "ActionBeginProductQuestion",
    "ActionProductInfo",
    "ValidateProductForm",
    "named_product",
]

log = logging.getLogger(__name__)


def named_product(text: str) -> Product | None:
    """The one product the text names best (by its SKU or name words), or None if unclear."""
    store = shop()
    direct = store.get_product(text.strip()) if text.strip() else None
    if direct is not None:
        return direct
    said = words(text)
    scored = sorted(((len(said & words(p.name)), p.sku, p) for p in store.find_products(text, 5)),
                    key=lambda item: (-item[0], item[1]))
    if not scored or scored[0][0] == 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None
    return scored[0][2]


def _product_in_question(text: str, page_sku: object) -> Product | None:
    """The product the question names; on a product page that product unless another
    one is named more clearly ("this jacket" on the jacket's page is that jacket)."""
    named = named_product(text)
    on_page = shop().get_product(page_sku) if isinstance(page_sku, str) and page_sku else None
    if on_page is None or named is None or named.sku == on_page.sku:
        return named or on_page
    said = words(text)
    return named if len(said & words(named.name)) > len(said & words(on_page.name)) else on_page


class ActionBeginProductQuestion(Action):
    """Keep the question; take the product from the question, the page, or the last one."""

    def name(self) -> str:
        return "action_begin_product_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        from_button = next(tracker.get_latest_entity_values("product_sku"), None)
        events: list[dict[str, Any]] = [SlotSet("stop_form", None)]
        if not text.startswith("/"):
            events.append(SlotSet("product_question", text))
        try:
            product = None
            if from_button:
                product = shop().get_product(str(from_button))
            elif not text.startswith("/"):
                product = _product_in_question(text, page_metadata(tracker).get("sku"))
        except StoreError as error:
            log.warning("product lookup failed: %s", error)
            product = None
        if product is not None:
            events.append(SlotSet("product_sku", product.sku))
        elif not _refers_back(text):
            events.append(SlotSet("product_sku", None))
        return events


_BACK_REFERENCE = re.compile(r"\b(it|its|it's|that|this|them|they|one)\b", re.IGNORECASE)


def _refers_back(text: str) -> bool:
    """"Is it in stock in L?" after asking about a product means that product."""
    return bool(_BACK_REFERENCE.search(text))


class ValidateProductForm(FormValidationAction):
    def name(self) -> str:
        return "validate_product_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> list[str]:
        return [] if tracker.get_slot("stop_form") else ["product_sku"]

    def validate_product_sku(self, value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        text = payload_value(value, "product_sku") or ""
        try:
            product = named_product(text)
        except StoreError:
            dispatcher.utter_message(text="I can't reach our product data right now, sorry.",
                                     buttons=[HUMAN_BUTTON])
            return {"product_sku": None}
        if product is None:
            stop = interrupted(dispatcher, tracker)
            if stop is not None:
                return {"product_sku": None, **stop}
            dispatcher.utter_message(text="I couldn't find a product of ours by that name "
                                          "(we may not sell it). Try its name as it appears "
                                          "on the product page.")
            return {"product_sku": None}
        return {"product_sku": product.sku}


class ActionAskProductSku(Action):
    def name(self) -> str:
        return "action_ask_product_sku"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        question = tracker.get_slot("product_question") or ""
        try:
            candidates = shop().find_products(question, 4) if question else []
        except StoreError:
            candidates = []
        # Nothing like it in the catalogue: a person can still help (never a dead end).
        buttons = [{"title": p.name, "payload": intent_payload("product_info", product_sku=p.sku)}
                   for p in candidates] or [HUMAN_BUTTON]
        dispatcher.utter_message(
            text="Which product do you mean? Tell me its name"
                 + (", or pick one:" if candidates else ", or ask a person from our team."),
            buttons=buttons)
        return []


class ActionProductInfo(Action):
    def name(self) -> str:
        return "action_product_info"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        if tracker.get_slot("stop_form"):
            return [SlotSet("stop_form", None)]
        sku = tracker.get_slot("product_sku")
        question = tracker.get_slot("product_question") or ""
        try:
            product = shop().get_product(sku) if sku else None
        except StoreError:
            dispatcher.utter_message(text="I can't reach our product data right now, sorry. "
                                          "A person from our team can answer that.",
                                     buttons=[HUMAN_BUTTON])
            return []
        if product is None:
            return []
        # The product's page travels beside the answer as a card (bot.cards).
        dispatcher.utter_message(text=answer_product_question(product, question),
                                 json_message=card_payload(product.name, product.url))
        return []
