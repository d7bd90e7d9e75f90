"""Support figures for shop owners: does the bot help, do people answer fast, are shoppers happy?

Read-only over what the product already stores: the gateway database
(conversations, handoffs with their queue/assign/first-response times,
resolutions, CSAT, offline tickets, the shop's order updates), the knowledge-base log (answers and
"did this help?") and Rasa's tracker store (each shopper message's intent).
The aggregation is pure (:func:`summarise`) so it is tested on rows with
known answers; :func:`build_report` only fetches the rows.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.intents import FALLBACK_INTENT
from bot.readonly import read_rows
from handoff.db.orders import CHANNELS, order_events_between
from handoff.db.reads import (
    conversation_languages,
    conversations_with_messages,
    handoffs_between,
    tickets_between,
)

__all__ = ["CSV_SECTIONS", "HandoffRow", "ReportInput", "UserTurn", "build_report", "csv_rows",
           "summarise"]

MISSES = frozenset({FALLBACK_INTENT, "out_of_scope"})


@dataclass(frozen=True)
class HandoffRow:
    conversation_id: str
    trigger: str
    queued_at: float
    assigned_at: float | None
    first_response_at: float | None
    resolution: str | None
    csat_score: int | None
    agent: str | None = None  # the agent who had the chat last (name)
    ended_at: float | None = None


@dataclass(frozen=True)
class UserTurn:
    conversation_id: str
    at: float
    intent: str | None
    confidence: float | None


@dataclass
class ReportInput:
    """Everything the report reads, already limited to the period."""

    conversations: dict[str, float] = field(default_factory=dict)  # id → created_at
    handoffs: list[HandoffRow] = field(default_factory=list)
    tickets: int = 0
    # (ts, conversation id, outcome) and (ts, conversation id, helpful)
    kb_answers: list[tuple[float, str, str]] = field(default_factory=list)
    kb_feedback: list[tuple[float, str, bool]] = field(default_factory=list)
    turns: list[UserTurn] = field(default_factory=list)
    # (event type, channel) of the shop's order updates
    order_updates: list[tuple[str, str]] = field(default_factory=list)
    # conversation id → the language it was in (conversations without one: English)
    languages: dict[str, str] = field(default_factory=dict)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _quantiles(values: list[float]) -> dict[str, float | None]:
    """Median and p90 (nearest rank) of durations in seconds."""
    if not values:
        return {"n": 0, "median": None, "p90": None}
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(0.9 * (len(ordered) - 1))))
    return {"n": len(ordered), "median": round(statistics.median(ordered), 1),
            "p90": round(ordered[index], 1)}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures(conversations: Iterable[str], handoffs: list[HandoffRow],
             turns: list[UserTurn], feedback: list[tuple[float, str, bool]],
             answers: list[tuple[float, str, str]]) -> dict[str, Any]:
    talked = set(conversations)
    handed = {h.conversation_id for h in handoffs if h.conversation_id in talked}
    helpful = sum(1 for _, _, ok in feedback if ok)
    misses = sum(1 for t in turns if t.intent in MISSES)
    return {
        "conversations": len(talked),
        "handoffs": len(handed),
        "containment_rate": _rate(len(talked) - len(handed), len(talked)),
        "handoff_rate": _rate(len(handed), len(talked)),
        "handoff_reasons": dict(Counter(h.trigger for h in handoffs).most_common()),
        **_people(handoffs),
        "kb": {"answers": sum(1 for _, _, outcome in answers if outcome == "answer"),
               "helpful": helpful, "not_helpful": len(feedback) - helpful,
               "helpful_ratio": _rate(helpful, len(feedback))},
        "shopper_messages": len(turns),
        "fallback_rate": _rate(misses, len(turns)),
    }


def _people(handoffs: list[HandoffRow]) -> dict[str, Any]:
    """What happened once a person was asked for: waits, first answers, outcomes, CSAT."""
    scores = [h.csat_score for h in handoffs if h.csat_score is not None]
    return {
        "queue_wait_seconds": _quantiles([h.assigned_at - h.queued_at for h in handoffs
                                          if h.assigned_at is not None]),
        "first_response_seconds": _quantiles([h.first_response_at - h.assigned_at
                                              for h in handoffs if h.first_response_at
                                              is not None and h.assigned_at is not None]),
        "resolutions": dict(Counter(h.resolution for h in handoffs if h.resolution)
                            .most_common()),
        "csat": {"responses": len(scores),
                 "average": round(statistics.mean(scores), 2) if scores else None,
                 "distribution": {str(n): scores.count(n) for n in range(1, 6)}},
    }


def _order_updates(updates: list[tuple[str, str]]) -> dict[str, Any]:
    """The shop's order updates: how many, of which kind, and where they reached the
    shopper (their conversation, a mail, or nowhere)."""
    return {"total": len(updates),
            "by_type": dict(Counter(kind for kind, _ in updates).most_common()),
            "by_channel": {channel: sum(1 for _, c in updates if c == channel)
                           for channel in CHANNELS}}


def _within(data: ReportInput, ids: set[str]) -> dict[str, Any]:
    """The figures of just these conversations."""
    return _figures(ids, [h for h in data.handoffs if h.conversation_id in ids],
                    [t for t in data.turns if t.conversation_id in ids],
                    [f for f in data.kb_feedback if f[1] in ids],
                    [a for a in data.kb_answers if a[1] in ids])


def summarise(data: ReportInput, since: datetime, until: datetime) -> dict[str, Any]:
    """The whole report as JSON-ready data: totals, per day, per intent, per agent.

    A day's figures are those of the conversations that started that day; an
    intent's are those of the conversations in which a shopper message was read
    as that intent; an agent's are those of the chats they had last; a language's
    are those of the conversations in it.
    """
    by_day: dict[str, set[str]] = defaultdict(set)
    for conversation_id, created in data.conversations.items():
        by_day[_day(created)].add(conversation_id)
    days = [{"day": day, **_within(data, by_day[day])} for day in sorted(by_day)]
    intents: dict[str, list[UserTurn]] = defaultdict(list)
    for turn in data.turns:
        intents[turn.intent or "unknown"].append(turn)
    per_intent = []
    for name, turns in sorted(intents.items(), key=lambda item: (-len(item[1]), item[0])):
        confidences = [t.confidence for t in turns if t.confidence is not None]
        per_intent.append({
            "intent": name, "messages": len(turns), "share": _rate(len(turns), len(data.turns)),
            "mean_confidence": round(statistics.mean(confidences), 3) if confidences else None,
            **_within(data, {t.conversation_id for t in turns}),
        })
    by_agent: dict[str, list[HandoffRow]] = defaultdict(list)
    for handoff in data.handoffs:
        if handoff.agent:
            by_agent[handoff.agent].append(handoff)
    agents = [
        {"agent": name, "chats": len(chats), **_people(chats),
         "handling_seconds": _quantiles([h.ended_at - h.assigned_at for h in chats
                                         if h.ended_at is not None and h.assigned_at
                                         is not None])}
        for name, chats in sorted(by_agent.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    by_language: dict[str, set[str]] = defaultdict(set)
    for conversation_id in data.conversations:
        by_language[data.languages.get(conversation_id, "en")].add(conversation_id)
    languages = [{"lang": lang, **_within(data, ids)}
                 for lang, ids in sorted(by_language.items(),
                                         key=lambda item: (-len(item[1]), item[0]))]
    return {
        "period": {"from": since.isoformat(), "until": until.isoformat()},
        "totals": {**_figures(data.conversations, data.handoffs, data.turns,
                              data.kb_feedback, data.kb_answers),
                   "offline_tickets": data.tickets,
                   "order_updates": _order_updates(data.order_updates)},
        "days": days,
        "intents": per_intent,
        "agents": agents,
        "languages": languages,
    }


#: The CSV exports: one row per day, intent or agent, the same figures flattened.
_PEOPLE = ["queue_wait_median", "queue_wait_p90", "first_response_median",
           "first_response_p90", "resolutions", "csat_average", "csat_responses"]
_CONVERSATIONS = ["conversations", "handoffs", "containment_rate", "handoff_rate",
                  "handoff_reasons", *_PEOPLE, "kb_answers", "kb_helpful", "kb_not_helpful",
                  "kb_helpful_ratio", "shopper_messages", "fallback_rate"]
CSV_SECTIONS = {
    "days": ["day", *_CONVERSATIONS],
    "intents": ["intent", "messages", "share", "mean_confidence", *_CONVERSATIONS],
    "agents": ["agent", "chats", *_PEOPLE, "handling_median", "handling_p90"],
    "languages": ["lang", *_CONVERSATIONS],
}


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in entry.items():
        if key.endswith("_seconds"):
            row[key.removesuffix("_seconds") + "_median"] = value["median"]
            row[key.removesuffix("_seconds") + "_p90"] = value["p90"]
        elif key in ("handoff_reasons", "resolutions"):
            row[key] = "; ".join(f"{name}: {count}" for name, count in value.items())
        elif key == "csat":
            row.update(csat_average=value["average"], csat_responses=value["responses"])
        elif key == "kb":
            row.update(kb_answers=value["answers"], kb_helpful=value["helpful"],
                       kb_not_helpful=value["not_helpful"],
                       kb_helpful_ratio=value["helpful_ratio"])
        else:
            row[key] = value
    return row


def csv_rows(report: dict[str, Any], section: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of one section of ``report`` (days, intents, agents), for CSV."""
    if section not in CSV_SECTIONS:
        raise ValueError(f"unknown section {section!r}: use one of {', '.join(CSV_SECTIONS)}")
    columns = CSV_SECTIONS[section]
    return columns, [{c: row.get(c) for c in columns}
                     for row in map(_flat, report[section])]


def _intent_of(data: str | None) -> tuple[str | None, float | None]:
    try:
        intent = (json.loads(data or "{}").get("parse_data") or {}).get("intent") or {}
    except ValueError:
        return None, None
    confidence = intent.get("confidence")
    return intent.get("name"), float(confidence) if confidence is not None else None


def build_report(gateway_db: Path, kb_db: Path, tracker_db: Path,
                 since: datetime, until: datetime) -> dict[str, Any]:
    start, end = since.timestamp(), until.timestamp()
    conversations = conversations_with_messages(gateway_db, start, end)
    handoffs = [HandoffRow(*row) for row in handoffs_between(gateway_db, start, end)]
    tickets = tickets_between(gateway_db, start, end)
    kb_answers = [(row[0], row[1], row[2]) for row in read_rows(
        kb_db, "SELECT ts, conversation_id, outcome FROM kb_answers WHERE ts >= ? AND ts < ?",
        [start, end])]
    kb_feedback = [(row[0], row[1], bool(row[2])) for row in read_rows(
        kb_db, "SELECT ts, conversation_id, helpful FROM kb_feedback WHERE ts >= ? AND ts < ?",
        [start, end])]
    # Rasa's SQL tracker store: one row per event; user events carry the parse data.
    # Messages recorded while a person had the chat (metadata "to": "agent") are not
    # the bot's to understand and are left out.
    turns = []
    for sender, ts, intent_name, data in read_rows(
        tracker_db,
        "SELECT sender_id, timestamp, intent_name, data FROM events "
        "WHERE type_name = 'user' AND timestamp >= ? AND timestamp < ?", [start, end],
    ):
        parsed = json.loads(data or "{}")
        if (parsed.get("metadata") or {}).get("to") == "agent":
            continue
        name, confidence = _intent_of(data)
        turns.append(UserTurn(sender, ts, name or intent_name, confidence))
    return summarise(ReportInput(conversations, handoffs, tickets, kb_answers, kb_feedback,
                                 turns, order_events_between(gateway_db, start, end),
                                 conversation_languages(gateway_db, start, end)),
                     since, until)
