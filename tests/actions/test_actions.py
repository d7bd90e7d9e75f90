"""Custom actions run with rasa-sdk's real dispatcher and tracker; returned events compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from ruamel.yaml import YAML

from actions.fallback import ActionFallback
from actions.handoff import ActionDeclineHuman, ActionHandoff
from bot.escalation import parse_handoff
from bot.settings import PROJECT_DIR


@pytest.fixture(scope="module")
def domain() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(Path(PROJECT_DIR / "bot" / "domain.yml"))
    return loaded


def user(intent: str, text: str = "...") -> dict[str, Any]:
    return {"event": "user", "text": text,
            "parse_data": {"intent": {"name": intent, "confidence": 0.4}, "entities": []}}


def tracker(events: list[dict[str, Any]], **slots: Any) -> Tracker:
    last = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker("shopper-1", {"human_offered": False, **slots}, last["parse_data"], events,
                   False, None, {}, "action_listen")


async def run(action: Any, events: list[dict[str, Any]], domain: dict[str, Any],
              **slots: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    result = await action.run(dispatcher, tracker(events, **slots), domain)
    return dispatcher.messages, result


async def test_first_miss_asks_to_rephrase(domain: dict[str, Any]) -> None:
    messages, events = await run(ActionFallback(), [user("nlu_fallback")], domain)
    assert [m["response"] for m in messages] == ["utter_ask_rephrase"]
    assert events == [SlotSet("human_offered", False)]


async def test_first_out_of_scope_says_so(domain: dict[str, Any]) -> None:
    messages, _ = await run(ActionFallback(), [user("out_of_scope")], domain)
    assert [m["response"] for m in messages] == ["utter_out_of_scope"]


async def test_second_miss_in_a_row_offers_a_person(domain: dict[str, Any]) -> None:
    history = [user("nlu_fallback"), {"event": "bot", "text": "?"}, user("out_of_scope")]
    messages, events = await run(ActionFallback(), history, domain)
    assert [m["response"] for m in messages] == ["utter_offer_human"]
    assert events == [SlotSet("human_offered", True)]
    # The offer the action points at really carries a "person" button.
    buttons = domain["responses"]["utter_offer_human"][0]["buttons"]
    assert {"title": "Talk to a person", "payload": "/human_handoff"} in buttons


async def test_handoff_on_request_emits_the_payload(domain: dict[str, Any]) -> None:
    messages, events = await run(ActionHandoff(), [user("human_handoff")], domain)
    # Only the payload: the gateway's desk tells the shopper whether a person is coming
    # (queued) or nobody is online, so the bot must not announce it as well.
    assert len(messages) == 1 and not messages[0].get("response")
    assert parse_handoff(messages[0]["custom"]) == {
        "reason": "shopper asked for a person", "trigger": "requested"}
    assert events == [SlotSet("human_offered", False)]


async def test_handoff_after_the_offer_names_the_misses(domain: dict[str, Any]) -> None:
    history = [user("nlu_fallback"), user("nlu_fallback"), user("affirm")]
    messages, _ = await run(ActionHandoff(), history, domain, human_offered=True)
    handoff = parse_handoff(messages[0]["custom"])
    assert handoff == {"reason": "bot did not understand 2 messages in a row",
                       "trigger": "fallback"}


async def test_handoff_after_a_complaint(domain: dict[str, Any]) -> None:
    messages, _ = await run(ActionHandoff(), [user("complain")], domain)
    assert parse_handoff(messages[0]["custom"]) == {
        "reason": "shopper complained", "trigger": "complaint"}


async def test_declining_withdraws_the_offer(domain: dict[str, Any]) -> None:
    messages, events = await run(ActionDeclineHuman(), [user("deny")], domain, human_offered=True)
    assert [m["response"] for m in messages] == ["utter_decline_human"]
    assert events == [SlotSet("human_offered", False)]


def test_every_response_an_action_uses_is_in_the_domain(domain: dict[str, Any]) -> None:
    used = {"utter_ask_rephrase", "utter_out_of_scope", "utter_offer_human",
            "utter_decline_human"}
    assert used <= set(domain["responses"])
    assert {"action_fallback", "action_handoff", "action_decline_human"} <= set(domain["actions"])
