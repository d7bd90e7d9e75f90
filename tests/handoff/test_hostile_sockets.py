"""Hostile input against a real gateway on loopback (no Rasa behind it): each case a fuzz
run found gets a documented answer, and the same connection is used successfully after.

The cases of the issue "Hostile input never drops a socket or answers 500": lone
surrogates, deep nesting, surrogates in tokens, integers beyond SQLite's range, bearer
headers of undecodable bytes, a Host header that agrees with a foreign Origin, idle
peers, and non-finite numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from handoff.chat import HELLO_TIMEOUT_CLOSE
from tests.conftest import ChatClient, Gateway, add_agent, agent_console

DEEP = '{"type":"ping","x":' + "[" * 1000 + "]" * 1000 + "}"


@pytest.fixture
async def gateway(bare_gateway_with: Callable[..., Any]) -> Any:
    async with bare_gateway_with() as gw:
        yield gw


@pytest.fixture(autouse=True)
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Whatever a test sends, the gateway logs no error: nothing reached a handler unhandled."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def still_usable(client: ChatClient) -> None:
    """The socket answers a ping and stores a message (the bot is not needed for either)."""
    await client.send({"type": "ping"})
    assert (await client.recv(5))["type"] == "pong"
    if client.conversation_id is not None:
        client_id = await client.say("still here?")
        ack = await client.recv_until(lambda f: f["type"] == "ack", timeout=5)
        assert ack[-1]["client_id"] == client_id


async def refused(client: ChatClient, raw: str) -> dict[str, Any]:
    await client.send(raw)
    frame = await client.recv(5)
    assert frame["type"] == "error", frame
    return frame


@pytest.mark.parametrize(("raw", "code"), [
    # 1. lone surrogates in text (valid JSON, valid UTF-8 on the wire)
    ('{"type":"message","client_id":"a","text":"x\\ud800"}', "bad_unicode"),
    ('{"type":"offline_message","client_id":"b","email":"a@b.co","text":"\\udc00"}',
     "bad_unicode"),
    # 2. nesting far deeper than any frame
    (DEEP, "bad_json"),
    # 4. integers beyond SQLite's range
    ('{"type":"csat","client_id":"c","handoff_id":100000000000000000000,"score":5}',
     "bad_frame"),
    # 8. numbers that are not finite
    ('{"type":"page","page":{"cart":{"total":Infinity}}}', "bad_json"),
    ('{"type":"page","page":{"cart":{"total":1e999}}}', "bad_frame"),
    ('{"type":"page","page":{"cart":{"items":[{"sku":"a","price":-1e999}]}}}', "bad_frame"),
])
async def test_a_joined_shopper_socket_refuses_hostile_frames_and_stays_usable(
    gateway: Gateway, raw: str, code: str
) -> None:
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        await client.hello()
        error = await refused(client, raw)
        assert error["code"] == code and error["reason"]
        await still_usable(client)


async def test_a_socket_refuses_deep_nesting_and_surrogates_before_hello_too(
    gateway: Gateway,
) -> None:
    async with connect(gateway.url) as ws:
        client = ChatClient(ws)
        assert (await refused(client, DEEP))["code"] == "bad_json"
        # 3. a surrogate for a resume token, naming a real conversation
        async with connect(gateway.url) as other:
            owner = ChatClient(other)
            await owner.hello()
        hostile = json.dumps({"type": "hello", "conversation_id": owner.conversation_id,
                              "resume_token": "\ud800"})
        assert (await refused(client, hostile))["code"] == "bad_unicode"
        for token in ("x" * 128, "\u00e9" * 32, "", " "):
            wrong = {"type": "hello", "conversation_id": owner.conversation_id,
                     "resume_token": token}
            assert (await refused(client, json.dumps(wrong)))["code"] == "resume_rejected"
        await client.hello()
        assert client.conversation_id != owner.conversation_id
        await still_usable(client)


@pytest.fixture
async def agent_gateway(bare_gateway_with: Callable[..., Any]) -> Any:
    async with bare_gateway_with() as gw:
        add_agent(gw.settings, "ada@shop.example", "Ada")
        yield gw


@pytest.mark.parametrize("raw", [
    '{"type":"ticket_done","ticket_id":' + str(10**30) + "}",
    DEEP,
    '{"type":"note","conversation_id":"' + "a" * 32 + '","client_id":"n","text":"\\ud800"}',
    '{"type":"message","conversation_id":"' + "a" * 32 + '","client_id":"m","text":"\\udfff"}',
    '{"type":"open","conversation_id":"' + "a" * 32 + '","last_seq":9223372036854775808}',
])
async def test_a_signed_in_agent_socket_refuses_hostile_frames_and_stays_usable(
    agent_gateway: Gateway, raw: str
) -> None:
    async with agent_console(agent_gateway.http, "ada@shop.example") as agent:
        await agent.ws.send(raw)
        error = await agent.expect(lambda f: f["type"] == "error", timeout=5)
        assert error["code"] in ("bad_frame", "bad_json", "bad_unicode")
        await agent.do("ping")
        await agent.expect(lambda f: f["type"] == "pong", timeout=5)


@pytest.mark.parametrize("first", [
    '{"type":"auth","token":"\\ud800"}',  # 3. a surrogate for a token
    DEEP,  # 2. before authentication
    '{"type":"auth","token":"' + "\u00e9" * 40 + '"}',
])
async def test_an_agent_socket_refuses_a_hostile_first_frame_with_unauthorized(
    agent_gateway: Gateway, first: str
) -> None:
    url = agent_gateway.http.replace("http://", "ws://") + "/ws/agent"
    async with connect(url) as ws:
        await ws.send(first)
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "error" and frame["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def raw_http(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes as they are (aiohttp's client would refuse to) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/admin/review"),
    ("POST", "/api/agents/logout"),
])
@pytest.mark.parametrize("authorization", [b"Bearer \xff\xfe", b"Bearer \xed\xa0\x80",
                                           b"bEaReR " + b"\xc3\xa9" * 40, b"Bearer"])
async def test_a_bearer_header_of_any_bytes_is_never_a_server_error(
    gateway: Gateway, method: str, path: str, authorization: bytes
) -> None:
    answer = await raw_http(gateway.settings.port, (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        "Connection: close\r\nAuthorization: ").encode() + authorization + b"\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert status == (200 if path.endswith("logout") else 401), answer[:200]


UPGRADE = ("GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n")


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/agent"])
async def test_a_rebinding_page_whose_host_and_origin_agree_is_refused(
    gateway: Gateway, path: str
) -> None:
    """6. A DNS-rebinding page on evil.example reaches the gateway under its own name:
    its Host header and its Origin agree, and neither is the gateway's."""
    port = gateway.settings.port
    evil = await raw_http(port, UPGRADE.format(path=path, host="evil.example",
                                               origin="http://evil.example").encode())
    assert evil.startswith(b"HTTP/1.1 403"), evil[:100]
    own = await raw_http(port, UPGRADE.format(path=path, host=f"127.0.0.1:{port}",
                                              origin=f"http://localhost:{port}").encode())
    assert own.startswith(b"HTTP/1.1 101"), own[:100]


async def test_a_gateway_behind_a_proxy_trusts_its_configured_public_origin(
    bare_gateway_with: Callable[..., Any],
) -> None:
    async with bare_gateway_with(public_origins=["https://chat.shop.example"]) as gw:
        port = gw.settings.port
        for origin, status in (("https://chat.shop.example", b"101"),
                               (f"http://localhost:{port}", b"403")):
            answer = await raw_http(port, UPGRADE.format(
                path="/ws/agent", host="chat.shop.example", origin=origin).encode())
            assert answer.startswith(b"HTTP/1.1 " + status), (origin, answer[:100])


async def test_a_shopper_socket_that_never_says_hello_is_closed_with_a_reason(
    bare_gateway_with: Callable[..., Any],
) -> None:
    """7. Pings do not keep a socket that never joined a conversation open."""
    async with bare_gateway_with(handshake_timeout=0.6) as gw, connect(gw.url) as ws:
        client = ChatClient(ws)
        for _ in range(3):
            await still_usable(client)
            await asyncio.sleep(0.15)
        frame = await client.recv(3)
        assert frame["type"] == "error" and frame["code"] == "hello_timeout"
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv(3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == HELLO_TIMEOUT_CLOSE


async def test_a_joined_socket_is_not_held_to_the_hello_deadline(
    bare_gateway_with: Callable[..., Any],
) -> None:
    async with bare_gateway_with(handshake_timeout=0.3) as gw, connect(gw.url) as ws:
        client = ChatClient(ws)
        await client.hello()
        await asyncio.sleep(0.8)
        await still_usable(client)


async def test_an_http_client_trickling_its_headers_is_cut_off(
    bare_gateway_with: Callable[..., Any],
) -> None:
    """7. Slowloris: one header byte at a time never gets the connection held for long."""
    async with bare_gateway_with(http_timeout=1.0) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.settings.port)
        started = asyncio.get_running_loop().time()
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        cut_off = False
        for byte in request:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    cut_off = True
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                cut_off = True
                break
        elapsed = asyncio.get_running_loop().time() - started
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        assert cut_off and elapsed < 4, elapsed


async def test_a_json_body_that_does_not_arrive_in_time_is_a_408(
    bare_gateway_with: Callable[..., Any],
) -> None:
    async with bare_gateway_with(http_timeout=0.5) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.settings.port)
        writer.write(b"POST /api/agents/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert b"took longer than 0.5 s" in answer


@pytest.mark.parametrize("body", [
    b'{"email": "a@b.co", "password": "\\ud800"}',
    b'{"email": "a@b.co", "password": "x", "n": Infinity}',
    b"[" * 5000 + b"]" * 5000,
    b'{"email": "\xff\xfe", "password": "x"}',
])
async def test_a_hostile_json_body_is_a_400_that_says_why(gateway: Gateway, body: bytes) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{gateway.http}/api/agents/login", data=body,
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        assert "email" in (await response.json())["detail"]
