"""The canonical shopper intents and how Rasa's predictions map onto them."""

from __future__ import annotations

__all__ = ["CANONICAL_INTENTS", "FALLBACK_INTENT", "to_canonical"]

CANONICAL_INTENTS: tuple[str, ...] = (
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "bot_challenge",
    "track_order",
    "start_return",
    "refund_status",
    "cancel_order",
    "change_shipping_address",
    "product_info",
    "human_handoff",
    "complain",
    "faq",
    "out_of_scope",
)

#: What Rasa's FallbackClassifier predicts under its confidence threshold.
FALLBACK_INTENT = "nlu_fallback"

# Finer intents that may appear inside Rasa, folded onto a canonical label.
_FINER: dict[str, str] = {
    FALLBACK_INTENT: "out_of_scope",
}


def to_canonical(rasa_intent: str | None) -> str:
    """Map an intent name predicted by Rasa onto a canonical eval label.

    Unknown or missing names count as ``out_of_scope``: a prediction we cannot
    place is one the bot could not act on.
    """
    if rasa_intent is None:
        return "out_of_scope"
    if rasa_intent in CANONICAL_INTENTS:
        return rasa_intent
    return _FINER.get(rasa_intent, "out_of_scope")
