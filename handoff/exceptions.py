"""Every error the gateway can report, in one place."""

from __future__ import annotations

__all__ = [
    "GatewayError",
    "OrderEventError",
    "ProtocolError",
    "RasaUnavailable",
    "ResumeRejected",
]


class GatewayError(Exception):
    """Base class for the gateway's own errors."""


class ProtocolError(GatewayError):
    """A client frame broke the wire protocol; ``code`` and ``reason`` go back in an error frame."""

    def __init__(self, code: str, reason: str, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.client_id = client_id


class ResumeRejected(ProtocolError):
    """A hello named a conversation that does not exist or gave the wrong resume token."""

    def __init__(self) -> None:
        super().__init__(
            "resume_rejected",
            "Unknown conversation or wrong resume_token. Send hello without "
            "conversation_id to start a new conversation.",
        )


class RasaUnavailable(GatewayError):
    """Rasa did not answer (down, starting, or too slow). The shopper's message stays pending."""


class OrderEventError(GatewayError):
    """A shop's order event that cannot be taken: ``status`` (HTTP) and ``code`` say why,
    ``detail`` what to do (an unknown order, a reused event id, the shop unreadable)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
