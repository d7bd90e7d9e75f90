"""A shopper's data exported and erased across every store; retention."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.kb.index import Match
from bot.kb.log import KBLog
from bot.settings import PROJECT_DIR, Settings
from bot.store.demo import load_demo
from bot.store.policy import ReturnWindow
from bot.store.sqlite import SQLiteShop
from handoff.db.conversations import ConversationStore
from handoff.privacy import conversations_of, delete, export, purge_older_than
from tests.conftest import run_shopchat

GUEST = "Sam.Guest@example.org"
ANNA = "anna.berg@example.com"
ANNA_STREET = "17 Privet Lane"
OTHER_STREET = "4 Elm Row"


def seed(var: Path) -> dict[str, str]:
    """Conversations in every store: a guest's, Anna's (verified), and a stranger's."""
    shop = SQLiteShop(var / "shop.db", window=ReturnWindow(30, 60))
    load_demo(shop, PROJECT_DIR / "data" / "shop", datetime.now(UTC))
    store = ConversationStore(var / "gateway.db")
    ids = {}
    for who in ("guest", "anna", "stranger"):
        conversation, _ = store.create_conversation({"type": "product"})
        ids[who] = conversation.id
    # Anna moved an order to a new address in her chat, then changed her mind (so the
    # first new address lives only in the audit log); someone else moved one too.
    for who, customer, street in (("anna", "cus_0001", ANNA_STREET),
                                  ("anna", "cus_0001", "9 Birch Close"),
                                  ("stranger", "cus_0002", OTHER_STREET)):
        order = next(o for o in shop.orders_for_customer(customer, 50)
                     if o.status in ("placed", "processing"))
        shop.change_address(order.id, order.shipping_address.model_copy(
            update={"line1": street}), ids[who])
    shop.close()
    text = {"guest": f"my email is {GUEST.lower()}", "anna": "where is my order?",
            "stranger": "do you sell tents?"}
    for who, conversation_id in ids.items():
        store.append_shopper_message(conversation_id, "m1", {
            "type": "message", "author": "shopper", "text": text[who]})
    store.set_customer(ids["anna"], "cus_0001")
    store.db.execute("INSERT INTO tickets (conversation_id, email, message, created_at) "
                     "VALUES (?, ?, 'call me', ?)", [ids["guest"], GUEST, time.time()])
    store.db.execute("INSERT INTO handoffs (conversation_id, trigger, reason, queued_at, context)"
                     " VALUES (?, 'requested', 'r', ?, ?)",
                     [ids["guest"], time.time(), json.dumps({"email": GUEST})])
    store.close()
    log = KBLog(var / "kb.db")
    log.answered(ids["guest"], f"is {GUEST} subscribed to the newsletter", "none",
                 [Match("newsletter", "Newsletter", None, "...", 0.3)])
    log.answered(ids["stranger"], "do you sell tents", "none", [])
    log.close()
    tracker = sqlite3.connect(var / "tracker.db")
    tracker.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) "
                    "NOT NULL, type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name "
                    "VARCHAR(255), action_name VARCHAR(255), data TEXT)")
    for who, conversation_id in ids.items():
        data = json.dumps({"event": "user", "text": text[who]})
        tracker.execute("INSERT INTO events (sender_id, type_name, timestamp, data) "
                        "VALUES (?, 'user', ?, ?)", [conversation_id, time.time(), data])
    tracker.commit()
    tracker.close()
    return ids


def found_anywhere(var: Path, needle: str) -> list[str]:
    """Every file under var/ (databases, WAL and journal files) whose bytes contain needle."""
    hits = []
    for path in var.rglob("*"):
        if path.is_file() and needle.lower().encode() in path.read_bytes().lower():
            hits.append(path.name)
    return hits


def test_a_guest_is_found_exported_and_erased_everywhere(tmp_path: Path) -> None:
    ids = seed(tmp_path)
    settings = Settings(var_dir=tmp_path)
    assert conversations_of(settings, GUEST) == [ids["guest"]]
    data = export(settings, GUEST)
    assert data["gateway"]["tickets"][0]["email"] == GUEST
    assert GUEST.lower() in json.dumps(data["gateway"]["events"])
    assert len(data["knowledge_base"]["kb_answers"]) == 1 and data["rasa_tracker"]
    counts = delete(settings, GUEST)
    assert counts["conversations"] == 1 and counts["rasa_events"] == 1
    assert found_anywhere(tmp_path, GUEST) == []
    # The stranger's conversation is untouched.
    assert conversations_of(settings, "do you sell tents") == [ids["stranger"]]


def test_a_verified_customer_is_erased_and_the_shop_record_pseudonymised(tmp_path: Path) -> None:
    ids = seed(tmp_path)
    settings = Settings(var_dir=tmp_path)
    assert ids["anna"] in conversations_of(settings, ANNA)
    exported = export(settings, ANNA)
    assert exported["shop"]["customers"][0]["id"] == "cus_0001"
    assert len(exported["shop"]["orders"]) >= 4
    assert [e["action"] for e in exported["shop"]["audit"]] == ["address_changed"] * 2
    counts = delete(settings, ANNA)
    assert counts["shop_audit_rows_redacted"] == 2
    assert found_anywhere(tmp_path, ANNA) == []
    assert found_anywhere(tmp_path, ANNA_STREET) == []
    shop = SQLiteShop(tmp_path / "shop.db", window=ReturnWindow(30, 60))
    customer = shop.get_customer("cus_0001")
    assert customer is not None and customer.email.endswith("@invalid")
    assert all(order.email == customer.email for order in shop.orders_for_customer("cus_0001"))
    # The audit keeps what was done and when; only Anna's row lost its detail.
    audit = shop.audit_log()
    assert [(e.action, e.conversation_id) for e in audit] == [
        ("address_changed", ids["anna"]), ("address_changed", ids["anna"]),
        ("address_changed", ids["stranger"]), ("privacy_redaction", None)]
    assert audit[0].detail == audit[1].detail == {"redacted": "privacy request"}
    assert audit[2].detail["to"]["line1"] == OTHER_STREET
    assert audit[3].detail == {"rows": [audit[0].id, audit[1].id]}
    shop.close()
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        logged = conn.execute("SELECT action, subject_sha256 FROM privacy_log").fetchall()
    assert [action for action, _ in logged] == ["export", "delete"]
    assert all(subject and "@" not in subject for _, subject in logged)


def test_retention_deletes_only_old_conversations(tmp_path: Path) -> None:
    ids = seed(tmp_path)
    settings = Settings(var_dir=tmp_path)
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                     [time.time() - 40 * 86400, ids["stranger"]])
    assert purge_older_than(settings, 30) == 1
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        left = {row[0] for row in conn.execute("SELECT id FROM conversations")}
    assert left == {ids["guest"], ids["anna"]}


def test_the_privacy_commands(tmp_path: Path) -> None:
    seed(tmp_path)
    env = {"SHOPCHAT_VAR_DIR": str(tmp_path)}
    out = tmp_path / "export.json"
    exported = run_shopchat("privacy", "export", GUEST, "--output", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["email"] == GUEST
    out.unlink()
    deleted = run_shopchat("privacy", "delete", GUEST, "--yes", env=env)
    assert deleted.returncode == 0 and "conversations 1" in deleted.stdout
    assert found_anywhere(tmp_path, GUEST) == []


def test_a_shopper_answered_by_email_is_erased_from_the_mail_queue_and_threads(
    tmp_path: Path,
) -> None:
    """Answers by mail, transcripts and the ticket's reply thread hold the address and the
    text: found by the address alone, exported, erased; the stranger's mail stays."""
    ids = seed(tmp_path)
    other = "stranger@example.net"
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        mail = ("INSERT INTO mail_outbox (message_id, kind, conversation_id, ticket_id, "
                "recipient, subject, message, next_at, created_at) "
                "VALUES (?, ?, ?, NULL, ?, 'Re: call me', ?, 0, 0)")
        conn.execute(mail, ["<a@shop>", "ticket_reply", ids["guest"], GUEST.lower(),
                            f"To: {GUEST}\n\nWe will call you back."])
        conn.execute(mail, ["<b@shop>", "order_update", None, GUEST,
                            f"To: {GUEST}\n\nYour order shipped."])
        conn.execute(mail, ["<c@shop>", "transcript", ids["stranger"], other,
                            f"To: {other}\n\nYour chat."])
        conn.execute("INSERT INTO mail_threads (ticket_id, conversation_id, email, token, "
                     "subject) VALUES (99, ?, ?, 'tok', 'Re: call me')",
                     [ids["stranger"] + "-not", GUEST])
    settings = Settings(var_dir=tmp_path)
    # The thread alone (no ticket, no message naming the address) is enough to find it.
    assert conversations_of(settings, GUEST) == sorted([ids["guest"], ids["stranger"] + "-not"])
    exported = export(settings, GUEST)
    assert sorted(m["message_id"] for m in exported["gateway"]["mail_outbox"]) == [
        "<a@shop>", "<b@shop>"]
    assert exported["gateway"]["mail_threads"][0]["token"] == "tok"
    counts = delete(settings, GUEST)
    assert counts["mail_outbox"] == 2 and counts["mail_threads"] == 1
    assert found_anywhere(tmp_path, GUEST) == []
    assert found_anywhere(tmp_path, other) == ["gateway.db"]
