"""The wire protocol's validation rules, without a socket."""

from __future__ import annotations

import json

import pytest

from handoff.exceptions import ProtocolError
from handoff.protocol import MAX_TEXT_BYTES, Hello, MessageIn, Ping, parse_client_frame


def reject(raw: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(raw)
    return caught.value


def test_hello_with_page_context_is_accepted() -> None:
    frame = parse_client_frame(json.dumps({
        "type": "hello",
        "page": {"url": "https://shop.example/p/tent", "type": "product", "sku": "TENT-2P",
                 "cart": {"items": [{"sku": "TENT-2P", "qty": 1, "price": 199.0}],
                          "total": 199.0, "currency": "EUR"}},
    }))
    assert isinstance(frame, Hello)
    assert frame.page is not None and frame.page.sku == "TENT-2P"
    assert frame.last_seq == 0


def test_message_and_ping_are_accepted() -> None:
    message = parse_client_frame('{"type": "message", "client_id": "abc-1", "text": "hi"}')
    assert isinstance(message, MessageIn) and message.text == "hi"
    assert isinstance(parse_client_frame('{"type": "ping"}'), Ping)


def test_non_json_is_rejected_with_bad_json() -> None:
    assert reject("hello there").code == "bad_json"


def test_binary_frames_are_rejected() -> None:
    assert reject(b'{"type": "ping"}').code == "bad_frame"


def test_non_object_json_is_rejected() -> None:
    assert reject("[1, 2]").code == "bad_frame"


def test_unknown_type_names_the_known_ones() -> None:
    error = reject('{"type": "shout", "client_id": "x1"}')
    assert error.code == "unknown_type"
    assert "hello, message, ping" in error.reason
    assert error.client_id == "x1"


def test_missing_field_is_named() -> None:
    error = reject('{"type": "message", "client_id": "c1"}')
    assert error.code == "bad_frame"
    assert "missing field 'text'" in error.reason
    assert error.client_id == "c1"


def test_text_over_four_kilobytes_is_rejected_with_its_size() -> None:
    text = "é" * (MAX_TEXT_BYTES // 2 + 1)  # 2 bytes each in UTF-8
    error = reject(json.dumps({"type": "message", "client_id": "c2", "text": text}))
    assert error.code == "text_too_long"
    assert str(MAX_TEXT_BYTES) in error.reason
    assert error.client_id == "c2"


def test_text_of_exactly_the_limit_is_accepted() -> None:
    frame = parse_client_frame(json.dumps(
        {"type": "message", "client_id": "c3", "text": "a" * MAX_TEXT_BYTES}))
    assert isinstance(frame, MessageIn)


def test_blank_text_is_rejected() -> None:
    assert reject('{"type": "message", "client_id": "c4", "text": "   "}').code == "empty_text"


def test_client_id_must_be_a_short_token() -> None:
    error = reject(json.dumps({"type": "message", "client_id": "a b<script>", "text": "x"}))
    assert error.code == "bad_frame" and "client_id" in error.reason


def test_page_url_must_be_http() -> None:
    error = reject(json.dumps({"type": "hello", "page": {"url": "javascript:alert(1)"}}))
    assert error.code == "bad_frame" and "page.url" in error.reason


def test_negative_last_seq_is_rejected() -> None:
    assert reject('{"type": "hello", "last_seq": -1}').code == "bad_frame"


def test_handoff_frames_are_validated() -> None:
    from handoff.protocol import Csat, LeaveQueue, OfflineMessage, PageUpdate, TypingIn

    assert isinstance(parse_client_frame('{"type": "typing", "on": true}'), TypingIn)
    assert isinstance(parse_client_frame('{"type": "leave_queue", "client_id": "l1"}'),
                      LeaveQueue)
    page = parse_client_frame('{"type": "page", "page": {"type": "cart", "cart": {"total": 9}}}')
    assert isinstance(page, PageUpdate) and page.page.cart is not None
    offline = parse_client_frame(json.dumps(
        {"type": "offline_message", "client_id": "o1", "email": " sam@example.org ",
         "text": "hello"}))
    assert isinstance(offline, OfflineMessage) and offline.email == "sam@example.org"
    rating = parse_client_frame(json.dumps(
        {"type": "csat", "client_id": "r1", "handoff_id": 3, "score": 4}))
    assert isinstance(rating, Csat) and rating.comment is None
    for bad in ({"type": "csat", "client_id": "r2", "handoff_id": 3, "score": 6},
                {"type": "offline_message", "client_id": "o2", "email": "nope", "text": "x"},
                {"type": "offline_message", "client_id": "o3", "email": "a@b.cd", "text": " "}):
        with pytest.raises(ProtocolError) as error:
            parse_client_frame(json.dumps(bad))
        assert error.value.client_id == bad["client_id"]
