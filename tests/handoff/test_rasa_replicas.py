"""Several Rasa servers behind one gateway (handoff/rasa_bridge.py): turns go round-robin
to the healthy ones, a replica that stops is left out at once and taken back when it
answers again, and one conversation never has two turns in flight. Fast tier: two
scripted stand-ins for Rasa over real HTTP (tests/scripted_rasa.py) sharing one scripted
bot, as real replicas share their trackers through Postgres (tests/scaleout/ runs the
real ones)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from handoff.app import HUB
from handoff.rasa_bridge import RasaBridge
from tests.conftest import RASA_TOKEN, ChatClient, Gateway, bare_settings, bot_texts, serving
from tests.mail.conftest import shopper
from tests.scripted_bot import ScriptedBot
from tests.scripted_rasa import ScriptedRasa

WEBHOOK = ("POST", "/webhooks/rest/webhook")


@pytest.fixture
async def replicas() -> AsyncIterator[list[ScriptedRasa]]:
    """Two scripted Rasa servers (each its own action server too) sharing one bot."""
    bot = ScriptedBot()
    async with ScriptedRasa(bot, token=RASA_TOKEN) as one, \
            ScriptedRasa(bot, token=RASA_TOKEN) as two:
        yield [one, two]


@pytest.fixture
def gateway_on(replicas: list[ScriptedRasa], tmp_path: Path) -> Callable[..., Any]:
    """``async with gateway_on(**settings)``: a gateway whose Rasa servers are ``replicas``."""
    def start(**overrides: Any) -> Any:
        urls = [replica.url for replica in replicas]
        return serving(bare_settings(tmp_path, rasa_urls=urls, action_urls=urls,
                                     rasa_token=SecretStr(RASA_TOKEN), **overrides))
    return start


def bridge_of(gateway: Gateway) -> RasaBridge:
    """The gateway's bridge to Rasa (a RasaBridge: the gateway was given no other bot)."""
    assert gateway.runner is not None
    bridge = gateway.runner.app[HUB].bridge
    assert isinstance(bridge, RasaBridge)
    return bridge


def webhooks(replica: ScriptedRasa) -> int:
    return replica.requests.count(WEBHOOK)


async def health(gateway: Gateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{gateway.http}/healthz") as response:
        body: dict[str, Any] = await response.json()
        return body


async def until(condition: Callable[[], Any], what: str, timeout: float = 20) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail saying ``what`` if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_turns_alternate_between_replicas_sharing_one_conversation(
    gateway_on: Callable[..., Any], replicas: list[ScriptedRasa],
) -> None:
    one, two = replicas
    async with gateway_on() as gateway, shopper(gateway) as client:
        served = []
        for text in ("hi", "what's the weather on mars", "tell me a joke"):
            before = (webhooks(one), webhooks(two))
            frames = await client.turn(text)
            assert bot_texts(frames)
            served.append(0 if webhooks(one) > before[0] else 1)
            assert webhooks(one) + webhooks(two) == sum(before) + 1
        # One webhook per turn, to the other replica each time.
        assert served in ([0, 1, 0], [1, 0, 1])
        # The two misses in a row were counted across replicas: the second offers a person,
        # which it does only if the replica answering it saw the first.
        assert "person" in " ".join(bot_texts(frames)).lower()


async def test_a_replica_that_cannot_be_reached_is_left_out_and_costs_no_turn(
    gateway_on: Callable[..., Any], replicas: list[ScriptedRasa],
) -> None:
    two = replicas[1]
    # No background check in the meantime: the turns' own requests find it gone.
    async with gateway_on(rasa_health_interval=600) as gateway, shopper(gateway) as client:
        bridge = bridge_of(gateway)
        await client.turn("hi")
        await two.stop()
        before, sent_before = len(two.requests), bridge.replicas[1].requests
        for n in range(3):
            frames = await client.turn(f"hello {n}")
            assert bot_texts(frames), frames
            assert not any(f["type"] == "error" for f in frames), frames
        # One request went to it (round-robin), found nothing and went on to the other;
        # after that it was left out.
        assert len(two.requests) == before
        assert bridge.replicas[1].healthy is False
        assert bridge.replicas[1].requests == sent_before + 1
        assert sum(r.requests for r in bridge.replicas) == 4 + 1
        assert "not reachable" in bridge.replicas[1].detail
        body = await health(gateway)
        assert body["ok"], body
        assert [r["ok"] for r in body["dependencies"]["rasa"]["replicas"]] == [True, False]


async def test_a_replica_left_out_is_taken_back_once_its_health_check_passes(
    gateway_on: Callable[..., Any], replicas: list[ScriptedRasa],
) -> None:
    two = replicas[1]
    async with gateway_on(rasa_health_interval=0.05) as gateway, shopper(gateway) as client:
        bridge = bridge_of(gateway)
        await two.stop()
        await until(lambda: bridge.replicas[1].healthy is False, "the stopped replica left out")
        for n in range(2):
            await client.turn(f"hello {n}")
        assert webhooks(two) == 0

        await two.start()  # on the same port
        await until(lambda: bridge.replicas[1].healthy, "the restarted replica taken back")
        for n in range(2):
            await client.turn(f"hi again {n}")
        assert webhooks(two) == 1


async def test_turns_still_fail_cleanly_when_every_replica_is_down(
    gateway_on: Callable[..., Any], replicas: list[ScriptedRasa],
) -> None:
    async with gateway_on(rasa_health_interval=0.1) as gateway, shopper(gateway) as client:
        for replica in replicas:
            await replica.stop()
        await client.say("hi")
        frames = await client.recv_until(lambda f: f["type"] == "error")
        assert frames[-1]["code"] == "bot_unavailable"
        body = await health(gateway)
        assert not body["ok"] and not body["dependencies"]["rasa"]["ok"]
        # Back: the saved message is answered (the hub retries it).
        for replica in replicas:
            await replica.start()
        frames = await client.recv_until(lambda f: f["type"] == "message"
                                         and f["author"] == "bot")
        assert bot_texts(frames)


async def test_one_conversation_never_has_two_turns_in_flight(
    gateway_on: Callable[..., Any], replicas: list[ScriptedRasa],
) -> None:
    bot = replicas[0].bot
    in_flight: collections.Counter[str] = collections.Counter()
    most: collections.Counter[str] = collections.Counter()
    most_overall = 0
    answer = bot.send

    async def slow_send(sender: str, text: str, metadata: dict[str, Any]) -> list[Any]:
        nonlocal most_overall
        in_flight[sender] += 1
        most[sender] = max(most[sender], in_flight[sender])
        most_overall = max(most_overall, sum(in_flight.values()))
        try:
            await asyncio.sleep(0.05)
            return await answer(sender, text, metadata)
        finally:
            in_flight[sender] -= 1

    bot.send = slow_send  # type: ignore[method-assign]
    async with gateway_on() as gateway, shopper(gateway) as first, shopper(gateway) as second:
        async def chatter(client: ChatClient) -> None:
            sent = [await client.say(f"hello {n}") for n in range(4)]
            # Messages sent while a turn runs wait for it; the last one is always answered.
            acked: dict[str, int] = {}
            answered: set[int] = set()
            while len(acked) < len(sent) or acked[sent[-1]] not in answered:
                frame = await client.recv()
                if frame["type"] == "ack":
                    acked[frame["client_id"]] = frame["seq"]
                elif frame["type"] == "message" and frame["author"] == "bot":
                    answered.add(frame["reply_to"])

        await asyncio.gather(chatter(first), chatter(second))
    assert first.conversation_id and second.conversation_id
    assert most[first.conversation_id] == most[second.conversation_id] == 1
    # The two conversations did run at once, on the two replicas: the check above could fail.
    assert most_overall == 2
