"""/ws/chat end to end: real websockets over loopback, a real gateway and its SQLite
files, the real RasaBridge over HTTP to the scripted stand-in for Rasa and the action server
(tests/scripted_rasa.py answering from tests/scripted_bot.py), so this runs in the fast
tier. The same socket in front of the real Rasa and actions (the two-strike fallback, a
signed-in shopper greeted by name) is tested in test_chat_with_rasa.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bot.settings import Settings
from tests.conftest import IDENTITY_SECRET, ChatClient, Gateway, bot_texts, is_bot_message
from tests.scripted_rasa import ScriptedRasa


@pytest.fixture
def gateway_settings(scripted_rasa_settings: Settings) -> Settings:
    """This module's gateways (``gateway``, ``chat``) reach the scripted Rasa."""
    return scripted_rasa_settings


async def test_hi_gets_a_greeting(chat: Any) -> None:
    async with chat() as client:
        welcome = await client.hello(page={"url": "https://shop.example/", "type": "home"})
        assert welcome["mode"] == "bot" and welcome["last_seq"] == 0
        assert welcome["resume_token"]
        frames = await client.turn("hi")
        ack = next(f for f in frames if f["type"] == "ack")
        assert ack["seq"] == 1 and ack["duplicate"] is False
        texts = bot_texts(frames)
        assert texts and texts[0].startswith("Hi! I'm the shop's assistant")
        replies = [f for f in frames if is_bot_message(f)]
        assert all(f["reply_to"] == 1 for f in replies)


async def test_each_event_has_the_next_seq_and_shopper_messages_are_echoed(chat: Any) -> None:
    async with chat() as client:
        await client.hello()
        frames = await client.turn("hello there")
        frames += await client.turn("are you a bot?")
        events = [f for f in frames if "seq" in f and f["type"] != "ack"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert next(e["author"] for e in events if e["type"] == "message") == "shopper"
        assert "I'm a bot" in " ".join(bot_texts(frames))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json at all", "bad_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "message", "client_id": "c1"}', "bad_frame"),
        (json.dumps({"type": "message", "client_id": "c2", "text": "x" * 5000}), "text_too_long"),
    ],
)
async def test_bad_input_gets_an_error_and_the_chat_stays_usable(
    chat: Any, raw: str, code: str
) -> None:
    async with chat() as client:
        await client.hello()
        await client.send(raw)
        error = await client.recv()
        assert error["type"] == "error" and error["code"] == code and error["reason"]
        # Same socket, same conversation: the next good message is answered.
        frames = await client.turn("hi")
        assert bot_texts(frames)
        assert next(f for f in frames if f["type"] == "ack")["seq"] == 1


async def test_message_before_hello_is_refused_then_hello_works(chat: Any) -> None:
    async with chat() as client:
        await client.say("hi", client_id="early")
        error = await client.recv()
        assert error["code"] == "not_joined" and error["client_id"] == "early"
        await client.hello()
        assert bot_texts(await client.turn("hi"))


async def test_resend_with_same_client_id_is_acknowledged_not_repeated(chat: Any) -> None:
    async with chat() as client:
        await client.hello()
        await client.say("hi", client_id="same-1")
        first = await client.recv_until(lambda f: f["type"] == "typing" and not f["on"])
        await client.say("hi", client_id="same-1")
        again = await client.recv()
        assert again == {"type": "ack", "client_id": "same-1", "seq": 1, "duplicate": True}
        # Nothing else follows: the bot did not answer the repeat.
        await client.send({"type": "ping"})
        assert await client.recv() == {"type": "pong"}
        assert len(bot_texts(first)) == 1


async def test_resume_replays_exactly_what_was_missed(chat: Any) -> None:
    async with chat() as first:
        await first.hello()
        await first.turn("hi")
        seen = first.last_seq
        await first.say("are you a real person")
        # Drop the socket before reading the answer.
    async with chat() as second:
        second.last_seq = seen
        welcome = await second.hello(conversation_id=first.conversation_id,
                                     resume_token=first.resume_token, last_seq=seen)
        assert "resume_token" not in welcome
        frames = await second.recv_until(is_bot_message)
        events = [f for f in frames if "seq" in f]
        assert events[0]["seq"] == seen + 1  # nothing repeated, nothing skipped
        assert events[0]["author"] == "shopper" and events[0]["text"] == "are you a real person"
        assert "I'm a bot" in bot_texts(frames)[0]


async def test_resume_from_zero_restores_the_whole_transcript(chat: Any) -> None:
    async with chat() as first:
        await first.hello()
        await first.turn("hi")
        total = first.last_seq
    async with chat() as second:
        await second.hello(conversation_id=first.conversation_id,
                           resume_token=first.resume_token, last_seq=0)
        replay = [await second.recv() for _ in range(total)]
        assert [f["seq"] for f in replay] == list(range(1, total + 1))
        assert replay[0]["text"] == "hi"


async def test_wrong_resume_token_cannot_read_a_conversation(chat: Any) -> None:
    async with chat() as owner:
        await owner.hello()
        await owner.turn("hi, my email is jane@example.com")
    async with chat() as intruder:
        await intruder.send({"type": "hello", "conversation_id": owner.conversation_id,
                             "resume_token": "guess", "last_seq": 0})
        error = await intruder.recv()
        assert error["type"] == "error" and error["code"] == "resume_rejected"
        await intruder.send({"type": "ping"})
        assert await intruder.recv() == {"type": "pong"}  # no transcript leaked


async def test_claiming_a_future_seq_is_rejected(chat: Any) -> None:
    async with chat() as first:
        await first.hello()
    async with chat() as second:
        await second.send({"type": "hello", "conversation_id": first.conversation_id,
                           "resume_token": first.resume_token, "last_seq": 99})
        assert (await second.recv())["code"] == "resume_rejected"


async def test_only_offered_button_payloads_are_accepted(chat: Any) -> None:
    async with chat() as client:
        await client.hello()
        await client.say("hi", payload='/track_order{"order_id": "100001"}')
        error = await client.recv()
        assert error["code"] == "unknown_payload"


async def two_misses_then_the_offered_person(chat: Any) -> None:
    """Two messages the bot cannot place, its offer of a person, the offer's button: the
    offer and its buttons reach the shopper, the offered payload is taken, the handoff
    goes to the desk, which (nobody signed in) offers the message form."""
    async with chat() as client:
        await client.hello()
        first = bot_texts(await client.turn("what's the weather like in paris tomorrow"))
        assert first == ["Sorry, that's outside what I can help with. I can help with orders, "
                         "returns, refunds, shipping and our products."]
        frames = await client.turn("set an alarm for 6am please")
        offer = next(f for f in frames if is_bot_message(f))
        assert "get a person" in offer["text"]
        button = next(b for b in offer["buttons"] if b["payload"] == "/human_handoff")
        frames = await client.turn(button["title"], payload=button["payload"])
        handoff = next(f for f in frames if f["type"] == "handoff")
        assert handoff["trigger"] == "fallback"
        # Nobody is signed in to the console here: the shopper may leave a message.
        frames = await client.recv_until(lambda f: f.get("author") == "system")
        assert frames[-2]["type"] == "offline_form" and "email us" in frames[-1]["text"]


async def test_two_misses_offer_a_person_and_the_button_hands_off(chat: Any) -> None:
    # The scripted bot's two strikes (bot.escalation, as the real action counts them):
    # what is tested here is the gateway carrying the offer, its button and the handoff.
    await two_misses_then_the_offered_person(chat)


async def test_second_socket_on_same_conversation_sees_new_events(chat: Any) -> None:
    async with chat() as tab1:
        await tab1.hello()
        async with chat() as tab2:
            await tab2.hello(conversation_id=tab1.conversation_id,
                             resume_token=tab1.resume_token, last_seq=0)
            await tab1.turn("hi")
            frames = await tab2.recv_until(is_bot_message)
            assert [f["text"] for f in frames if f.get("author") == "shopper"] == ["hi"]


async def test_foreign_origin_is_refused(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(gateway.url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


@pytest.fixture
def quick_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's first retry of an unanswered message after 0.2 s, not 1 s (later
    ones double as ever): these tests wait for it."""
    import handoff.hub

    monkeypatch.setattr(handoff.hub, "RETRY_FIRST_DELAY", 0.2)


async def say_hi_while_rasa_is_away(ws: Any) -> ChatClient:
    """Start a conversation and say hi to a gateway that cannot reach Rasa."""
    client = ChatClient(ws)
    await client.hello()
    await client.say("hi")
    frames = await client.recv_until(lambda f: f["type"] == "error")
    assert frames[-1]["code"] == "bot_unavailable"
    return client


async def test_messages_sent_while_rasa_is_down_are_answered_later(
    gateway_settings: Any,
) -> None:
    from tests.conftest import free_port

    # A gateway pointed at a port where no Rasa listens keeps the message pending ...
    down = Gateway(gateway_settings.model_copy(update={"rasa_port": free_port()}))
    await down.start()
    try:
        async with connect(down.url) as ws:
            client = await say_hi_while_rasa_is_away(ws)
            conversation, token, seen = client.conversation_id, client.resume_token, client.last_seq
    finally:
        await down.stop()
    # ... and the same database behind a gateway that reaches Rasa answers it on resume.
    up = Gateway(gateway_settings)
    await up.start()
    try:
        async with connect(up.url) as ws:
            client = ChatClient(ws)
            client.last_seq = seen
            await client.hello(conversation_id=conversation, resume_token=token, last_seq=seen)
            frames = await client.recv_until(is_bot_message)
            assert bot_texts(frames)[0].startswith("Hi!")
    finally:
        await up.stop()


async def test_conversation_survives_a_gateway_restart(gateway: Gateway) -> None:
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        await client.hello()
        await client.turn("hi")
        conversation, token, seen = client.conversation_id, client.resume_token, client.last_seq
    await gateway.stop()
    await gateway.start()
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        client.last_seq = seen
        welcome = await client.hello(conversation_id=conversation, resume_token=token,
                                     last_seq=seen)
        assert welcome["last_seq"] == seen
        frames = await client.turn("thanks!")
        assert next(f for f in frames if f["type"] == "ack")["seq"] == seen + 1
        assert "welcome" in bot_texts(frames)[0]


async def test_healthz_reports_each_dependency(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.http}/healthz") as r:
        body = await r.json()
    assert r.status == 200 and body["ok"] is True
    assert set(body["dependencies"]) == {"database", "rasa", "action_server"}
    assert body["dependencies"]["rasa"]["model"]


async def test_healthz_is_503_when_rasa_is_unreachable(gateway_settings: Any) -> None:
    from tests.conftest import free_port

    gw = Gateway(gateway_settings.model_copy(update={"rasa_port": free_port()}))
    await gw.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{gw.http}/healthz") as r:
            body = await r.json()
        assert r.status == 503 and body["ok"] is False
        assert body["dependencies"]["rasa"]["ok"] is False
        assert body["dependencies"]["action_server"]["ok"] is True
    finally:
        await gw.stop()


async def test_concurrent_shoppers_get_their_own_answers(chat: Any) -> None:
    async def one(text: str, expect: str) -> None:
        async with chat() as client:
            await client.hello()
            assert expect in " ".join(bot_texts(await client.turn(text)))

    await asyncio.gather(*(one("hi", "Hi!") if i % 2 else one("are you a bot", "I'm a bot")
                           for i in range(6)))


def forward_to(port: int) -> Any:
    """A loopback TCP forwarder to ``port``: Rasa "coming back" on another port."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer),
                             return_exceptions=True)

    return handle


async def test_pending_message_is_answered_when_rasa_comes_back_on_the_same_socket(
    gateway_settings: Any, quick_retry: None,
) -> None:
    from tests.conftest import free_port

    port = free_port()
    gw = Gateway(gateway_settings.model_copy(update={"rasa_port": port}))
    await gw.start()
    try:
        async with connect(gw.url) as ws:
            client = await say_hi_while_rasa_is_away(ws)
            server = await asyncio.start_server(
                forward_to(gateway_settings.rasa_port), "127.0.0.1", port)
            try:
                # No reconnect, no new message: the gateway retries by itself.
                frames = await client.recv_until(is_bot_message, timeout=30)
            finally:
                server.close()
            assert bot_texts(frames)[0].startswith("Hi!")
            assert not [f for f in frames if f["type"] == "error"]  # told once, not per retry
    finally:
        await gw.stop()


@pytest.mark.parametrize("trouble", ["slower than the gateway waits", "failing"])
async def test_a_slow_or_failing_rasa_is_retried_until_it_answers(
    gateway_with: Any, scripted_rasa: ScriptedRasa, trouble: str, quick_retry: None,
) -> None:
    if trouble == "failing":
        scripted_rasa.bot.down = True  # HTTP 503 to everything
    else:
        scripted_rasa.delay = 1.0
    async with gateway_with(rasa_timeout=0.3) as gw, connect(gw.url) as ws:
        client = await say_hi_while_rasa_is_away(ws)
        scripted_rasa.bot.down, scripted_rasa.delay = False, 0.0
        # No new message: the gateway's retry gets the answer.
        frames = await client.recv_until(is_bot_message, timeout=10)
        assert bot_texts(frames)[0].startswith("Hi!")
        assert not [f for f in frames if f["type"] == "error"]  # told once, not per retry



async def bad_identities_are_ignored(client: ChatClient, gateway: Gateway) -> None:
    """A hello with an identity signed with the wrong secret, then a garbage identity
    frame: both ignored, the socket still answers, no customer recorded."""
    from bot.identity import sign_identity

    await client.hello(identity=sign_identity("cus_0001", "not-the-secret-the-gateway-"
                                                          "verifies-with"))
    await client.send({"type": "identity", "token": "garbage"})
    await client.turn("hi")
    assert recorded_customer(gateway, client.conversation_id) is None


def recorded_customer(gateway: Gateway, conversation_id: str | None) -> str | None:
    """The verified customer the gateway stored on the conversation, if any."""
    return gateway.stored(conversation_id).customer_id


async def test_only_a_genuinely_signed_identity_is_recorded_and_told_to_the_bot_once(
    chat: Any, gateway: Gateway, scripted_rasa: ScriptedRasa,
) -> None:
    from bot.identity import sign_identity

    def customer(conversation_id: str | None) -> str | None:
        return recorded_customer(gateway, conversation_id)

    def told(conversation_id: str | None) -> list[str]:
        """The tracker's user messages and customer_id slot events, in order."""
        assert conversation_id is not None
        return [f"slot {e['value']}" if e["event"] == "slot" else f"user {e['text']}"
                for e in scripted_rasa.bot.trackers[conversation_id]
                if e["event"] == "user" or (e["event"] == "slot"
                                            and e["name"] == "customer_id")]

    async with chat() as client:
        await bad_identities_are_ignored(client, gateway)
        assert told(client.conversation_id) == ["user hi"]
        # Signing in mid-chat: the identity frame.
        await client.send({"type": "identity", "token": sign_identity("cus_0002",
                                                                      IDENTITY_SECRET)})
        await client.turn("hello again")
        await client.turn("thanks")
        assert customer(client.conversation_id) == "cus_0002"
        # Rasa's customer_id slot is set before the turn that follows, and only then.
        assert told(client.conversation_id) == [
            "user hi", "slot cus_0002", "user hello again", "user thanks"]
    async with chat() as client:
        await client.hello(identity=sign_identity("cus_0001", IDENTITY_SECRET))
        assert customer(client.conversation_id) == "cus_0001"
        # Known from the first message of a brand-new conversation too.
        await client.turn("hi")
        await client.turn("are you a bot?")
        said = told(client.conversation_id)
        assert set(said[:-2]) == {"slot cus_0001"}
        assert said[-2:] == ["user hi", "user are you a bot?"]


async def test_the_conversation_keeps_the_widgets_language_and_tells_rasa(
    chat: Any, gateway: Gateway, scripted_rasa: ScriptedRasa,
) -> None:
    """hello's lang is the conversation's; a language frame or a resume changes it; each
    message reaches Rasa with the language it was written in; an unknown language is a
    bad frame that changes nothing."""

    def langs_told(conversation_id: str | None) -> list[str]:
        assert conversation_id is not None
        return [e["metadata"]["lang"] for e in scripted_rasa.bot.trackers[conversation_id]
                if e["event"] == "user"]

    async with chat() as client:
        await client.hello(lang="de")
        assert gateway.stored(client.conversation_id).lang == "de"
        await client.turn("hi")
        await client.send({"type": "language", "lang": "fr"})
        await client.turn("thanks")
        assert gateway.stored(client.conversation_id).lang == "fr"
        assert langs_told(client.conversation_id) == ["de", "fr"]
        await client.send({"type": "language", "lang": "xx"})
        error = (await client.recv_until(lambda f: f["type"] == "error"))[-1]
        assert error["code"] == "bad_frame"
        assert gateway.stored(client.conversation_id).lang == "fr"
        conversation_id, token = client.conversation_id, client.resume_token
    async with chat() as client:
        await client.hello(conversation_id=conversation_id, resume_token=token, lang="es")
        assert gateway.stored(conversation_id).lang == "es"
    async with chat() as client:
        await client.hello()  # a widget that says nothing: English
        assert gateway.stored(client.conversation_id).lang == "en"
