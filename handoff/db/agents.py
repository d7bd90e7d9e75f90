"""Agent accounts and console logins.

Passwords are hashed with Argon2id (argon2-cffi); a login gives a random
session token that is stored only as its SHA-256 and expires. Accounts live in
the gateway's database so a restart keeps them, and ``shopchat agents add``
writes the same table.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.i18n import LANGUAGES
from handoff.db.conversations import ConversationStore, hash_token, is_token
from handoff.exceptions import GatewayError

__all__ = ["ROLES", "Agent", "AgentError", "AgentStore", "Login"]

#: agent: takes chats; admin: takes chats, sees every chat, uses /admin/; staff: content
#: staff, /admin/ only (never routed chats).
ROLES = ("agent", "admin", "staff")
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when no agent has the email, so that an unknown address
    takes as long as a wrong password. Made on the first login, not at import: it costs
    about half a second, which every gateway start and CLI command paid."""
    return _hasher.hash("not a real password, only for timing")


class AgentError(GatewayError):
    """An account request that cannot be done, with a reason for the person asking."""


@dataclass(frozen=True)
class Agent:
    id: str
    email: str
    name: str
    role: str
    capacity: int
    #: Languages the agent speaks (codes of bot.i18n.LANGUAGES); routing prefers a match.
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: float
    agent: Agent


class AgentStore:
    """The ``agents`` and ``agent_sessions`` tables of the gateway database."""

    def __init__(self, store: ConversationStore) -> None:
        self.db = store.db

    def add(
        self, email: str, name: str, password: str, *, capacity: int, role: str = "agent",
        languages: tuple[str, ...] = (),
    ) -> Agent:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise AgentError(f"{email!r} is not an email address.")
        if not name.strip():
            raise AgentError("The agent needs a name; shoppers see it when the agent joins.")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AgentError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
        if role not in ROLES:
            raise AgentError(f"Role must be one of: {', '.join(ROLES)}.")
        if not 1 <= capacity <= 100:
            raise AgentError("Capacity (chats at once) must be between 1 and 100.")
        unknown = sorted(set(languages) - set(LANGUAGES))
        if unknown:
            raise AgentError(f"Unknown languages {', '.join(unknown)}: the chat speaks "
                             f"{', '.join(LANGUAGES)}.")
        if self.by_email(email) is not None:
            raise AgentError(f"An agent with email {email} exists already.")
        agent = Agent(uuid.uuid4().hex[:12], email, name.strip(), role, capacity,
                      tuple(dict.fromkeys(languages)))
        self.db.table("agents").insert(
            {
                "id": agent.id,
                "email": agent.email,
                "name": agent.name,
                "role": agent.role,
                "capacity": agent.capacity,
                "password_hash": _hasher.hash(password),
                "created_at": time.time(),
                "disabled": 0,
                "languages": ",".join(agent.languages),
            }
        )
        return agent

    def set_password(self, email: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AgentError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
        agent = self.by_email(email)
        if agent is None:
            raise AgentError(f"No agent with email {email}.")
        self.db.execute(
            "UPDATE agents SET password_hash = ? WHERE id = ?", [_hasher.hash(password), agent.id]
        )
        # A new password ends every open login.
        self.db.execute("DELETE FROM agent_sessions WHERE agent_id = ?", [agent.id])

    def all(self) -> list[Agent]:
        rows = self.db.query("SELECT * FROM agents WHERE disabled = 0 ORDER BY name")
        return [_agent(row) for row in rows]

    def get(self, agent_id: str) -> Agent | None:
        rows = list(
            self.db.query("SELECT * FROM agents WHERE id = ? AND disabled = 0", [agent_id])
        )
        return _agent(rows[0]) if rows else None

    def by_email(self, email: str) -> Agent | None:
        rows = list(
            self.db.query(
                "SELECT * FROM agents WHERE email = ? AND disabled = 0", [email.strip().lower()]
            )
        )
        return _agent(rows[0]) if rows else None

    def login(self, email: str, password: str, lifetime: float) -> Login | None:
        """A new session for the right password, else ``None`` (same cost either way)."""
        rows = list(
            self.db.query(
                "SELECT * FROM agents WHERE email = ? AND disabled = 0", [email.strip().lower()]
            )
        )
        stored = rows[0]["password_hash"] if rows else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        agent = _agent(rows[0])
        if _hasher.check_needs_rehash(stored):
            self.db.execute(
                "UPDATE agents SET password_hash = ? WHERE id = ?",
                [_hasher.hash(password), agent.id],
            )
        token = secrets.token_urlsafe(32)
        now = time.time()
        self.db.table("agent_sessions").insert(
            {
                "token_hash": hash_token(token),
                "agent_id": agent.id,
                "created_at": now,
                "expires_at": now + lifetime,
            }
        )
        self.db.execute("DELETE FROM agent_sessions WHERE expires_at < ?", [now])
        return Login(token, now + lifetime, agent)

    def authenticate(self, token: str) -> Login | None:
        """The login a session token belongs to, if it exists and has not expired."""
        if not is_token(token):
            return None
        rows = list(
            self.db.query(
                "SELECT a.*, s.expires_at AS session_expires_at FROM agent_sessions s "
                "JOIN agents a ON a.id = s.agent_id "
                "WHERE s.token_hash = ? AND s.expires_at > ? AND a.disabled = 0",
                [hash_token(token), time.time()],
            )
        )
        if not rows:
            return None
        return Login(token, float(rows[0]["session_expires_at"]), _agent(rows[0]))

    def anyone_signed_in(self, now: float) -> bool:
        """Whether any account that takes chats holds an unexpired session (its console
        may come back after a gateway restart without signing in again)."""
        row = self.db.execute(
            "SELECT 1 FROM agent_sessions s JOIN agents a ON a.id = s.agent_id "
            "WHERE s.expires_at > ? AND a.disabled = 0 AND a.role != 'staff' LIMIT 1",
            [now],
        ).fetchone()
        return row is not None

    def logout(self, token: str) -> None:
        if not is_token(token):
            return
        self.db.execute("DELETE FROM agent_sessions WHERE token_hash = ?", [hash_token(token)])


def _agent(row: dict[str, object]) -> Agent:
    return Agent(
        str(row["id"]), str(row["email"]), str(row["name"]), str(row["role"]),
        int(row["capacity"]),  # type: ignore[call-overload]
        tuple(code for code in str(row.get("languages") or "").split(",") if code),
    )
