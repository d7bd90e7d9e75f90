"""The two interfaces the hub's fan-out stands on, so that several gateway processes can
share one conversation: the log it reads events from, and the bus that tells every process
what happened.

Only what crossing a process boundary needs is here. A process that stores an event
delivers it to its own sockets at once and :meth:`Fanout.announce`\\ s "this conversation's
log reaches seq N"; every other process hears that and reads what its sockets lack from
the :class:`EventLog` (a notice carries no events, so a lost or late one costs a read,
never an event). Control frames that are not stored (typing, queue positions) travel as
signals: losing one costs nothing.

Today's implementations: the gateway database's log
(``handoff.db.conversations.SqliteConversations`` is one), and :class:`LocalBus`, which
connects the hubs of one process (one hub in production; two in the tests that play two
gateways); for several processes, :class:`handoff.pgbus.PostgresBus` with the log of
:mod:`handoff.db.pg_conversations`, which announces with ``pg_notify`` in the storing
transaction, and Redis for the signals. The hub does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from handoff.db.conversations import StoredEvent

__all__ = ["EventLog", "Fanout", "Listener", "LocalBus"]


class EventLog(Protocol):
    """Where a conversation's stored events are read back from, in seq order."""

    async def events_after(self, conversation_id: str, seq: int) -> list[StoredEvent]: ...


class Listener(Protocol):
    """What a bus tells each process: a log grew, or a control frame is to be shown."""

    def stored(self, conversation_id: str, seq: int) -> None: ...

    def signalled(self, conversation_id: str, frame: dict[str, Any], role: str | None) -> None: ...

    def following(self) -> list[str]:
        """The conversations it follows: a bus that may have missed notices (its
        connection dropped) tells it where each of their logs stands."""
        ...


class Fanout(Protocol):
    """The bus between gateway processes. Its methods never wait: a notice is handed
    over and sent in the background."""

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of every notice from now on; the result stops that."""
        ...

    def announce(self, conversation_id: str, seq: int) -> None:
        """The conversation's log holds every event up to ``seq``."""
        ...

    def signal(self, conversation_id: str, frame: dict[str, Any], role: str | None) -> None:
        """Show ``frame`` to the conversation's followers (of ``role``, or all)."""
        ...


class LocalBus:
    """The hubs of one process, told synchronously, in the order of the calls (the
    announcing hub too: it finds its sockets already up to date)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def announce(self, conversation_id: str, seq: int) -> None:
        for listener in list(self._listeners):
            listener.stored(conversation_id, seq)

    def signal(self, conversation_id: str, frame: dict[str, Any], role: str | None) -> None:
        for listener in list(self._listeners):
            listener.signalled(conversation_id, frame, role)
