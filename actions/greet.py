"""The greeting: by first name for a shopper the storefront vouched for, with their open order."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shop import intent_payload, shop
from bot.store.errors import StoreError
from bot.store.texts import STATUS_WORDS

log = logging.getLogger(__name__)

#: Orders a shopper may be waiting on.
OPEN = ("placed", "processing", "shipped", "out_for_delivery")


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        customer_id = tracker.get_slot("customer_id")
        if not customer_id:
            dispatcher.utter_message(response="utter_greet")
            return []
        name = tracker.get_slot("customer_name")
        events: list[dict[str, Any]] = []
        try:
            if not name:
                customer = shop().get_customer(customer_id)
                name = customer.first_name if customer else None
                # Kept for the agent's context (what the agent calls the shopper).
                events = [SlotSet("customer_name", name)] if name else []
            orders = shop().orders_for_customer(customer_id, limit=10)
        except StoreError as error:
            log.warning("customer or orders lookup failed: %s", error)
            orders = []
        greeting = f"Hi {name}! " if name else "Hi! "
        latest = next((order for order in orders if order.status in OPEN), None)
        if latest is None:
            dispatcher.utter_message(
                text=greeting + "How can I help you today? I can help with orders, returns, "
                                "shipping and our products, or get you a person.")
            return events
        dispatcher.utter_message(
            text=f"{greeting}Your order {latest.id} {STATUS_WORDS[latest.status]}. "
                 "Would you like the latest on it, or is it something else?",
            buttons=[{"title": f"Track {latest.id}",
                      "payload": intent_payload("track_order", order_id=latest.id)},
                     {"title": "Something else", "payload": "/deny"}])
        return events
