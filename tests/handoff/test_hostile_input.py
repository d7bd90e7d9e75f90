"""Hostile input at the gateway's edges, with no socket: every frame either parses into
something the gateway can store and send on, or is refused with a documented error code;
nothing else ever comes out of the parsers, the token checks or the bearer header.

Property-based (Hypothesis): arbitrary JSON values, Unicode with lone surrogates and
control characters, huge and negative numbers, NaN and infinities, deep nesting.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from handoff.agent_protocol import parse_agent_frame
from handoff.db.agents import AgentStore
from handoff.db.conversations import ConversationStore, is_token
from handoff.db.tokens import TokenStore
from handoff.exceptions import ProtocolError
from handoff.http import bearer_token
from handoff.protocol import MAX_JSON_DEPTH, load_json, parse_client_frame
from tests.handoff.hostile import (
    LEAVES,
    at,
    encode,
    frames,
    replaced,
    spoilt,
    strings,
    texts,
    values,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

def documented_codes() -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", DOCS.read_text().split("Error codes:", 1)[1]
                          .split("\n\n", 1)[0]))


CODES = documented_codes()


def storable(value: Any) -> None:
    """Raise unless every string and number in ``value`` can go into SQLite and out as
    UTF-8 JSON: what the gateway does with whatever a frame carries."""
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    db = sqlite3.connect(":memory:")
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        else:
            db.execute("SELECT ?", [item])


def check(parse: Any, raw: str) -> None:
    try:
        frame = parse(raw)
    except ProtocolError as error:
        assert error.code in CODES, f"{error.code} is not documented in docs/protocol.md"
        assert error.reason and len(error.reason) < 600, error.reason
        frame_for_client = {"type": "error", "code": error.code, "reason": error.reason}
        storable(frame_for_client)
    else:
        assert isinstance(frame, BaseModel)
        storable(frame.model_dump())


#: 250 examples a property in `make test`; the fast tier's Hypothesis profile (`make
#: check`, registered in tests/conftest.py) runs a tenth of the profile's examples.
many = settings(max_examples=settings.default.max_examples * 5 // 2, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("frame", "path"), LEAVES,
                         ids=[".".join(map(str, (f["type"], *p))) for f, p in LEAVES])
@settings(max_examples=max(10, settings.default.max_examples * 3 // 10), deadline=None)
@given(data=st.data())
def test_a_valid_frame_with_one_value_spoilt_parses_or_is_refused(
    frame: dict[str, Any], path: tuple[Any, ...], data: st.DataObject
) -> None:
    value = data.draw(spoilt(at(frame, path)))
    raw = encode(replaced(frame, path, value), data.draw(st.booleans()))
    check(parse_client_frame, raw)
    check(parse_agent_frame, raw)


@many
@given(frames(), st.booleans())
def test_a_valid_frame_with_spoilt_fields_parses_or_is_refused(frame: dict[str, Any],
                                                               overflow: bool) -> None:
    raw = encode(frame, overflow)
    check(parse_client_frame, raw)
    check(parse_agent_frame, raw)


@many
@given(values, st.booleans())
def test_any_json_value_parses_or_is_refused(value: Any, overflow: bool) -> None:
    raw = encode(value, overflow)
    check(parse_client_frame, raw)
    check(parse_agent_frame, raw)


@many
@given(strings(max_size=200))
def test_any_text_at_all_parses_or_is_refused(raw: str) -> None:
    check(parse_client_frame, raw)
    check(parse_agent_frame, raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_deep_nesting_is_refused_without_recursing(depth: int) -> None:
    for raw in ('{"type":"ping","x":' + "[" * depth + "]" * depth + "}",
                '{"type":"ping","x":' + '{"a":' * depth + "1" + "}" * depth + "}"):
        for parse in (parse_client_frame, parse_agent_frame):
            with pytest.raises(ProtocolError) as refused:
                parse(raw)
            assert refused.value.code == "bad_json"
            assert f"more than {MAX_JSON_DEPTH} levels" in refused.value.reason


def test_a_real_frame_is_well_within_the_depth_limit() -> None:
    hello = {"type": "hello", "page": {"url": "https://shop.example/p", "cart": {
        "items": [{"sku": "A1", "qty": 1, "price": 9.5}], "total": 9.5}}}
    assert parse_client_frame(json.dumps(hello)).page is not None


@pytest.mark.parametrize("raw, code", [
    ('{"type":"message","client_id":"a","text":"x\\ud800"}', "bad_unicode"),
    ('{"type":"message","client_id":"a","text":"\\udfffx"}', "bad_unicode"),
    ('{"type":"hello","conversation_id":"' + "a" * 32 + '","resume_token":"\\ud800"}',
     "bad_unicode"),
    ('{"type":"csat","client_id":"a","handoff_id":100000000000000000000,"score":5}',
     "bad_frame"),
    ('{"type":"hello","last_seq":9223372036854775808}', "bad_frame"),
    ('{"type":"hello","page":{"cart":{"total":Infinity}}}', "bad_json"),
    ('{"type":"hello","page":{"cart":{"total":1e999}}}', "bad_frame"),
    ('{"type":"hello","page":{"cart":{"items":[{"sku":"a","price":NaN}]}}}', "bad_json"),
    ('{"type":"ping","x":' + "9" * 5000 + "}", "bad_json"),
])
def test_each_hostile_shopper_frame_found_by_fuzzing_is_refused(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(raw)
    assert refused.value.code == code


def test_a_lone_surrogate_is_refused_with_the_messages_client_id() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame('{"type":"message","client_id":"m7","text":"broken \\ud83d emoji"}')
    assert refused.value.client_id == "m7" and "\\ud83d" in refused.value.reason


def test_a_surrogate_pair_is_one_character_and_welcome() -> None:
    frame = parse_client_frame('{"type":"message","client_id":"a","text":"hi \\ud83d\\ude00"}')
    assert frame.text == "hi \U0001f600"  # type: ignore[union-attr]


@pytest.mark.parametrize("raw", [
    '{"type":"ticket_done","ticket_id":' + str(10**30) + "}",
    '{"type":"ticket_done","ticket_id":0}',
    '{"type":"open","conversation_id":"' + "a" * 32 + '","last_seq":-1}',
    '{"type":"auth","token":"\\ud800"}',
    '{"type":"message","conversation_id":"' + "a" * 32 + '","client_id":"a","text":"\\ud800"}',
    '{"type":"note","conversation_id":"' + "a" * 32 + '","client_id":"a","text":"\\udc00"}',
])
def test_each_hostile_agent_frame_found_by_fuzzing_is_refused(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_agent_frame(raw)


def test_http_bodies_are_held_to_the_same_rules() -> None:
    assert load_json('{"items": ["a"]}') == {"items": ["a"]}
    for raw in ('{"items": ["\\ud800"]}', '{"n": Infinity}', "[" * 5000 + "]" * 5000, "{"):
        with pytest.raises(ProtocolError) as refused:
            load_json(raw)
        assert refused.value.reason.startswith(("Body", "Text", "Infinity"))


@many
@given(texts)
def test_token_checks_never_raise_and_only_pass_what_a_token_can_be(text: str) -> None:
    if is_token(text):
        assert text.isascii() and 16 <= len(text) <= 128


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = ConversationStore(tmp_path_factory.mktemp("tokens") / "gateway.db")
    conversation, _ = store.create_conversation(None)
    yield store, conversation.id
    store.close()


@many
@given(st.one_of(texts, st.sampled_from(["\ud800" * 20, "a" * 10_000, "x" * 43, ""])))
def test_looking_up_any_text_as_a_token_finds_nothing_and_raises_nothing(
    stores: Any, text: str
) -> None:
    store, conversation_id = stores
    assert store.authenticate(conversation_id, text) is None
    accounts = AgentStore(store)
    assert accounts.authenticate(text) is None
    accounts.logout(text)
    assert TokenStore(store).valid(text) is False


def with_authorization(header: str) -> Any:
    """A request as far as :func:`bearer_token` reads it (aiohttp's test request would
    encode the header, which a header of undecodable bytes cannot be)."""
    return SimpleNamespace(headers={"Authorization": header})


@many
@given(strings(max_size=80))
def test_the_bearer_header_gives_a_token_or_nothing(value: str) -> None:
    for header in (value, "Bearer " + value, "bearer " + value):
        token = bearer_token(with_authorization(header))
        assert token is None or is_token(token)


def test_the_bearer_scheme_is_case_insensitive_and_bytes_that_are_no_token_are_none() -> None:
    token = "A" * 43

    def bearer(header: str) -> str | None:
        return bearer_token(with_authorization(header))

    assert bearer(f"Bearer {token}") == bearer(f"BEARER  {token} ") == token
    # aiohttp hands undecodable header bytes over as surrogate escapes.
    assert bearer(b"Bearer \xff\xfe".decode("utf-8", "surrogateescape")) is None
    assert bearer(f"Basic {token}") is None and bearer("Bearer") is None
