"""Slots filled from what the gateway vouches for, after every shopper message."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction

from actions.shop import shop
from bot.store.errors import StoreError

log = logging.getLogger(__name__)


class ValidateSlotMappings(ValidationAction):
    """``customer_id`` / ``customer_name`` from the message metadata.

    The gateway puts ``customer_id`` in the metadata only after it verified the
    shop's signature on it (bot.identity); Rasa listens on loopback only, so no
    one else can send metadata. Nothing a shopper types can set these slots.
    """

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_customer_id(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: dict[str, Any]) -> dict[str, Any]:
        metadata = tracker.latest_message.get("metadata") or {}
        verified = metadata.get("customer_id") if isinstance(metadata, dict) else None
        if not isinstance(verified, str) or verified == tracker.get_slot("customer_id"):
            return {}
        try:
            customer = shop().get_customer(verified)
        except StoreError as error:
            log.warning("customer lookup failed: %s", error)
            customer = None
        return {"customer_id": verified,
                "customer_name": customer.first_name if customer else None}
