"""Agent accounts: Argon2id hashes, sessions that expire, clear refusals."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

import handoff.db.agents as agents_module
from handoff.db.agents import AgentError, AgentStore
from handoff.db.conversations import ConversationStore
from handoff.db.desk import DeskStore
from handoff.handoff_states import ASSIGN, ENQUEUE
from tests.conftest import PRODUCT_PASSWORD_HASHER

PASSWORD = "a long enough secret"


@pytest.fixture
def product_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes with the gateway's own parameters, not the tests' cheap ones."""
    monkeypatch.setattr(agents_module, "_hasher", PRODUCT_PASSWORD_HASHER)


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "gateway.db")


def test_password_is_stored_as_argon2id_and_sign_in_works(
    store: ConversationStore, tmp_path: Path, product_hasher: None
) -> None:
    agents = AgentStore(store)
    agent = agents.add("Dana@Shop.Example", "Dana", PASSWORD, capacity=3)
    assert agent.email == "dana@shop.example"
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM agents").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # argon2-cffi's defaults: RFC 9106's low-memory profile (64 MiB, 3 passes, 4 lanes).
    assert extract_parameters(stored) == RFC_9106_LOW_MEMORY
    login = agents.login("dana@shop.example", PASSWORD, lifetime=60)
    assert login is not None and login.agent.id == agent.id
    session = agents.authenticate(login.token)
    assert session is not None and session.agent == agent
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        (token_hash,) = conn.execute("SELECT token_hash FROM agent_sessions").fetchone()
    assert login.token not in token_hash


def test_wrong_password_unknown_email_and_expired_sessions_are_refused(
    store: ConversationStore,
) -> None:
    agents = AgentStore(store)
    agents.add("eve@shop.example", "Eve", PASSWORD, capacity=1)
    assert agents.login("eve@shop.example", "wrong password!", lifetime=60) is None
    assert agents.login("nobody@shop.example", PASSWORD, lifetime=60) is None
    expired = agents.login("eve@shop.example", PASSWORD, lifetime=-1)
    assert expired is not None and agents.authenticate(expired.token) is None
    assert agents.authenticate("made-up") is None


def test_a_hash_made_with_other_parameters_is_redone_at_sign_in(
    store: ConversationStore, tmp_path: Path, product_hasher: None
) -> None:
    agents = AgentStore(store)
    agents.add("gil@shop.example", "Gil", PASSWORD, capacity=1)
    older = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        conn.execute("UPDATE agents SET password_hash = ?", [older])
    assert agents.login("gil@shop.example", PASSWORD, lifetime=60) is not None
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM agents").fetchone()
    assert extract_parameters(stored) == RFC_9106_LOW_MEMORY
    assert agents.login("gil@shop.example", PASSWORD, lifetime=60) is not None


def test_new_password_ends_open_sessions(store: ConversationStore) -> None:
    agents = AgentStore(store)
    agents.add("fay@shop.example", "Fay", PASSWORD, capacity=1)
    login = agents.login("fay@shop.example", PASSWORD, lifetime=60)
    assert login is not None
    agents.set_password("fay@shop.example", "another long secret")
    assert agents.authenticate(login.token) is None
    assert agents.login("fay@shop.example", "another long secret", lifetime=60) is not None


@pytest.mark.parametrize(
    ("email", "name", "password", "capacity", "message"),
    [
        ("not-an-email", "X", PASSWORD, 1, "not an email"),
        ("x@shop.example", " ", PASSWORD, 1, "needs a name"),
        ("x@shop.example", "X", "short", 1, "at least"),
        ("x@shop.example", "X", PASSWORD, 0, "Capacity"),
    ],
)
def test_bad_accounts_are_refused_with_a_reason(
    store: ConversationStore, email: str, name: str, password: str, capacity: int, message: str
) -> None:
    with pytest.raises(AgentError, match=message):
        AgentStore(store).add(email, name, password, capacity=capacity)


def test_duplicate_email_is_refused(store: ConversationStore) -> None:
    agents = AgentStore(store)
    agents.add("gus@shop.example", "Gus", PASSWORD, capacity=1)
    with pytest.raises(AgentError, match="exists already"):
        agents.add("GUS@shop.example", "Gus 2", PASSWORD, capacity=1)


def test_only_one_of_two_racing_claims_wins(store: ConversationStore) -> None:
    conversation, _ = store.create_conversation(None)
    message, _ = store.append_shopper_message(
        conversation.id, "c1", {"type": "message", "author": "shopper", "text": "a person"}
    )
    store.answer(conversation.id, message.seq, [
        {"type": "handoff", "reason": "asked", "trigger": "requested", "reply_to": message.seq},
    ])
    desk = DeskStore(store)
    (new,) = desk.new()
    assert store.get(conversation.id).mode == "queued"  # type: ignore[union-attr]
    assert desk.move(new, ENQUEUE, [{"type": "mode", "mode": "queued"}],
                     values={"context": {"reason": "asked"}, "priority": 0})
    queued = desk.get(new.id)
    assert queued is not None and queued.state == "queued"
    first, second = (desk.move(queued, ASSIGN, [{"type": "mode", "mode": "agent"}],
                               values={"agent_id": agent_id, "assigned_at": time.time()})
                     for agent_id in ("agent-1", "agent-2"))
    assert first is not None and second is None
    assert desk.loads() == {"agent-1": 1}
    # While a person has the chat, a late bot reply is dropped, not stored.
    late, _ = store.append_shopper_message(
        conversation.id, "c2", {"type": "message", "author": "shopper", "text": "hi"}
    )
    assert store.answer(conversation.id, late.seq, [
        {"type": "message", "author": "bot", "text": "Hi!", "reply_to": late.seq},
    ]) == []
    assert all(e.frame.get("author") != "bot" for e in store.events_after(conversation.id, 0))


def test_login_throttle_blocks_after_repeated_failures_and_forgets_later() -> None:
    from handoff.agent_socket import LoginThrottle

    throttle = LoginThrottle(limit=3, window=60)
    keys = ["email:eve@shop.example", "ip:10.0.0.9"]
    for t in range(3):
        assert throttle.retry_after(keys, now=100 + t) == 0
        throttle.failed(keys, now=100 + t)
    assert throttle.retry_after(keys, now=103) == pytest.approx(57)
    # Another address trying the same email is blocked too; the window passes.
    assert throttle.retry_after(["email:eve@shop.example", "ip:10.0.0.7"], now=110) > 0
    assert throttle.retry_after(keys, now=161) == 0
