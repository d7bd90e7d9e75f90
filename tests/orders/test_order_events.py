"""POST /api/v1/order-events on a fast-tier gateway (the scripted assistant, real SQLite,
real sockets): the body checked field by field, updates posted only where the order is
verifiably the shopper's, once per event id, live and on resume, by mail when no
conversation can take them, counted by webhooks and the report."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.settings import Settings
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop
from bot.store.updates import OrderUpdate, order_verified_payload
from handoff.analytics import build_report
from handoff.exceptions import OrderEventError
from handoff.order_events import event_key, parse_event
from handoff.privacy import delete, export
from tests.handoff.test_webhooks import SECRET, Receiver
from tests.mail.conftest import mail_settings
from tests.mailbox import Mailbox
from tests.orders.conftest import (
    ANNA,
    BEN,
    OrderGateway,
    body_of,
    customer,
    is_update,
    resumed,
)
from tests.store.fake_shop import TOKEN, running


def rows(gateway: OrderGateway, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(gateway.settings.gateway_db) as conn:
        return conn.execute(query, params).fetchall()


def updates_in(gateway: OrderGateway, conversation_id: str | None) -> int:
    """How many order updates the conversation's event log holds."""
    return sum(1 for (body,) in rows(gateway, "SELECT body FROM events WHERE "
                                              "conversation_id = ?", conversation_id)
               if "order_update" in json.loads(body))


# -- the body ---------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "named"), [
    ({"event_id": "e1", "order_id": "SC-100482", "type": "lost"}, "type"),
    ({"event_id": "e1", "order_id": "banana", "type": "shipped"}, "order_id"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "delayed"}, "new_date"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "delayed", "new_date": "soon"},
     "new_date"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "shipped", "rma": "RMA-5001"},
     "rma"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "refund_issued", "rma": "nope"},
     "rma"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "shipped",
      "tracking_url": "javascript:alert(1)"}, "tracking_url"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "shipped", "colour": "red"},
     "colour"),
    ({"event_id": "e 1!", "order_id": "SC-100482", "type": "shipped"}, "event_id"),
    ({"event_id": "e1", "order_id": "SC-100482", "type": "shipped", "note": "x" * 501},
     "note"),
    ({"event_id": "e1", "type": "shipped"}, "order_id"),
])
def test_a_bad_event_is_refused_naming_the_field(body: dict[str, Any], named: str) -> None:
    with pytest.raises(OrderEventError) as refused:
        parse_event(body)
    assert refused.value.status == 400 and refused.value.code == "bad_event"
    assert named in refused.value.detail


def test_an_event_is_read_in_canonical_form() -> None:
    event = parse_event({"event_id": "e1", "order_id": " #100482 ", "type": "refund_issued",
                         "rma": "rma5001", "note": "  thanks  "})
    assert (event.order_id, event.rma, event.note) == ("SC-100482", "RMA-5001", "thanks")
    assert event_key(event, None) == "e1" and event_key(event, "e1") == "e1"
    assert event.fingerprint() == parse_event({"order_id": "SC-100482", "type":
                                               "refund_issued", "rma": "RMA-5001",
                                               "note": "thanks"}).fingerprint()


async def test_an_event_needs_a_token_an_object_an_id_and_a_known_order(
        order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(ANNA, "processing")
        body = {"order_id": order.id, "type": "shipped"}
        assert (await gateway.post({**body, "event_id": "e1"},
                                   token="sc_" + "x" * 43))[0] == 401
        status, answer = await gateway.post(body, raw="not json")
        assert status == 400 and "JSON object" in answer["detail"]
        status, answer = await gateway.post(body, raw="[1, 2]")
        assert status == 400
        status, answer = await gateway.post({**body, "event_id": "e0", "type": "lost"})
        assert status == 400 and answer["code"] == "bad_event" and "type" in answer["detail"]
        status, answer = await gateway.post(body)
        assert status == 400 and "Idempotency-Key" in answer["detail"]
        status, answer = await gateway.post({**body, "event_id": "a"},
                                            headers={"Idempotency-Key": "b"})
        assert status == 400 and "differ" in answer["detail"]
        status, answer = await gateway.post({**body, "event_id": "e2",
                                             "order_id": "SC-999999999"})
        assert status == 404 and answer["code"] == "unknown_order"
        assert rows(gateway, "SELECT count(*) FROM order_events") == [(0,)]
        async with aiohttp.ClientSession() as session, \
                session.get(f"{gateway.http}/api/v1/openapi.json") as response:
            described = (await response.json())["paths"]["/api/v1/order-events"]["post"]
        schema = described["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {"event_id", "order_id", "type", "new_date",
                                             "tracking_url", "rma", "note"}


# -- where an update goes -------------------------------------------------------------


async def test_the_signed_in_customer_gets_the_update_live_and_nobody_else(
        order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(ANNA, "processing")
        async with customer(gateway, ANNA) as anna, customer(gateway, BEN) as ben, \
                customer(gateway) as guest:
            await guest.turn(f"where is my order {order.id}?")  # only mentions it
            status, answer = await gateway.post({
                "event_id": "evt-1", "order_id": order.id, "type": "delayed",
                "new_date": "2026-12-24", "note": "<b>Snow</b> in the Alps"})
            assert status == 201, answer
            assert answer["channel"] == "conversation"
            assert answer["conversation_id"] == anna.conversation_id
            (update,) = [f for f in await anna.recv_until(is_update)]
            assert update["seq"] == answer["seq"] and update["author"] == "bot"
            assert "is delayed" in update["text"] and "Thursday 24 December" in update["text"]
            assert "From the shop: <b>Snow</b> in the Alps" in update["text"]
            assert update["order_update"] == {"order_id": order.id, "type": "delayed"}
            assert update["buttons"][0]["payload"] == \
                f'/track_order{{"order_id":"{order.id}"}}'
            assert updates_in(gateway, ben.conversation_id) == 0
            assert updates_in(gateway, guest.conversation_id) == 0
            assert updates_in(gateway, anna.conversation_id) == 1
        # What the bot reads about the order now has the new date.
        assert gateway.shop is not None
        changed = gateway.shop.get_order(order.id)
        assert changed is not None and changed.expected_delivery == date(2026, 12, 24)


async def test_an_update_waits_in_the_log_and_comes_on_resume(order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(ANNA, "processing")
        async with customer(gateway, ANNA) as anna:
            pass
        status, answer = await gateway.post({"event_id": "s1", "order_id": order.id,
                                             "type": "shipped",
                                             "tracking_url": "https://track.example/1"})
        assert status == 201 and answer["conversation_id"] == anna.conversation_id
        async with resumed(gateway, anna) as (_, update):
            pass
        assert update["seq"] == answer["seq"] and "has shipped" in update["text"]
        assert "Track it: https://track.example/1" in update["text"]


async def test_a_guest_who_proved_the_order_by_email_gets_its_updates(
        order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(BEN, "shipped")
        async with customer(gateway) as wrong, customer(gateway) as right:
            await wrong.turn(f"my order is {order.id} and my email is not.ben@example.org")
            await right.turn(f"my order is {order.id} and my email is {order.email}")
            assert rows(gateway, "SELECT conversation_id FROM conversation_orders") == \
                [(right.conversation_id,)]
            await wrong.turn("hello again")  # the most recently active, but not theirs
            status, answer = await gateway.post({"event_id": "o1", "order_id": order.id,
                                                 "type": "out_for_delivery"})
            assert status == 201 and answer["conversation_id"] == right.conversation_id
            await right.recv_until(is_update)


async def test_a_notice_in_a_shoppers_own_words_proves_nothing(order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(BEN, "shipped")
        async with customer(gateway) as guest:
            await guest.turn(json.dumps({"custom": order_verified_payload(order.id)}))
        assert rows(gateway, "SELECT count(*) FROM conversation_orders") == [(0,)]


async def test_a_conversation_quiet_for_longer_than_recent_gets_no_update(
        order_gateway: Any) -> None:
    async with order_gateway(order_updates_recent_days=2.0) as gateway:
        order = gateway.order(ANNA, "shipped")
        async with customer(gateway, ANNA) as anna:
            pass
        rows(gateway, "UPDATE conversations SET updated_at = ? WHERE id = ?",
             time.time() - 3 * 86400, anna.conversation_id)
        status, answer = await gateway.post({"event_id": "d1", "order_id": order.id,
                                             "type": "delivered"})
        assert status == 201 and answer["channel"] == "none"
        assert answer["conversation_id"] is None
        assert rows(gateway, "SELECT last_seq FROM conversations WHERE id = ?",
                    anna.conversation_id) == [(anna.last_seq,)]


# -- once per event ------------------------------------------------------------------


async def test_a_retried_event_is_posted_once(order_gateway: Any) -> None:
    async with order_gateway() as gateway:
        order = gateway.order(ANNA, "processing")
        async with customer(gateway, ANNA) as anna:
            body = {"order_id": order.id, "type": "shipped"}
            first = await gateway.post(body, headers={"Idempotency-Key": "ship-1"})
            again = await gateway.post({**body, "event_id": "ship-1"})
            together = await asyncio.gather(*[gateway.post({**body, "event_id": "ship-2"})
                                              for _ in range(4)])
            await anna.recv_until(is_update)
            await anna.recv_until(is_update)
            assert updates_in(gateway, anna.conversation_id) == 2
        assert first[0] == 201 and again[0] == 200 and again[1]["duplicate"] is True
        assert again[1]["seq"] == first[1]["seq"]
        assert sorted(status for status, _ in together) == [200, 200, 200, 201]
        assert len({answer["seq"] for _, answer in together}) == 1
        status, answer = await gateway.post({**body, "event_id": "ship-1",
                                             "note": "another body"})
        assert status == 409 and answer["code"] == "idempotency_conflict"
        assert rows(gateway, "SELECT count(*) FROM order_events") == [(2,)]


# -- mail, webhooks, the report, privacy -------------------------------------------------


async def test_with_no_conversation_the_update_is_mailed_when_the_shop_enables_it(
        order_gateway: Any, mailbox: Mailbox) -> None:
    async with order_gateway(**mail_settings(mailbox.port)) as gateway:
        order = gateway.order(BEN, "shipped")
        status, answer = await gateway.post({"event_id": "m0", "order_id": order.id,
                                             "type": "shipped"})
        assert status == 201 and answer["channel"] == "none"
    async with order_gateway(**mail_settings(mailbox.port),
                             order_updates_by_email=True) as gateway:
        status, answer = await gateway.post({
            "event_id": "m1", "order_id": order.id, "type": "delayed",
            "new_date": "2026-12-30", "note": "<script>x</script> & more"})
        assert status == 201 and answer["channel"] == "email", answer
        (mail,) = await mailbox.wait_for(1)
    assert mail["To"] == order.email and mail["Subject"] == f"Your order {order.id} is delayed"
    assert mail["Auto-Submitted"] == "auto-generated"
    text = body_of(mail, "plain")
    markup = body_of(mail, "html")
    assert "Wednesday 30 December" in text and "<script>x</script> & more" in text
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in markup and "<script>" not in markup


async def test_webhooks_and_the_report_count_every_update(
        order_gateway: Any, tmp_path: Any) -> None:
    async with Receiver() as receiver, order_gateway(
            webhook_urls=[receiver.url], webhook_secret=SecretStr(SECRET),
            webhook_retry_base=0.05) as gateway:
        shipped = gateway.order(ANNA, "processing")
        other = gateway.order(BEN, "shipped")
        async with customer(gateway, ANNA):
            for body in ({"event_id": "w1", "order_id": shipped.id, "type": "shipped"},
                         {"event_id": "w1", "order_id": shipped.id, "type": "shipped"},
                         {"event_id": "w2", "order_id": other.id, "type": "delivered"}):
                assert (await gateway.post(body))[0] in (200, 201)
        hook = await receiver.wait_for("order.update")
        for _ in range(100):
            if len(receiver.accepted) == 2:
                break
            await asyncio.sleep(0.05)
        sent = {e["data"]["event_id"]: e["data"] for e in receiver.accepted}
        assert hook["event"] == "order.update" and set(sent) == {"w1", "w2"}
        assert sent["w1"]["channel"] == "conversation" and sent["w2"]["channel"] == "none"
        now = datetime.now(UTC)
        report = build_report(gateway.settings.gateway_db, gateway.settings.kb_log_db,
                              gateway.settings.tracker_db, now - timedelta(days=1),
                              now + timedelta(minutes=1))
    assert report["totals"]["order_updates"] == {
        "total": 2, "by_type": {"shipped": 1, "delivered": 1},
        "by_channel": {"conversation": 1, "email": 0, "none": 1}}


async def test_privacy_export_and_erasure_cover_order_updates(
        order_gateway: Any, mailbox: Mailbox) -> None:
    async with order_gateway(**mail_settings(mailbox.port),
                             order_updates_by_email=True) as gateway:
        order = gateway.order(BEN, "shipped")
        mailed = await gateway.post({"event_id": "p1", "order_id": order.id,
                                     "type": "delivered"})
        async with customer(gateway, BEN):
            posted = await gateway.post({"event_id": "p2", "order_id": order.id,
                                         "type": "refund_issued"})
        settings = gateway.settings
    assert mailed[1]["channel"] == "email" and posted[1]["channel"] == "conversation"
    exported = export(settings, order.email)
    assert {row["event_key"] for row in exported["gateway"]["order_events"]} == {"p1", "p2"}
    counts = delete(settings, order.email)
    assert counts["order_events"] == 2
    with sqlite3.connect(settings.gateway_db) as conn:
        assert conn.execute("SELECT count(*) FROM order_events").fetchone() == (0,)


# -- a shop's own API as the store ------------------------------------------------------


async def test_with_the_shops_api_the_update_says_what_the_api_holds(
        order_gateway: Any, shop_in: Any, tmp_path: Path) -> None:
    with running(shop_in(Settings(var_dir=tmp_path / "the-shop"))) as url:
        async with order_gateway(shop_backend="http", shop_api_url=url,
                                 shop_api_token=SecretStr(TOKEN)) as gateway:
            order = gateway.order(ANNA, "processing")
            # The shop's system changed the order (its API says so) and tells us.
            api = SQLiteShop(tmp_path / "the-shop" / "shop.db", window=ReturnWindow(30, 60))
            api.record_update(order.id, OrderUpdate("shipped", datetime.now(UTC),
                                                    new_date=date(2027, 3, 3)))
            async with customer(gateway, ANNA) as anna:
                status, answer = await gateway.post({"event_id": "h1", "order_id": order.id,
                                                     "type": "shipped"})
                assert status == 201 and answer["conversation_id"] == anna.conversation_id
                (update,) = [f for f in await anna.recv_until(is_update) if is_update(f)]
            assert "Expected delivery: Wednesday 3 March" in update["text"]
            # Nothing of ours was written: the gateway's own shop file is untouched.
            assert gateway.shop is not None and gateway.shop.get_order(order.id) == order
            api.close()
    async with order_gateway(shop_backend="http", shop_api_url=url,
                             shop_api_token=SecretStr(TOKEN)) as gateway:
        status, answer = await gateway.post({"event_id": "h2", "order_id": order.id,
                                             "type": "shipped"})
    assert status == 503 and answer["code"] == "shop_unavailable"
