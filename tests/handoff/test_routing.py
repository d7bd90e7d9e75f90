"""Routing rules, one by one: who gets the next chat, queue order, the wait estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from handoff.routing import (
    AgentLoad,
    estimate_wait,
    handle_time,
    pick_agent,
    priority_for,
    queue_order,
)


def test_least_busy_relative_to_capacity_wins() -> None:
    agents = [
        AgentLoad("a", "online", capacity=2, load=1),  # half full
        AgentLoad("b", "online", capacity=5, load=2),  # 40 % full
    ]
    choice = pick_agent(agents)
    assert choice is not None and choice.id == "b"


def test_away_offline_and_full_agents_get_nothing() -> None:
    agents = [
        AgentLoad("away", "away", capacity=3, load=0),
        AgentLoad("off", "offline", capacity=3, load=0),
        AgentLoad("full", "online", capacity=2, load=2),
    ]
    assert pick_agent(agents) is None


def test_ties_go_to_who_waited_longest_for_a_chat() -> None:
    agents = [
        AgentLoad("recent", "online", capacity=2, load=0, last_assigned_at=200.0),
        AgentLoad("idle", "online", capacity=2, load=0, last_assigned_at=100.0),
    ]
    choice = pick_agent(agents)
    assert choice is not None and choice.id == "idle"


def test_a_chat_goes_to_a_free_agent_who_speaks_its_language_first() -> None:
    agents = [
        AgentLoad("idle", "online", capacity=3, load=0),
        AgentLoad("jean", "online", capacity=3, load=2, languages=frozenset({"fr", "en"})),
        AgentLoad("away", "away", capacity=3, load=0, languages=frozenset({"de"})),
    ]
    assert getattr(pick_agent(agents, "fr"), "id", None) == "jean"  # busier, but speaks it
    assert getattr(pick_agent(agents, "en"), "id", None) == "jean"
    assert getattr(pick_agent(agents, None), "id", None) == "idle"
    # Nobody free speaks German (the one who does is away): anyone free takes it.
    assert getattr(pick_agent(agents, "de"), "id", None) == "idle"
    full = [AgentLoad("idle", "online", capacity=3, load=0),
            AgentLoad("jean", "online", capacity=1, load=1, languages=frozenset({"fr"}))]
    assert getattr(pick_agent(full, "fr"), "id", None) == "idle"


def test_checkout_and_complaints_jump_the_queue_but_fifo_within_a_priority() -> None:
    checkout = priority_for({"type": "checkout", "cart": {"items": [{"sku": "X"}]}}, "requested")
    product = priority_for({"type": "product"}, "requested")
    complaint = priority_for({"type": "product"}, "complaint")
    assert checkout > complaint > product == 0
    chats = [
        Chat(1, product, queued_at=10.0),
        Chat(2, checkout, queued_at=30.0),
        Chat(3, product, queued_at=5.0),
        Chat(4, complaint, queued_at=20.0),
    ]
    assert [c.id for c in queue_order(chats)] == [2, 4, 3, 1]


@dataclass(frozen=True)
class Chat:
    id: int
    priority: int
    queued_at: float


def test_wait_grows_with_position_and_shrinks_with_seats() -> None:
    one = [AgentLoad("a", "online", capacity=2, load=2)]
    two = [*one, AgentLoad("b", "online", capacity=2, load=2)]
    assert estimate_wait(1, one, 240) == 120
    assert estimate_wait(2, one, 240) == 240
    assert estimate_wait(2, two, 240) == 120
    assert math.isinf(estimate_wait(1, [AgentLoad("a", "away", 2, 0)], 240))


def test_handle_time_uses_the_median_once_there_are_enough_chats() -> None:
    assert handle_time([30, 40], default=240) == 240
    assert handle_time([10, 20, 30, 40, 1000], default=240) == 30
