"""The chat wire protocol (docs/protocol.md), with no I/O.

Parsing and validating client frames, and building the frames the server
sends. The aiohttp handlers read a frame, call into here, and write what comes
back, so every rule of the protocol can be tested without a socket.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from handoff.exceptions import ProtocolError

__all__ = [
    "LANGUAGES",
    "MAX_FRAME_BYTES",
    "MAX_ID",
    "MAX_JSON_DEPTH",
    "MAX_TEXT_BYTES",
    "Button",
    "ClientFrame",
    "Csat",
    "Hello",
    "IdentityIn",
    "Language",
    "LanguageIn",
    "LeaveQueue",
    "MessageIn",
    "OfflineMessage",
    "Page",
    "PageUpdate",
    "Ping",
    "ShopperFrame",
    "TypingIn",
    "ack_frame",
    "check_text",
    "error_frame",
    "internal_error",
    "load_json",
    "parse_client_frame",
    "parse_frame",
    "pong_frame",
    "typing_frame",
    "welcome_frame",
]

PROTOCOL_VERSION = 1

#: Longest shopper message, in UTF-8 bytes.
MAX_TEXT_BYTES = 4096
#: Longest frame the server reads at all; larger ones close the socket (1009).
MAX_FRAME_BYTES = 64 * 1024

#: Deepest nesting of objects and arrays in a frame (a hello's page.cart.items[0] is 4 deep).
MAX_JSON_DEPTH = 16
#: Largest id or seq: SQLite's INTEGER is a signed 64-bit number.
MAX_ID = 2**63 - 1

ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
#: The languages the widget and the gateway's own messages speak (widget/i18n/).
LANGUAGES = ("en", "de", "fr", "es")
Language = Literal["en", "de", "fr", "es"]
ConversationId = Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]
#: A stored row's id (a handoff, a ticket).
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
#: A conversation's event counter as a client last saw it.
Seq = Annotated[int, Field(ge=0, le=MAX_ID)]
#: Prices and totals: finite, not negative, and below any real basket.
Amount = Annotated[float, Field(ge=0, le=1e12)]

#: UTF-16 surrogates are not characters: JSON may spell them ("\\ud800"), UTF-8 cannot.
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Frame(BaseModel):
    # Unknown fields are ignored so newer clients can talk to older servers.
    # NaN and infinities are not numbers a frame may carry.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class CartItem(_Frame):
    sku: Annotated[str, StringConstraints(max_length=64)]
    qty: int = Field(1, ge=0, le=10_000)
    price: Amount | None = None


class Cart(_Frame):
    items: list[CartItem] = Field(default_factory=list, max_length=100)
    total: Amount | None = None
    currency: Annotated[str, StringConstraints(max_length=8)] | None = None


class Page(_Frame):
    """Where the shopper is: passed to Rasa as metadata and shown to agents."""

    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None = None
    type: Annotated[str, StringConstraints(max_length=32)] | None = None
    sku: Annotated[str, StringConstraints(max_length=64)] | None = None
    title: Annotated[str, StringConstraints(max_length=256)] | None = None
    cart: Cart | None = None


class Hello(_Frame):
    type: Literal["hello"]
    conversation_id: ConversationId | None = None
    resume_token: Annotated[str, StringConstraints(max_length=128)] | None = None
    last_seq: Seq = 0
    page: Page | None = None
    #: A customer id signed by the shop's backend (see bot.identity); ignored unless genuine.
    identity: Annotated[str, StringConstraints(max_length=1024)] | None = None
    #: The language the widget speaks (the shopper's choice, the page's or the browser's).
    lang: Language | None = None


class MessageIn(_Frame):
    type: Literal["message"]
    client_id: ClientId
    text: str
    #: The payload of a quick-reply button the bot offered (e.g. "/human_handoff").
    payload: Annotated[str, StringConstraints(max_length=256)] | None = None


class IdentityIn(_Frame):
    """The shopper signed in on the shop after the chat started: a new signed identity."""

    type: Literal["identity"]
    token: Annotated[str, StringConstraints(max_length=1024)]


class Ping(_Frame):
    type: Literal["ping"]


class TypingIn(_Frame):
    """The shopper started or stopped typing (shown to the agent who has the chat)."""

    type: Literal["typing"]
    on: bool


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN)
]


class OfflineMessage(_Frame):
    """A message left for the team when nobody could take the chat."""

    type: Literal["offline_message"]
    client_id: ClientId
    email: Email
    text: str


class Csat(_Frame):
    """The shopper's rating of the agent's help, after the agent closed the chat."""

    type: Literal["csat"]
    client_id: ClientId
    handoff_id: RowId
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None


class PageUpdate(_Frame):
    """The shopper moved on the page (a cart change, a single-page shop's navigation)."""

    type: Literal["page"]
    page: Page


class LanguageIn(_Frame):
    """The shopper chose another language in the widget."""

    type: Literal["language"]
    lang: Language


class LeaveQueue(_Frame):
    """The shopper stops waiting for a person and goes back to the bot."""

    type: Literal["leave_queue"]
    client_id: ClientId


class Button(_Frame):
    title: str
    payload: str


ShopperFrame = (
    Hello | MessageIn | Ping | TypingIn | OfflineMessage | Csat | LeaveQueue | PageUpdate
    | IdentityIn | LanguageIn
)
ClientFrame = Annotated[ShopperFrame, Field(discriminator="type")]
_client_frame: TypeAdapter[ShopperFrame] = TypeAdapter(ClientFrame)
_KNOWN_TYPES = (
    "hello", "message", "ping", "typing", "offline_message", "csat", "leave_queue", "page",
    "identity", "language",
)


#: How many of a frame's problems its error names (the rest are counted).
_PROBLEMS_NAMED = 3


def _describe(error: ValidationError) -> str:
    parts = []
    problems = error.errors(include_input=False, include_url=False)
    for item in problems[:_PROBLEMS_NAMED]:
        where = _shorten(".".join(str(p) for p in item["loc"][1:]) or "frame")
        if item["type"] == "missing":
            parts.append(f"missing field '{where}'")
        else:
            parts.append(f"'{where}': {_shorten(item['msg'], 120)}")
    if len(problems) > _PROBLEMS_NAMED:
        parts.append(f"and {len(problems) - _PROBLEMS_NAMED} more")
    return "; ".join(parts)


def parse_client_frame(raw: str | bytes) -> ShopperFrame:
    """Validate one frame from a shopper's socket, or raise :class:`ProtocolError`.

    The error's ``reason`` says what to fix; its ``client_id`` is set when the
    frame had a readable one, so the client can tell which message failed.
    """
    frame: ShopperFrame = parse_frame(raw, _client_frame, _KNOWN_TYPES)
    if isinstance(frame, MessageIn):
        check_text(frame.text, frame.client_id, allow_empty=frame.payload is not None)
    elif isinstance(frame, OfflineMessage):
        check_text(frame.text, frame.client_id)
    return frame


def parse_frame(raw: str | bytes, adapter: TypeAdapter[Any], known_types: tuple[str, ...]) -> Any:
    """Decode and validate one JSON frame against ``adapter``; errors name what to fix."""
    if isinstance(raw, bytes):
        raise ProtocolError("bad_frame", "Frames must be JSON text, not binary.")
    data = _decode(raw, "Frame")
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "Frame must be a JSON object with a 'type'.")
    client_id = data.get("client_id") if isinstance(data.get("client_id"), str) else None
    if client_id is not None and _SURROGATE.search(client_id):
        client_id = None
    _check_values(data, client_id, "Frame")
    kind = data.get("type")
    if kind not in known_types:
        raise ProtocolError(
            "unknown_type",
            f"Unknown frame type {_shorten(repr(kind))}; expected one of: "
            f"{', '.join(known_types)}.",
            client_id,
        )
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        reason = f"Invalid {kind} frame: {_describe(error)}."
        raise ProtocolError("bad_frame", reason, client_id) from None


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_json(raw: str, what: str = "Body") -> Any:
    """JSON text as Python values, or :class:`ProtocolError` (``bad_json``, ``bad_unicode``).

    Stricter than :func:`json.loads`: no ``NaN``/``Infinity``, at most
    :data:`MAX_JSON_DEPTH` levels of nesting, and every string (keys too) made of
    Unicode characters only: a lone surrogate can be neither stored nor sent on.
    """
    data = _decode(raw, what)
    _check_values(data, None, what)
    return data


def _no_constants(name: str) -> Any:
    raise ProtocolError("bad_json", f"{name} is not a JSON number; send finite numbers only.")


def _decode(raw: str, what: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ProtocolError("bad_json", _too_deep(what)) from None
    except ValueError:  # JSONDecodeError, and integers beyond Python's 4,300 digits
        raise ProtocolError("bad_json", f"{what} is not valid JSON.") from None


def _too_deep(what: str) -> str:
    return f"{what} is nested more than {MAX_JSON_DEPTH} levels deep."


def _check_values(data: Any, client_id: str | None, what: str) -> None:
    """Walk decoded JSON without recursion: nesting depth, and strings free of surrogates."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if (bad := _SURROGATE.search(value)) is not None:
                raise ProtocolError(
                    "bad_unicode",
                    f"Text must be made of Unicode characters; a lone surrogate "
                    f"(\\u{ord(bad.group()):04x}) is not one. Send the text as UTF-8.",
                    client_id,
                )
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ProtocolError("bad_json", _too_deep(what), client_id)
            if isinstance(value, dict):
                pending.extend((key, depth) for key in value)
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)


def check_text(text: str, client_id: str | None, allow_empty: bool = False) -> None:
    """Message text rules shared by shoppers and agents: not blank, at most MAX_TEXT_BYTES."""
    if not text.strip() and not allow_empty:
        raise ProtocolError("empty_text", "Message text is empty.", client_id)
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ProtocolError(
            "text_too_long",
            f"Message is {size} bytes; the limit is {MAX_TEXT_BYTES}. Send it in shorter parts.",
            client_id,
        )


def welcome_frame(
    conversation_id: str, last_seq: int, mode: str, resume_token: str | None
) -> dict[str, Any]:
    """First frame after a hello. ``resume_token`` only when the conversation is new."""
    frame: dict[str, Any] = {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "conversation_id": conversation_id,
        "last_seq": last_seq,
        "mode": mode,
        "max_text_bytes": MAX_TEXT_BYTES,
    }
    if resume_token is not None:
        frame["resume_token"] = resume_token
    return frame


def ack_frame(client_id: str, seq: int, duplicate: bool) -> dict[str, Any]:
    return {"type": "ack", "client_id": client_id, "seq": seq, "duplicate": duplicate}


def internal_error(client_id: str | None = None) -> ProtocolError:
    """What a client is told when the server failed on its frame (a bug, logged)."""
    return ProtocolError(
        "internal_error",
        "The server could not handle this frame (the error is logged). The connection is "
        "still usable; a message that got no ack may be sent again.",
        client_id,
    )


def error_frame(error: ProtocolError) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": error.code, "reason": error.reason}
    if error.client_id is not None:
        frame["client_id"] = error.client_id
    return frame


def typing_frame(on: bool, author: str = "bot") -> dict[str, Any]:
    return {"type": "typing", "on": on, "author": author}


def pong_frame() -> dict[str, Any]:
    return {"type": "pong"}


# -- events around a handoff (stored, seq'd; docs/protocol.md "Events") --------------

Mode = Literal["bot", "queued", "agent"]
#: Why the shopper is offered to leave a message: nobody is online, or the wait is long.
OfflineReason = Literal["no_agents", "long_wait"]


def system_message(text: str) -> dict[str, Any]:
    """The gateway saying something to the shopper in words (after a mode change, say)."""
    return {"type": "message", "author": "system", "text": text}


def shopper_message(text: str) -> dict[str, Any]:
    return {"type": "message", "author": "shopper", "text": text}


def agent_message(agent_name: str, text: str) -> dict[str, Any]:
    return {"type": "message", "author": "agent", "agent": {"name": agent_name}, "text": text}


def mode_frame(mode: Mode, *, handoff_id: int | None = None,
               agent_name: str | None = None) -> dict[str, Any]:
    """Who answers now: ``queued`` names the handoff, ``agent`` the person."""
    frame: dict[str, Any] = {"type": "mode", "mode": mode}
    if handoff_id is not None:
        frame["handoff_id"] = handoff_id
    if agent_name is not None:
        frame["agent"] = {"name": agent_name}
    return frame


def offline_form_frame(handoff_id: int, reason: OfflineReason) -> dict[str, Any]:
    return {"type": "offline_form", "handoff_id": handoff_id, "reason": reason}


def offline_received_frame(handoff_id: int, email: str) -> dict[str, Any]:
    return {"type": "offline_received", "handoff_id": handoff_id, "email": email}


def csat_request_frame(handoff_id: int, agent_name: str, text: str) -> dict[str, Any]:
    return {"type": "csat_request", "handoff_id": handoff_id, "agent": {"name": agent_name},
            "text": text}


def csat_received_frame(handoff_id: int, score: int) -> dict[str, Any]:
    return {"type": "csat_received", "handoff_id": handoff_id, "score": score}


def queue_frame(handoff_id: int, position: int, wait_seconds: int | None) -> dict[str, Any]:
    """A control frame: the shopper's place in the queue and the expected wait."""
    return {"type": "queue", "handoff_id": handoff_id, "position": position,
            "wait_seconds": wait_seconds}
