"""A real SMTP server for tests: aiosmtpd on a loopback port, in this process (its own
thread and event loop, as aiosmtpd's Controller runs it), keeping every message it
accepts. It can be started late, on a port chosen before, to play an SMTP server that
was down and came back; with ``tls`` it requires STARTTLS and, with ``login``, a user
and password over it, as a mail provider does."""

from __future__ import annotations

import asyncio
import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from shopchat.stack import free_port

__all__ = ["Mailbox"]


class Mailbox:
    """Messages accepted, with their envelope recipients, in arrival order."""

    def __init__(self, port: int | None = None, *, tls: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.login = login
        self.received: list[tuple[list[str], EmailMessage]] = []
        #: Sign-ins refused, and whether a session sent mail without STARTTLS.
        self.refused_logins = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.login is not None and (
                auth_data.login.decode(), auth_data.password.decode()) == self.login:
            return AuthResult(success=True)
        with self._lock:
            self.refused_logins += 1
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.tls is not None:
            options |= {"tls_context": self.tls, "require_starttls": True}
        if self.login is not None:
            options |= {"authenticator": self._authenticate, "auth_required": True,
                        "auth_require_tls": self.tls is not None}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [message for _, message in self.received]

    async def wait_for(self, count: int, timeout: float = 15) -> list[EmailMessage]:
        """The first ``count`` messages, once that many arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages) < count:
            if loop.time() > deadline:
                raise AssertionError(f"{len(self.messages)} mails arrived, not {count}")
            await asyncio.sleep(0.05)
        return self.messages[:count]
