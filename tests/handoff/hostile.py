"""Hypothesis strategies for what a hostile client sends: shared by the property tests
(tests/handoff/test_hostile_input.py) and the fuzz run against a live gateway
(bench/fuzz_gateway.py).

Valid frames of every kind either socket takes, spoilt a value at a time; arbitrary
JSON values; Unicode with lone surrogates and control characters; huge, negative and
non-finite numbers.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from handoff.protocol import MAX_ID

__all__ = ["FIELDS", "LEAVES", "VALID", "at", "encode", "frames", "replaced", "spoilt",
           "strings", "texts", "values"]

FIELDS = ["type", "client_id", "text", "payload", "conversation_id", "resume_token",
          "last_seq", "page", "identity", "token", "on", "email", "handoff_id", "score",
          "comment", "status", "agent_id", "resolution", "ticket_id", "url", "cart", "items",
          "total", "price", "qty", "sku", "title"]

#: Characters a hostile client picks: lone surrogates, NUL and other controls, the
#: byte-order mark, a character outside the BMP, and everything else Unicode has.
chars = st.one_of(
    st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\x1b", "\ufeff",
                     "\u2028", "\U0001f600", "\\", '"']),
    st.characters(exclude_categories=()),
)


def strings(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    # Joined by hand: st.text() leaves surrogates out of a mixed alphabet.
    return st.lists(chars, min_size=min_size, max_size=max_size).map("".join)


texts = strings()
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, MAX_ID, MAX_ID + 1, -(2**63) - 1, 2**64, 10**20,
                     float("inf"), float("-inf"), float("nan"), 1e308, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=4),
    max_leaves=20,
)
CONVERSATION = "0123456789abcdef" * 2
PAGE = {"url": "https://shop.example/p/1", "type": "product", "sku": "A1", "title": "Mug",
        "cart": {"items": [{"sku": "A1", "qty": 2, "price": 9.5}], "total": 19.0,
                 "currency": "EUR"}}
#: One valid frame of every kind either socket takes, to be spoilt a field at a time.
VALID = [
    {"type": "hello", "conversation_id": CONVERSATION, "resume_token": "t" * 32,
     "last_seq": 3, "page": PAGE, "identity": "a.b.c"},
    {"type": "message", "client_id": "c1", "text": "where is my order?", "payload": "/x"},
    {"type": "ping"},
    {"type": "typing", "on": True},
    {"type": "offline_message", "client_id": "c2", "email": "a@shop.example", "text": "call"},
    {"type": "csat", "client_id": "c3", "handoff_id": 7, "score": 4, "comment": "fine"},
    {"type": "leave_queue", "client_id": "c4"},
    {"type": "page", "page": PAGE},
    {"type": "identity", "token": "a.b.c"},
    {"type": "auth", "token": "s" * 43},
    {"type": "presence", "status": "online"},
    {"type": "open", "conversation_id": CONVERSATION, "last_seq": 0},
    {"type": "claim", "conversation_id": CONVERSATION},
    {"type": "note", "conversation_id": CONVERSATION, "client_id": "n1", "text": "vip"},
    {"type": "transfer", "conversation_id": CONVERSATION, "agent_id": "ag1"},
    {"type": "close", "conversation_id": CONVERSATION, "resolution": "resolved"},
    {"type": "ticket_done", "ticket_id": 12},
]


def spoilt(value: Any) -> st.SearchStrategy[Any]:
    """Something in the place of ``value``: mostly the same kind of thing gone bad."""
    if isinstance(value, str):
        inserted = st.tuples(st.integers(0, len(value)), strings(1, 3)
                             ).map(lambda cut: value[: cut[0]] + cut[1] + value[cut[0]:])
        return st.one_of(inserted, inserted, texts, numbers, values)
    if isinstance(value, bool):
        return values
    if isinstance(value, int | float):
        return st.one_of(numbers, numbers, values)
    return values


def leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a valid frame holds a value (not its ``type``), at any depth."""
    if isinstance(node, dict):
        return [p for key, item in node.items() if key != "type"
                for p in leaf_paths(item, (*path, key))]
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in leaf_paths(item, (*path, i))]
    return [path]


LEAVES = [(frame, path) for frame in VALID for path in leaf_paths(frame)]


def replaced(frame: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(frame))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def at(frame: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = frame
    for key in path:
        node = node[key]
    return node


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    """A valid frame with several of its values spoilt, and maybe fields added."""
    frame = draw(st.sampled_from(VALID))
    for path in leaf_paths(frame):
        if draw(st.integers(0, 3)) == 0:
            frame = replaced(frame, path, draw(spoilt(at(frame, path))))
    extra = draw(st.dictionaries(st.sampled_from(FIELDS[1:]) | texts, values, max_size=2))
    return {**frame, **extra}


def encode(value: Any, overflow: bool = False) -> str:
    """As a client would put it on the wire: JSON text, lone surrogates as \\u escapes,
    infinities as the non-standard literals a careless encoder writes, or with
    ``overflow`` as numbers too large for a float (``1e999``, valid JSON)."""
    raw = json.dumps(value, allow_nan=True)
    return raw.replace("Infinity", "1e999") if overflow else raw
