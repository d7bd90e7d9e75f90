"""Order tasks: tracking, returns, refund status, cancelling, changing the address.

One form (``order_form``) serves all five. It asks for the order number, then
for proof the order is the shopper's (the order's email, unless the storefront
vouched for the customer who owns it), then for what the task needs (the item
and reason for a return, the new address, a yes to confirm). No order detail
is said before that proof; an unknown order and a wrong email get the same
answer, and after ``max_failed_lookups`` misses the bot stops looking orders up
and offers a person. The rules themselves live in :mod:`bot.store.policy`;
these actions only read slots, call the store and say the result.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.interruptions import interrupted
from actions.shop import HUMAN_BUTTON, intent_payload, latest_intent, payload_value, settings, shop
from bot.store.errors import NotAllowed, StoreError
from bot.store.models import Address, Order, ReturnLine
from bot.store.parsing import email_in_message, find_order_id, match_line, parse_address
from bot.store.policy import (
    ReturnWindow,
    check_change,
    check_return,
    returnable_lines,
    verify_owner,
)
from bot.store.texts import (
    describe_order,
    describe_refunds,
    money,
    order_choice_title,
    return_next_steps,
)
from bot.store.updates import order_verified_payload

__all__ = [
    "ActionAskConfirm",
    "ActionAskOrderId",
    "ActionAskReturnItem",
    "ActionBeginOrderTask",
    "ActionOrderTask",
    "ValidateOrderForm",
]

log = logging.getLogger(__name__)

#: Intent that starts a task → the task's name in the ``order_task`` slot.
TASKS = {
    "track_order": "track",
    "start_return": "return",
    "refund_status": "refund",
    "cancel_order": "cancel",
    "change_shipping_address": "address",
}
INTENT_OF_TASK = {task: intent for intent, task in TASKS.items()}
#: What each task asks for once the order is proven to be the shopper's.
TASK_SLOTS = {
    "track": [],
    "refund": [],
    "return": ["return_item", "return_reason"],
    "cancel": ["confirm"],
    "address": ["new_address", "confirm"],
}
TASK_STATE = ["return_item", "return_reason", "new_address", "confirm", "stop_form"]

NOT_FOUND = ("I couldn't find an order with that number and email address. Please check "
             "both: the order number is in your confirmation email and looks like SC-100482.")
LOCKED = ("I can't look up any more orders in this chat, to keep our customers' orders "
          "private. A person from our team can help you with it.")
UNREACHABLE = ("I can't reach our order system right now, sorry. Please try again in a few "
               "minutes, or a person from our team can help.")


def _now() -> datetime:
    return datetime.now(UTC)


def _window() -> ReturnWindow:
    current = settings()
    return ReturnWindow(current.return_window_days, current.member_return_window_days)


def _locked(tracker: Tracker) -> bool:
    return float(tracker.get_slot("failed_lookups") or 0) >= settings().max_failed_lookups


def _verified(tracker: Tracker) -> Order | None:
    """The order in the slots, only if this conversation proved it is the shopper's."""
    order_id = tracker.get_slot("order_id")
    if not order_id or tracker.get_slot("verified_order") != order_id:
        return None
    return shop().get_order(order_id)


def _member(order: Order) -> bool:
    customer = shop().get_customer(order.customer_id)
    return bool(customer and customer.member)


def _offer_person(dispatcher: CollectingDispatcher, text: str) -> dict[str, Any]:
    dispatcher.utter_message(text=text, buttons=[HUMAN_BUTTON, {"title": "No thanks",
                                                               "payload": "/deny"}])
    return {"human_offered": True}


class ActionBeginOrderTask(Action):
    """Start a task: remember which, and forget what an earlier task asked for.

    The order number and email are kept only if this very message names them;
    an order verified earlier in the conversation stays verified.
    """

    def name(self) -> str:
        return "action_begin_order_task"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        intent, _ = latest_intent(tracker)
        events = [SlotSet("order_task", TASKS.get(intent or ""))]
        events += [SlotSet(slot, None) for slot in TASK_STATE]
        if next(tracker.get_latest_entity_values("order_id"), None) is None:
            events.append(SlotSet("order_id", None))
        email = email_in_message(next(tracker.get_latest_entity_values("email"), None),
                                 tracker.latest_message.get("text") or "")
        # Set even when the NLU saw no email entity: the form validates it on activation.
        events.append(SlotSet("email", email))
        return events


class ValidateOrderForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> list[str]:
        task = tracker.get_slot("order_task")
        if task not in TASK_SLOTS or _locked(tracker) or tracker.get_slot("stop_form"):
            return []  # nothing (more) to ask: the form ends, action_order_task explains
        slots = ["order_id"]
        order_id = tracker.get_slot("order_id")
        if not order_id or tracker.get_slot("verified_order") != order_id:
            slots.append("email")
        return slots + TASK_SLOTS[task]

    # -- proving the order is the shopper's --------------------------------

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher,
                          tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        requested = tracker.get_slot("requested_slot")
        if requested not in (None, "order_id"):
            # A number inside another answer (a postcode, a house number) is an order
            # number only when written as one ("SC-100482", "#100482").
            order_id = find_order_id(str(value), explicit=True) if value else None
            if order_id is None:
                return {"order_id": _previous_value(tracker, "order_id")}
        else:
            order_id = find_order_id(str(value)) if value else None
        if order_id is None:
            return {"order_id": None, **_not_an_answer(
                dispatcher, tracker, "That doesn't look like an order number. You'll find it "
                "in your order confirmation email; it looks like SC-100482.")}
        try:
            order = shop().get_order(order_id)
        except StoreError:
            dispatcher.utter_message(text=UNREACHABLE, buttons=[HUMAN_BUTTON])
            return {"order_id": None, "order_task": None}
        customer_id = tracker.get_slot("customer_id")
        if tracker.get_slot("verified_order") == order_id or (
            customer_id and verify_owner(order, customer_id=customer_id)
        ):
            assert order is not None
            _proved(dispatcher, tracker, order_id)
            return {"order_id": order_id, "verified_order": order_id,
                    **self._task_allowed(dispatcher, tracker, order)}
        return {"order_id": order_id}

    def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: dict[str, Any]) -> dict[str, Any]:
        email = email_in_message(str(value) if value else None,
                                 tracker.latest_message.get("text") or "")
        order_id = tracker.get_slot("order_id")
        if email is None:
            return {"email": None, **_not_an_answer(
                dispatcher, tracker, "That doesn't look like an email address. Please type the "
                "one you used when you ordered, like name@example.com.")}
        if not order_id:
            return {"email": email}  # the number is asked next
        if tracker.get_slot("verified_order") == order_id:
            return {"email": email}
        try:
            order = shop().get_order(order_id)
        except StoreError:
            dispatcher.utter_message(text=UNREACHABLE, buttons=[HUMAN_BUTTON])
            return {"order_task": None}
        if verify_owner(order, email=email):
            assert order is not None
            _proved(dispatcher, tracker, order_id)
            return {"email": email, "verified_order": order_id,
                    **self._task_allowed(dispatcher, tracker, order)}
        failed = int(float(tracker.get_slot("failed_lookups") or 0)) + 1
        log.info("conversation=%s failed order lookup %d", tracker.sender_id, failed)
        result: dict[str, Any] = {"failed_lookups": float(failed), "order_id": None,
                                  "email": None}
        if failed >= settings().max_failed_lookups:
            result.update(_offer_person(dispatcher, LOCKED))
            result["order_task"] = None
        else:
            dispatcher.utter_message(text=NOT_FOUND)
        return result

    def _task_allowed(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                      order: Order) -> dict[str, Any]:
        """Right after the proof: can this task be done for this order at all?"""
        task = tracker.get_slot("order_task")
        try:
            if task == "return":
                check_return(order, shop().returns_for_order(order.id), None, now=_now(),
                             window=_window(), member=_member(order))
                left = returnable_lines(order, shop().returns_for_order(order.id))
                if len(left) == 1 and len(order.lines) == 1:
                    return {"return_item": str(left[0][0].line_id)}
            elif task == "cancel":
                check_change(order, "cancel it")
            elif task == "address":
                check_change(order, "change its delivery address")
        except NotAllowed as refusal:
            dispatcher.utter_message(text=refusal.message, buttons=_alternatives(task, order))
            return {"order_task": None}
        return {}

    # -- what the task needs -----------------------------------------------

    def validate_return_item(self, value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        order = _verified(tracker)
        text = payload_value(value, "return_item")
        if order is None or not text:
            return {"return_item": None}
        line = match_line(text, order.lines)
        if line is None:
            return {"return_item": None, **_not_an_answer(
                dispatcher, tracker, "Which item would you like to return? Pick one of the "
                "buttons or type its name.")}
        try:
            check_return(order, shop().returns_for_order(order.id),
                         [ReturnLine(line_id=line.line_id, qty=1)], now=_now(),
                         window=_window(), member=_member(order))
        except NotAllowed as refusal:
            dispatcher.utter_message(text=refusal.message)
            return {"return_item": None}
        return {"return_item": str(line.line_id)}

    def validate_return_reason(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        reason = payload_value(value, "return_reason")
        if reason and not reason.startswith("/") and (stop := interrupted(dispatcher, tracker)):
            return {"return_reason": None, **stop}
        if not reason or len(reason.strip()) < 2:
            dispatcher.utter_message(text="Could you tell me in a few words why?")
            return {"return_reason": None}
        return {"return_reason": reason.strip()[:200]}

    def validate_new_address(self, value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        try:
            address = parse_address(str(value or ""))
        except ValueError as error:
            return {"new_address": None, **_not_an_answer(dispatcher, tracker, str(error))}
        return {"new_address": address.model_dump_json()}


def _proved(dispatcher: CollectingDispatcher, tracker: Tracker, order_id: str) -> None:
    """Tell the gateway this conversation proved the order is the shopper's (a custom
    payload no shopper sees): the shop's updates about it may then be posted here."""
    if tracker.get_slot("verified_order") != order_id:
        dispatcher.utter_message(json_message=order_verified_payload(order_id))


def _previous_value(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the shopper's latest message (rasa-sdk shows the new one)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def _not_an_answer(dispatcher: CollectingDispatcher, tracker: Tracker,
                   hint: str) -> dict[str, Any]:
    """The text was not what the form asked: a change of mind, a question, or a retry."""
    handled = interrupted(dispatcher, tracker)
    if handled is None:
        dispatcher.utter_message(text=hint)
        return {}
    return handled


def _alternatives(task: str | None, order: Order) -> list[dict[str, str]]:
    """Buttons for what the shopper can do instead of a refused task."""
    buttons = []
    if task in ("cancel", "address") and order.status in ("shipped", "out_for_delivery"):
        buttons.append({"title": "Track it", "payload": intent_payload(
            "track_order", order_id=order.id)})
    if task == "cancel" and order.status == "delivered":
        buttons.append({"title": "Return it", "payload": intent_payload(
            "start_return", order_id=order.id)})
    return [*buttons, HUMAN_BUTTON]


class ActionAskOrderId(Action):
    """Ask for the order; an identified shopper picks from their recent orders."""

    def name(self) -> str:
        return "action_ask_order_id"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        intent = INTENT_OF_TASK.get(tracker.get_slot("order_task") or "", "track_order")
        customer_id = tracker.get_slot("customer_id")
        orders: list[Order] = []
        if customer_id:
            try:
                orders = shop().orders_for_customer(customer_id, limit=5)
            except StoreError as error:
                log.warning("orders for customer failed: %s", error)
        if orders:
            dispatcher.utter_message(
                text="Which order is it about? Pick one, or type its number.",
                buttons=[{"title": order_choice_title(order),
                          "payload": intent_payload(intent, order_id=order.id)}
                         for order in orders])
        else:
            dispatcher.utter_message(
                text="What's your order number? You'll find it in your order confirmation "
                     "email; it looks like SC-100482.")
        return []


class ActionAskReturnItem(Action):
    def name(self) -> str:
        return "action_ask_return_item"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        order = _verified(tracker)
        if order is None:
            return []
        left = returnable_lines(order, shop().returns_for_order(order.id))
        kept = [line.label() for line in order.lines if not line.returnable]
        text = "Which item would you like to return?"
        if kept:
            text += (" (" + ", ".join(kept) + " can't be returned for safety or hygiene "
                     "reasons.)")
        dispatcher.utter_message(text=text, buttons=[
            {"title": line.label(),
             "payload": intent_payload("start_return", return_item=str(line.line_id))}
            for line, _ in left
        ])
        return []


class ActionAskConfirm(Action):
    """The explicit yes before cancelling or re-addressing an order."""

    def name(self) -> str:
        return "action_ask_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        order = _verified(tracker)
        if order is None:
            return []
        if tracker.get_slot("order_task") == "cancel":
            items = "; ".join(f"{line.qty} × {line.label()}" for line in order.lines)  # noqa: RUF001 (typography shoppers read)
            text = (f"Shall I cancel order {order.id} ({items}; "
                    f"{money(order.total, order.currency)})? You'd get a full refund within 3 "
                    "working days.")
            yes, no = "Yes, cancel it", "No, keep it"
        else:
            address = Address.model_validate_json(tracker.get_slot("new_address"))
            text = (f"Shall I change the delivery address of order {order.id} from "
                    f"{order.shipping_address.one_line()} to {address.one_line()}?")
            yes, no = "Yes, change it", "No, leave it"
        dispatcher.utter_message(text=text, buttons=[{"title": yes, "payload": "/affirm"},
                                                     {"title": no, "payload": "/deny"}])
        return []


class ActionOrderTask(Action):
    """The form is done: do the task for the verified order and say what happened."""

    def name(self) -> str:
        return "action_order_task"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        task = tracker.get_slot("order_task")
        done = [SlotSet("order_task", None)] + [SlotSet(slot, None) for slot in TASK_STATE]
        if task is None or tracker.get_slot("stop_form"):
            return done  # the form was stopped and the bot already said why
        if _locked(tracker):
            _offer_person(dispatcher, LOCKED)
            return [*done, SlotSet("human_offered", True)]
        try:
            order = _verified(tracker)
            if order is None:  # never reveal anything about an unproven order
                log.error("conversation=%s task %s without a verified order",
                          tracker.sender_id, task)
                return done
            self._do(task, order, dispatcher, tracker)
        except NotAllowed as refusal:
            dispatcher.utter_message(text=refusal.message, buttons=[HUMAN_BUTTON])
        except StoreError as error:
            log.warning("conversation=%s %s failed: %s", tracker.sender_id, task, error)
            dispatcher.utter_message(text=UNREACHABLE, buttons=[HUMAN_BUTTON])
        return done

    def _do(self, task: str, order: Order, dispatcher: CollectingDispatcher,
            tracker: Tracker) -> None:
        store = shop()
        conversation = tracker.sender_id
        if task == "track":
            dispatcher.utter_message(text=describe_order(order), buttons=_follow_ups(order))
        elif task == "refund":
            returns = store.returns_for_order(order.id)
            buttons = [] if returns or order.status != "delivered" else [
                {"title": "Start a return",
                 "payload": intent_payload("start_return", order_id=order.id)}]
            dispatcher.utter_message(text=describe_refunds(order, returns), buttons=buttons)
        elif task == "return":
            line_id = int(tracker.get_slot("return_item"))
            left = dict((line.line_id, qty) for line, qty in
                        returnable_lines(order, store.returns_for_order(order.id)))
            created = store.create_return(
                order.id, [ReturnLine(line_id=line_id, qty=left.get(line_id, 1))],
                tracker.get_slot("return_reason") or "not given", conversation)
            dispatcher.utter_message(text=return_next_steps(created, order))
        elif task == "cancel":
            if tracker.get_slot("confirm"):
                cancelled = store.cancel_order(order.id, conversation)
                dispatcher.utter_message(
                    text=f"Done: order {cancelled.id} is cancelled. We'll refund "
                         f"{money(cancelled.total, cancelled.currency)} to your original "
                         "payment method within 3 working days.")
            else:
                dispatcher.utter_message(text=f"Okay, I've left order {order.id} as it is.")
        elif task == "address":
            if tracker.get_slot("confirm"):
                address = Address.model_validate_json(tracker.get_slot("new_address"))
                changed = store.change_address(order.id, address, conversation)
                dispatcher.utter_message(
                    text=f"Done: order {changed.id} will go to "
                         f"{changed.shipping_address.one_line()}.")
            else:
                dispatcher.utter_message(
                    text=f"Okay, order {order.id} still goes to "
                         f"{order.shipping_address.one_line()}.")


def _follow_ups(order: Order) -> list[dict[str, str]]:
    """What a shopper usually wants next for an order in this state."""
    if order.status in ("placed", "processing"):
        return [{"title": "Cancel it", "payload": intent_payload("cancel_order",
                                                                  order_id=order.id)},
                {"title": "Change the address",
                 "payload": intent_payload("change_shipping_address", order_id=order.id)}]
    if order.status == "delivered":
        return [{"title": "Return something",
                 "payload": intent_payload("start_return", order_id=order.id)}]
    return []
