"""The order form's decisions, run with rasa-sdk's real dispatcher and tracker on a demo shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.orders import ActionOrderTask, ValidateOrderForm
from actions.shop import use_shop
from bot.escalation import parse_handoff
from bot.settings import PROJECT_DIR, Settings
from bot.store.demo import load_demo
from bot.store.models import Order
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop
from bot.store.updates import parse_order_verified


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteShop]:
    shop = SQLiteShop(tmp_path / "shop.db", window=ReturnWindow(30, 60))
    load_demo(shop, PROJECT_DIR / "data" / "shop", datetime.now(UTC))
    use_shop(shop, Settings(var_dir=tmp_path))
    yield shop
    shop.close()


def tracker(text: str = "", intent: str = "track_order", confidence: float = 0.99,
            **slots: Any) -> Tracker:
    parse = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}
    base = {"failed_lookups": 0.0, "human_offered": False}
    return Tracker("conv-t", {**base, **slots}, parse,
                   [{"event": "user", "text": text, "parse_data": parse}], False, None,
                   {"name": "order_form"}, "action_listen")


def someone_elses(store: SQLiteShop, status: str) -> Order:
    for n in range(2, 30):
        for order in store.orders_for_customer(f"cus_{n:04d}", 100):
            if order.status == status:
                return order
    raise AssertionError(status)


async def required(**slots: Any) -> list[str]:
    return await ValidateOrderForm().required_slots([], CollectingDispatcher(),
                                                    tracker(**slots), {})


async def test_each_task_asks_for_proof_then_what_it_needs(store: SQLiteShop) -> None:
    assert await required(order_task="track") == ["order_id", "email"]
    assert await required(order_task="return", order_id="SC-1", verified_order="SC-1") == \
        ["order_id", "return_item", "return_reason"]
    assert await required(order_task="address") == ["order_id", "email", "new_address",
                                                    "confirm"]
    assert await required(order_task="cancel", failed_lookups=5.0) == []
    assert await required(order_task="cancel", stop_form=True) == []
    assert await required(order_task=None) == []


def test_a_wrong_email_clears_both_and_counts(store: SQLiteShop) -> None:
    order = someone_elses(store, "shipped")
    dispatcher = CollectingDispatcher()
    result = ValidateOrderForm().validate_email(
        "it's wrong@example.com", dispatcher, tracker(order_task="track", order_id=order.id), {})
    assert result == {"failed_lookups": 1.0, "order_id": None, "email": None}
    (message,) = dispatcher.messages
    assert "couldn't find an order" in message["text"] and order.carrier not in message["text"]


def test_the_fifth_failure_stops_lookups_and_offers_a_person(store: SQLiteShop) -> None:
    order = someone_elses(store, "shipped")
    dispatcher = CollectingDispatcher()
    result = ValidateOrderForm().validate_email(
        "wrong@example.com", dispatcher,
        tracker(order_task="track", order_id=order.id, failed_lookups=4.0), {})
    assert result["failed_lookups"] == 5.0 and result["human_offered"] is True
    assert result["order_task"] is None
    assert any(b["payload"] == "/human_handoff" for b in dispatcher.messages[0]["buttons"])


def test_the_right_email_verifies_in_any_case(store: SQLiteShop) -> None:
    order = someone_elses(store, "shipped")
    result = ValidateOrderForm().validate_email(
        order.email.upper(), CollectingDispatcher(),
        tracker(order_task="track", order_id=order.id), {})
    assert result["verified_order"] == order.id


def test_the_demo_customer_with_an_accented_email_proves_their_order(store: SQLiteShop) -> None:
    mateo = store.get_customer("cus_0004")
    assert mateo is not None and mateo.email == "mateo.garcía@example.org"
    order = store.orders_for_customer(mateo.id, 1)[0]
    text = f"it's {mateo.email}"
    # The NLU's entity may stop at the í; the whole message is read again.
    result = ValidateOrderForm().validate_email(
        "a@example.org", CollectingDispatcher(),
        tracker(text, order_task="track", order_id=order.id), {})
    assert result["email"] == mateo.email and result["verified_order"] == order.id


def test_a_vouched_for_customer_needs_no_email_for_their_own_order(store: SQLiteShop) -> None:
    own = store.orders_for_customer("cus_0001", 1)[0]
    other = someone_elses(store, "delivered")
    form = ValidateOrderForm()
    mine = form.validate_order_id(own.id, CollectingDispatcher(),
                                  tracker(order_task="track", customer_id="cus_0001"), {})
    theirs = form.validate_order_id(other.id, CollectingDispatcher(),
                                    tracker(order_task="track", customer_id="cus_0001"), {})
    assert mine == {"order_id": own.id, "verified_order": own.id}
    assert theirs == {"order_id": other.id}


def test_asking_for_a_person_instead_of_an_answer_hands_over(store: SQLiteShop) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateOrderForm().validate_order_id(
        "I want to talk to a human", dispatcher,
        tracker("I want to talk to a human", intent="human_handoff", order_task="track"), {})
    assert result == {"order_id": None, "stop_form": True, "human_offered": False}
    handoffs = [parse_handoff(m.get("custom")) for m in dispatcher.messages if m.get("custom")]
    assert handoffs == [{"reason": "shopper asked for a person", "trigger": "requested"}]


def test_an_unclear_answer_is_asked_again(store: SQLiteShop) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateOrderForm().validate_order_id(
        "hmm", dispatcher, tracker("hmm", intent="nlu_fallback", confidence=0.3,
                                   order_task="track"), {})
    assert result == {"order_id": None}
    assert "SC-100482" in dispatcher.messages[0]["text"]


async def test_the_task_never_runs_for_an_unverified_order(store: SQLiteShop) -> None:
    order = someone_elses(store, "processing")
    dispatcher = CollectingDispatcher()
    await ActionOrderTask().run(dispatcher, tracker(order_task="cancel", order_id=order.id,
                                                    confirm=True), {})
    assert dispatcher.messages == []
    assert store.get_order(order.id) == order


def test_a_proved_order_is_told_to_the_gateway_once(store: SQLiteShop) -> None:
    order = someone_elses(store, "shipped")
    form = ValidateOrderForm()

    def notices(dispatcher: CollectingDispatcher) -> list[str | None]:
        return [parse_order_verified(m.get("custom")) for m in dispatcher.messages
                if m.get("custom")]

    by_email, wrong, again = CollectingDispatcher(), CollectingDispatcher(), \
        CollectingDispatcher()
    form.validate_email(order.email, by_email, tracker(order_task="track",
                                                       order_id=order.id), {})
    form.validate_email("wrong@example.com", wrong, tracker(order_task="track",
                                                            order_id=order.id), {})
    form.validate_order_id(order.id, again, tracker(order_task="track",
                                                    verified_order=order.id), {})
    assert notices(by_email) == [order.id]
    assert notices(wrong) == [] and notices(again) == []
    own = store.orders_for_customer("cus_0001", 1)[0]
    signed_in = CollectingDispatcher()
    form.validate_order_id(own.id, signed_in, tracker(order_task="track",
                                                      customer_id="cus_0001"), {})
    assert notices(signed_in) == [own.id]
