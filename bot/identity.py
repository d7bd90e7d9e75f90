"""Customer identities vouched for by the shop's backend: standard HS256 JSON Web Tokens.

The shop's server (never the browser) signs ``{"sub": customer_id, "exp": unix_time}``
(optionally ``email`` and ``name``) with the secret it shares with shopchat, using
whatever JWT library its platform already has; the storefront hands the token to
the widget, the widget passes it on, and the gateway verifies it with PyJWT before
it lets Rasa know who the shopper is. A token that is malformed, forged, expired,
valid for suspiciously long or signed any other way than HS256 (``alg: none``
included) is refused, never trusted: the shopper is then anonymous and must prove
an order is theirs with its email.

Only HS256: the secret is shared, so an asymmetric algorithm buys a shop nothing,
and accepting a list of algorithms is how JWT verifiers get tricked into taking
``none`` or an RSA public key as an HMAC secret.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ALGORITHM",
    "CUSTOMER_ID_PATTERN",
    "MIN_SECRET_BYTES",
    "Identity",
    "IdentityError",
    "sign_identity",
    "verify_identity",
]

ALGORITHM = "HS256"
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
MAX_TOKEN_LENGTH = 2048
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
MIN_SECRET_BYTES = 32
#: Seconds of clock difference between the shop's server and the gateway tolerated on
#: ``exp``, ``iat`` and ``nbf``.
LEEWAY = 30


class IdentityError(ValueError):
    """Why a token was refused (logged by the gateway; the shopper just stays anonymous)."""


class Identity(BaseModel):
    """The claims shopchat reads from a verified token (others, e.g. ``iat``, may be present)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: str = Field(alias="sub", pattern=CUSTOMER_ID_PATTERN)
    expires: float = Field(alias="exp")
    email: str | None = Field(None, max_length=254)
    name: str | None = Field(None, max_length=200)


def _check_secret(secret: str) -> bytes:
    if not secret:
        raise IdentityError("no identity secret is configured")
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise IdentityError(
            f"the identity secret is {len(key)} bytes; HS256 needs at least "
            f"{MIN_SECRET_BYTES} (make one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    return key


def sign_identity(customer_id: str, secret: str, ttl: float = 3600.0, *,
                  email: str | None = None, name: str | None = None,
                  now: float | None = None) -> str:
    """What the shop's backend does (here for the demo shop and `shopchat identity sign`)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": customer_id, "iat": issued, "exp": issued + int(ttl)}
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    try:
        Identity.model_validate(claims)
    except ValidationError as error:
        raise IdentityError("customer ids are 1-64 letters, digits and _ . : @ -") from error
    return jwt.encode(claims, _check_secret(secret), algorithm=ALGORITHM)


def verify_identity(token: str, secret: str, max_ttl: float) -> Identity:
    """The identity in a genuine, unexpired HS256 token; raise :class:`IdentityError` otherwise.

    ``max_ttl``: a token whose ``exp`` lies further ahead than this is refused, so a
    leaked long-lived token (or a shop that signs "forever") cannot be replayed for
    long.
    """
    key = _check_secret(secret)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise IdentityError("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as error:
        raise IdentityError("malformed token: not a JWT") from error
    if header.get("alg") != ALGORITHM:
        raise IdentityError(f"algorithm {header.get('alg')!r} refused: sign with {ALGORITHM}")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], leeway=LEEWAY,
                            options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as error:
        raise IdentityError("expired") from error
    except jwt.InvalidSignatureError as error:
        raise IdentityError("bad signature") from error
    except jwt.MissingRequiredClaimError as error:
        raise IdentityError(f"missing the {error.claim!r} claim") from error
    except jwt.DecodeError as error:
        raise IdentityError(f"malformed token: {error}") from error
    except jwt.InvalidTokenError as error:
        raise IdentityError(f"invalid token: {error}") from error
    try:
        identity = Identity.model_validate(claims)
    except ValidationError as error:
        fields = ", ".join(str(e["loc"][0]) for e in error.errors())
        raise IdentityError(f"bad claims: {fields}") from error
    if identity.expires - time.time() > max_ttl:
        raise IdentityError("expiry too far in the future")
    return identity
