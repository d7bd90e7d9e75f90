"""Signed customer identities: only genuine, unexpired tokens name a customer."""

from __future__ import annotations

import base64
import json

import pytest

from bot.identity import IdentityError, sign_identity, verify_identity

SECRET = "s3cret-shared-with-the-shop"
NOW = 1_800_000_000.0


def test_a_token_signed_with_the_secret_names_its_customer() -> None:
    token = sign_identity("cus_0001", SECRET, ttl=600, now=NOW)
    assert verify_identity(token, SECRET, max_ttl=3600, now=NOW + 1) == "cus_0001"


@pytest.mark.parametrize("reason, token", [
    ("bad signature", sign_identity("cus_0001", "another-secret", now=NOW)),
    ("malformed token", "cus_0001"),
    ("malformed token", ""),
    ("malformed token", "a.b.c"),
])
def test_forged_or_malformed_tokens_are_refused(reason: str, token: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        verify_identity(token, SECRET, max_ttl=3600, now=NOW)


def test_a_tampered_customer_id_breaks_the_signature() -> None:
    token = sign_identity("cus_0001", SECRET, now=NOW)
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "cus_0002"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(IdentityError, match="bad signature"):
        verify_identity(f"{forged}.{signature}", SECRET, max_ttl=3600, now=NOW)


def test_expired_tokens_and_overlong_ones_are_refused() -> None:
    token = sign_identity("cus_0001", SECRET, ttl=60, now=NOW)
    with pytest.raises(IdentityError, match="expired"):
        verify_identity(token, SECRET, max_ttl=3600, now=NOW + 61)
    forever = sign_identity("cus_0001", SECRET, ttl=10 * 365 * 86400, now=NOW)
    with pytest.raises(IdentityError, match="too far"):
        verify_identity(forever, SECRET, max_ttl=86400, now=NOW)


def test_without_a_secret_nothing_verifies() -> None:
    token = sign_identity("cus_0001", SECRET, now=NOW)
    with pytest.raises(IdentityError, match="no identity secret"):
        verify_identity(token, "", max_ttl=3600, now=NOW)


def test_customer_ids_are_checked_when_signing() -> None:
    with pytest.raises(IdentityError):
        sign_identity("cus 0001<script>", SECRET)
