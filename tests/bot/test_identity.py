"""Signed customer identities: only genuine, unexpired HS256 JWTs name a customer."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from bot.identity import IdentityError, sign_identity, verify_identity
from bot.settings import Settings

SECRET = "s3cret-shared-with-the-shop-32-bytes-or-more"


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_signed_with_the_secret_names_its_customer() -> None:
    token = sign_identity("cus_0001", SECRET, ttl=600, email="anna.berg@example.com",
                          name="Anna Berg")
    identity = verify_identity(token, SECRET, max_ttl=3600)
    assert identity.customer_id == "cus_0001"
    assert (identity.email, identity.name) == ("anna.berg@example.com", "Anna Berg")


def test_a_token_from_any_standard_jwt_library_verifies() -> None:
    # What a shop's backend does with its own library: only sub and exp are required.
    token = jwt.encode({"sub": "cus_0003", "exp": int(time.time()) + 300}, SECRET,
                       algorithm="HS256")
    identity = verify_identity(token, SECRET, max_ttl=3600)
    assert identity.customer_id == "cus_0003" and identity.email is None


@pytest.mark.parametrize("reason, token", [
    ("bad signature", sign_identity("cus_0001", "another-secret-of-at-least-32-bytes")),
    ("malformed token", "cus_0001"),
    ("malformed token", ""),
    ("malformed token", "a.b.c"),
    ("malformed token", "x" * 5000),
])
def test_forged_or_malformed_tokens_are_refused(reason: str, token: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        verify_identity(token, SECRET, max_ttl=3600)


def test_a_tampered_customer_id_breaks_the_signature() -> None:
    header, payload, signature = sign_identity("cus_0001", SECRET).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "cus_0002"
    with pytest.raises(IdentityError, match="bad signature"):
        verify_identity(f"{header}.{b64(claims)}.{signature}", SECRET, max_ttl=3600)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    claims = {"sub": "cus_0001", "exp": int(time.time()) + 300}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with pytest.raises(IdentityError, match="algorithm 'none' refused"):
        verify_identity(unsigned, SECRET, max_ttl=3600)
    hs512 = jwt.encode(claims, SECRET * 2, algorithm="HS512")
    with pytest.raises(IdentityError, match="algorithm 'HS512' refused"):
        verify_identity(hs512, SECRET * 2, max_ttl=3600)


def test_expired_tokens_and_overlong_ones_are_refused() -> None:
    stale = sign_identity("cus_0001", SECRET, ttl=60, now=time.time() - 3600)
    with pytest.raises(IdentityError, match="expired"):
        verify_identity(stale, SECRET, max_ttl=3600)
    forever = sign_identity("cus_0001", SECRET, ttl=10 * 365 * 86400)
    with pytest.raises(IdentityError, match="too far"):
        verify_identity(forever, SECRET, max_ttl=86400)


def test_a_token_without_expiry_or_customer_is_refused() -> None:
    no_exp = jwt.encode({"sub": "cus_0001"}, SECRET, algorithm="HS256")
    with pytest.raises(IdentityError, match="missing the 'exp' claim"):
        verify_identity(no_exp, SECRET, max_ttl=3600)
    bad_sub = jwt.encode({"sub": "cus 1<script>", "exp": int(time.time()) + 60}, SECRET,
                         algorithm="HS256")
    with pytest.raises(IdentityError, match="bad claims: sub"):
        verify_identity(bad_sub, SECRET, max_ttl=3600)


def test_without_a_secret_nothing_verifies() -> None:
    token = sign_identity("cus_0001", SECRET)
    with pytest.raises(IdentityError, match="no identity secret"):
        verify_identity(token, "", max_ttl=3600)


def test_secrets_too_short_for_hs256_are_refused_with_how_to_make_one() -> None:
    with pytest.raises(IdentityError, match="at least 32"):
        sign_identity("cus_0001", "short")
    with pytest.raises(ValidationError, match="token_urlsafe"):
        Settings(identity_secret=SecretStr("short"))


def test_customer_ids_are_checked_when_signing() -> None:
    with pytest.raises(IdentityError):
        sign_identity("cus 0001<script>", SECRET)
