"""What the gateway's HTTP handlers share: the bearer token of a request, and JSON bodies
read within a time limit and checked like websocket frames.

Neither raises anything but an HTTP error with a JSON body saying what to fix: a
header or body no client of ours would send is a 400 or a 401, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from handoff.exceptions import ProtocolError
from handoff.persistence import is_token
from handoff.protocol import load_json

__all__ = ["bearer_token", "json_error", "quiet_client_errors", "read_json"]

Body = TypeVar("Body", bound=BaseModel)

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
    404: web.HTTPNotFound, 408: web.HTTPRequestTimeout,
}


def json_error(status: int, message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``."""
    return _ERRORS[status](text=json.dumps({"error": message}), content_type="application/json")


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
        raise json_error(408, f"The request body took longer than {timeout:g} s to "
                              "arrive; send it again.") from None
    except (UnicodeDecodeError, LookupError):  # undecodable, or an unknown charset= named
        raise json_error(400, f"The body is not UTF-8 text. {hint}") from None
    try:
        return model.model_validate(load_json(raw))
    except ProtocolError as error:
        raise json_error(400, f"{error.reason} {hint}") from None
    except ValidationError:
        raise json_error(400, hint) from None


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
