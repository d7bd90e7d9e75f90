"""What the gateway's HTTP handlers share: one error shape, one sign-in check, the bearer
token of a request, and JSON bodies read within a time limit and checked like frames.

Every error of an HTTP endpoint is an RFC 9457 problem (``application/problem+json``:
``type``, ``title``, ``status``, ``detail`` saying what to fix, and the gateway's own
``code``); :func:`problem_middleware` makes it so for aiohttp's own errors (an unknown
path, a wrong method, a body too large) and for a bug (a 500, logged), so that a
header or body no client of ours would send is a 4xx with a reason, never a 500.
:func:`auth_middleware` checks the bearer token of every handler marked with
:func:`requires` before the handler runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from handoff.db.conversations import is_token
from handoff.exceptions import ProtocolError
from handoff.protocol import load_json

__all__ = [
    "AUTH",
    "AUTHORITIES",
    "PROBLEM",
    "Authority",
    "auth_middleware",
    "bearer_token",
    "problem",
    "problem_middleware",
    "quiet_client_errors",
    "read_json",
    "requires",
]

log = logging.getLogger("gateway.http")

Body = TypeVar("Body", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The media type of every HTTP error the gateway sends (RFC 9457).
PROBLEM = "application/problem+json"
#: Where :func:`auth_middleware` leaves who a request was signed in as.
AUTH = web.RequestKey("auth", object)


class _Problem(web.HTTPException):
    """An HTTP error of any status (aiohttp's subclasses fix one each)."""

    def __init__(self, status: int, body: str, headers: Mapping[str, str] | None) -> None:
        self.status_code = status
        super().__init__(text=body, content_type=PROBLEM, headers=headers)


def problem(status: int, detail: str, code: str | None = None,
            headers: Mapping[str, str] | None = None) -> web.HTTPException:
    """An HTTP error as an RFC 9457 problem; ``detail`` tells a person what to do, ``code``
    (default: the status's name, e.g. ``bad_request``) tells a program what happened."""
    phrase = HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail,
            "code": code or phrase.lower().replace(" ", "_").replace("-", "_")}
    return _Problem(status, json.dumps(body), headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer becomes a problem: aiohttp's own (404, 405, 413, …) and a bug's."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == PROBLEM:
            raise
        raise problem(error.status, error.text or error.reason,
                      headers={k: v for k, v in error.headers.items()
                               if k in ("Allow", "Retry-After")}) from None
    except Exception:  # a bug: logged with the request, answered as a problem
        log.exception("%s %s failed", request.method, request.path)
        raise problem(500, "The gateway failed on this request; the error is logged.",
                      "internal_error") from None


#: How a kind of sign-in is checked: the request and its bearer token (None if it has
#: none) to whoever it belongs to, or a problem (401, 403) raised.
Authority = Callable[[web.Request, str | None], Any]
#: The app's authorities by kind (each route module adds its own).
AUTHORITIES = web.AppKey("authorities", dict[str, Authority])


def requires(kind: str) -> Callable[[Handler], Handler]:
    """Mark a handler as needing the sign-in ``kind`` (a key of the app's
    :data:`AUTHORITIES`); the handler finds who it was in ``request[AUTH]``."""
    def mark(handler: Handler) -> Handler:
        handler.requires = kind  # type: ignore[attr-defined]
        return handler
    return mark


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place bearer tokens are checked, for every handler marked with :func:`requires`."""
    kind = getattr(handler, "requires", None)
    if kind is not None:
        request[AUTH] = request.app[AUTHORITIES][kind](request, bearer_token(request))
    return await handler(request)


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case, RFC 6750),
    or None when there is none or it cannot be a token the gateway made."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and is_token(token) else None


async def read_json(request: web.Request, model: type[Body], hint: str,
                    timeout: float) -> Body:
    """The request's JSON body as ``model``; a 400 saying ``hint`` when it is not one, and a
    408 when the client has not sent it all within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            raw = await request.text()
    except TimeoutError:
        raise problem(408, f"The request body took longer than {timeout:g} s to "
                              "arrive; send it again.") from None
    except (UnicodeDecodeError, LookupError):  # undecodable, or an unknown charset= named
        raise problem(400, f"The body is not UTF-8 text. {hint}") from None
    try:
        return model.model_validate(load_json(raw))
    except ProtocolError as error:
        raise problem(400, f"{error.reason} {hint}") from None
    except ValidationError:
        raise problem(400, hint) from None


class _ClientErrors(logging.Filter):
    """aiohttp logs a request it could not parse (a control character in a header, a
    broken request line: the client's fault, already answered with a 400) as an ERROR
    with a traceback. Such a record becomes one INFO line, so that anyone can not fill
    the log with tracebacks, and an ERROR in it is always the gateway's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and error.code < 500:
            # The first line only: the next ones quote the request, tokens included.
            message = str(error.message).strip().split("\n", 1)[0].rstrip(":")[:200]
            record.msg = f"{record.getMessage()}: {error.code} {message}"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_client_errors() -> None:
    """Install :class:`_ClientErrors` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientErrors) for f in logger.filters):
        logger.addFilter(_ClientErrors())
