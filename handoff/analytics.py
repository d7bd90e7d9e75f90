"""Support figures for shop owners: does the bot help, do people answer fast, are shoppers happy?

Read-only over what the product already stores: the gateway database
(conversations, handoffs with their queue/assign/first-response times,
resolutions, CSAT, offline tickets), the knowledge-base log (answers and
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

__all__ = ["HandoffRow", "ReportInput", "UserTurn", "build_report", "summarise"]

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
    kb_answers: list[tuple[float, str]] = field(default_factory=list)  # (ts, outcome)
    kb_feedback: list[tuple[float, bool]] = field(default_factory=list)  # (ts, helpful)
    turns: list[UserTurn] = field(default_factory=list)


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
             turns: list[UserTurn], feedback: list[tuple[float, bool]],
             answers: list[tuple[float, str]]) -> dict[str, Any]:
    talked = set(conversations)
    handed = {h.conversation_id for h in handoffs if h.conversation_id in talked}
    scores = [h.csat_score for h in handoffs if h.csat_score is not None]
    helpful = sum(1 for _, ok in feedback if ok)
    misses = sum(1 for t in turns if t.intent in MISSES)
    return {
        "conversations": len(talked),
        "handoffs": len(handed),
        "containment_rate": _rate(len(talked) - len(handed), len(talked)),
        "handoff_rate": _rate(len(handed), len(talked)),
        "handoff_reasons": dict(Counter(h.trigger for h in handoffs).most_common()),
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
        "kb": {"answers": sum(1 for _, outcome in answers if outcome == "answer"),
               "helpful": helpful, "not_helpful": len(feedback) - helpful,
               "helpful_ratio": _rate(helpful, len(feedback))},
        "shopper_messages": len(turns),
        "fallback_rate": _rate(misses, len(turns)),
    }


def summarise(data: ReportInput, since: datetime, until: datetime) -> dict[str, Any]:
    """The whole report as JSON-ready data: totals, per day, per intent."""
    by_day_conversations: dict[str, list[str]] = defaultdict(list)
    for conversation_id, created in data.conversations.items():
        by_day_conversations[_day(created)].append(conversation_id)
    days = []
    for day in sorted(by_day_conversations):
        ids = set(by_day_conversations[day])
        figures = _figures(
            ids, [h for h in data.handoffs if h.conversation_id in ids],
            [t for t in data.turns if t.conversation_id in ids],
            [f for f in data.kb_feedback if _day(f[0]) == day],
            [a for a in data.kb_answers if _day(a[0]) == day],
        )
        days.append({"day": day, **{key: figures[key] for key in (
            "conversations", "handoffs", "containment_rate", "fallback_rate",
            "shopper_messages")}, "csat_average": figures["csat"]["average"]})
    intents: dict[str, list[UserTurn]] = defaultdict(list)
    for turn in data.turns:
        intents[turn.intent or "unknown"].append(turn)
    handed = {h.conversation_id for h in data.handoffs}
    per_intent = [
        {"intent": name, "messages": len(turns),
         "share": _rate(len(turns), len(data.turns)),
         "mean_confidence": round(statistics.mean(t.confidence for t in turns
                                                  if t.confidence is not None), 3)
         if any(t.confidence is not None for t in turns) else None,
         "conversations_handed_off": len({t.conversation_id for t in turns} & handed)}
        for name, turns in sorted(intents.items(), key=lambda item: -len(item[1]))
    ]
    return {
        "period": {"from": since.isoformat(), "until": until.isoformat()},
        "totals": {**_figures(data.conversations, data.handoffs, data.turns,
                              data.kb_feedback, data.kb_answers),
                   "offline_tickets": data.tickets},
        "days": days,
        "intents": per_intent,
    }


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
    conversations = {row[0]: row[1] for row in read_rows(
        gateway_db,
        "SELECT c.id, c.created_at FROM conversations c WHERE c.created_at >= ? "
        "AND c.created_at < ? AND EXISTS (SELECT 1 FROM client_messages m "
        "WHERE m.conversation_id = c.id)", [start, end])}
    handoffs = [HandoffRow(*row) for row in read_rows(
        gateway_db,
        "SELECT conversation_id, trigger, queued_at, assigned_at, first_response_at, "
        "resolution, csat_score FROM handoffs WHERE queued_at >= ? AND queued_at < ?",
        [start, end])]
    tickets = read_rows(gateway_db, "SELECT count(*) FROM tickets WHERE created_at >= ? "
                                "AND created_at < ?", [start, end])
    kb_answers = [(row[0], row[1]) for row in read_rows(
        kb_db, "SELECT ts, outcome FROM kb_answers WHERE ts >= ? AND ts < ?", [start, end])]
    kb_feedback = [(row[0], bool(row[1])) for row in read_rows(
        kb_db, "SELECT ts, helpful FROM kb_feedback WHERE ts >= ? AND ts < ?", [start, end])]
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
    return summarise(ReportInput(conversations, handoffs, int(tickets[0][0]) if tickets else 0,
                                 kb_answers, kb_feedback, turns), since, until)
