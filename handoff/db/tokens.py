"""Integration API tokens (``shopchat tokens``): stored only as their SHA-256, shown once."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from handoff.db.conversations import ConversationStore, hash_token, is_token

__all__ = ["TokenStore"]


class TokenStore:
    def __init__(self, store: ConversationStore) -> None:
        self.db = store.db

    def add(self, name: str) -> str:
        """A new token for ``name`` (returned once; only its hash is kept)."""
        if not name.strip() or len(name) > 80:
            raise ValueError("a token needs a name of 1-80 characters")
        if list(self.db.query("SELECT 1 FROM api_tokens WHERE name = ?", [name])):
            raise ValueError(f"a token named {name!r} exists already; revoke it first")
        token = "sc_" + secrets.token_urlsafe(32)
        self.db.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                        [name, hash_token(token), time.time()])
        return token

    def revoke(self, name: str) -> bool:
        cursor = self.db.execute("DELETE FROM api_tokens WHERE name = ?", [name])
        return bool(cursor.rowcount)

    def all(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT name, created_at FROM api_tokens ORDER BY name"))

    def valid(self, token: str) -> bool:
        if not is_token(token):
            return False
        digest = hash_token(token)
        rows = list(self.db.query("SELECT token_hash FROM api_tokens", []))
        # Compare against every hash so the time taken says nothing about which matched.
        return any([hmac.compare_digest(row["token_hash"], digest) for row in rows])
