"""Routing decisions for the live-agent queue, as pure functions.

Who is on the rota (signed in, online or away), who gets the next chat, in which
order chats leave the queue, and how long a shopper should expect to wait. The desk
(:mod:`handoff.desk`) applies them; keeping them free of I/O lets the rules be tested
one by one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # a record type only
    from handoff.db.agents import Agent

__all__ = [
    "ONLINE",
    "PRESENCES",
    "AgentLoad",
    "Queued",
    "Rota",
    "estimate_wait",
    "handle_time",
    "pick_agent",
    "priority_for",
    "queue_order",
]

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
PRESENCES = (ONLINE, AWAY, OFFLINE)

#: Chats from the checkout come first: a shopper stuck there is a sale about to be lost.
PAGE_PRIORITY = {"checkout": 20, "cart": 10}
#: A cart with something in it is worth a little more than an empty one.
CART_PRIORITY = 5
#: Unhappy shoppers are seen before curious ones.
TRIGGER_PRIORITY = {"complaint": 5, "verification_failed": 3}


@dataclass(frozen=True)
class AgentLoad:
    """An agent as routing sees them."""

    id: str
    presence: str
    capacity: int
    load: int
    #: When they were last given a chat (0 if never): ties go to who waited longest.
    last_assigned_at: float = 0.0
    #: The languages they speak (empty: not said).
    languages: frozenset[str] = frozenset()

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.load)


class Rota:
    """The agents signed in to this gateway, their presence and when each was last given
    a chat. Presence is not stored: a console sets it while connected, and an agent
    leaves the rota a grace period after their last console closed (the desk's timer)."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.presence: dict[str, str] = {}
        self.last_assigned: dict[str, float] = {}

    def join(self, agent: Agent) -> None:
        """A console signed in: the agent is online unless they said otherwise."""
        self.agents[agent.id] = agent
        self.presence.setdefault(agent.id, ONLINE)

    def set(self, agent_id: str, presence: str) -> None:
        self.presence[agent_id] = presence

    def leave(self, agent_id: str) -> None:
        self.presence.pop(agent_id, None)

    def presence_of(self, agent_id: str) -> str:
        return self.presence.get(agent_id, OFFLINE)

    def signed_in(self, agent_id: str) -> bool:
        return agent_id in self.presence

    def online(self) -> list[str]:
        return [a for a, presence in self.presence.items() if presence == ONLINE]

    def assigned(self, agent_id: str, now: float) -> None:
        self.last_assigned[agent_id] = now

    def loads(self, chats: Mapping[str, int]) -> list[AgentLoad]:
        """Everyone on the rota as routing sees them, given each one's open chats."""
        return [
            AgentLoad(agent_id, presence, self.agents[agent_id].capacity,
                      chats.get(agent_id, 0), self.last_assigned.get(agent_id, 0.0),
                      frozenset(self.agents[agent_id].languages))
            for agent_id, presence in self.presence.items()
            if agent_id in self.agents
        ]


class Queued(Protocol):
    """A waiting chat as routing sees it (a handoff row)."""

    @property
    def id(self) -> int: ...

    @property
    def priority(self) -> int: ...

    @property
    def queued_at(self) -> float: ...


QueuedT = TypeVar("QueuedT", bound=Queued)


def priority_for(page: Mapping[str, Any] | None, trigger: str) -> int:
    """Queue priority from where the shopper is and why they need a person."""
    page = page or {}
    score = PAGE_PRIORITY.get(str(page.get("type") or ""), 0)
    cart = page.get("cart")
    if isinstance(cart, Mapping) and cart.get("items"):
        score += CART_PRIORITY
    return score + TRIGGER_PRIORITY.get(trigger, 0)


def queue_order(chats: Iterable[QueuedT]) -> list[QueuedT]:
    """Highest priority first; first come, first served within a priority."""
    return sorted(chats, key=lambda c: (-c.priority, c.queued_at, c.id))


def pick_agent(agents: Iterable[AgentLoad], lang: str | None = None) -> AgentLoad | None:
    """The least-busy online agent with a free seat; ``None`` if nobody can take a chat.

    "Least busy" is relative to capacity (2 of 5 is less busy than 1 of 2);
    ties go to the agent who has gone longest without a new chat. With the chat's
    ``lang``, an agent with a free seat who speaks it goes first, however busy; if none
    is free, anyone free takes it (a wait for a speaker is worse than English).
    """
    candidates = [a for a in agents if a.presence == ONLINE and a.free > 0]
    if not candidates:
        return None
    speakers = [a for a in candidates if lang is not None and lang in a.languages]
    candidates = speakers or candidates
    return min(candidates, key=lambda a: (a.load / a.capacity, a.last_assigned_at, a.id))


def handle_time(durations: Sequence[float], default: float, min_samples: int = 5) -> float:
    """Typical length of an agent chat: the median of recent ones, once there are enough."""
    if len(durations) < min_samples:
        return default
    return float(statistics.median(durations))


def estimate_wait(position: int, agents: Iterable[AgentLoad], handle_seconds: float) -> float:
    """Seconds until the chat at ``position`` (1 = next) is likely picked up.

    A seat frees up every ``handle_seconds / seats`` on average, where seats
    are the online agents' capacities; the chat needs ``position`` of them.
    With nobody online there is no estimate (``inf``).
    """
    seats = sum(a.capacity for a in agents if a.presence == ONLINE)
    if seats == 0:
        return math.inf
    return position * handle_seconds / seats
