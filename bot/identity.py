"""Customer identities vouched for by the shop's backend: HMAC-SHA256 signed, with an expiry.

The shop's server (never the browser) signs ``{"sub": customer_id, "exp": unix_time}``
with the secret it shares with shopchat; the storefront hands the token to the
widget, the widget passes it on, and the gateway verifies it before it lets Rasa
know who the shopper is. A token that is malformed, forged, expired or valid for
suspiciously long is ignored, never trusted: the shopper is then anonymous and
must prove an order is theirs with its email.

Token: ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, first part))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time

__all__ = ["CUSTOMER_ID_PATTERN", "IdentityError", "sign_identity", "verify_identity"]

CUSTOMER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
MAX_TOKEN_LENGTH = 1024


class IdentityError(ValueError):
    """Why a token was refused (logged by the gateway; the shopper just stays anonymous)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed_part: str) -> bytes:
    return hmac.new(secret.encode(), signed_part.encode(), hashlib.sha256).digest()


def sign_identity(customer_id: str, secret: str, ttl: float = 3600.0,
                  now: float | None = None) -> str:
    """What the shop's backend does (shown here for the demo shop and `shopchat identity sign`)."""
    if not CUSTOMER_ID_PATTERN.match(customer_id):
        raise IdentityError("customer ids are 1-64 letters, digits and _ . : @ -")
    if not secret:
        raise IdentityError("an empty secret signs nothing")
    issued = time.time() if now is None else now
    payload = _b64(json.dumps({"sub": customer_id, "exp": int(issued + ttl)},
                              separators=(",", ":")).encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify_identity(token: str, secret: str, max_ttl: float,
                    now: float | None = None) -> str:
    """The customer id inside a genuine, unexpired token; raise :class:`IdentityError` otherwise."""
    if not secret:
        raise IdentityError("no identity secret is configured")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise IdentityError("malformed token")
    payload, signature = token.split(".")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError) as error:
        raise IdentityError("malformed signature") from error
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise IdentityError("bad signature")
    try:
        claims = json.loads(_unb64(payload))
    except (binascii.Error, ValueError) as error:
        raise IdentityError("malformed payload") from error
    if not isinstance(claims, dict):
        raise IdentityError("malformed payload")
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not CUSTOMER_ID_PATTERN.match(subject):
        raise IdentityError("bad customer id")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise IdentityError("missing expiry")
    current = time.time() if now is None else now
    if expires <= current:
        raise IdentityError("expired")
    if expires - current > max_ttl:
        raise IdentityError("expiry too far in the future")
    return subject
