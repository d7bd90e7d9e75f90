"""Rasa's SQL tracker store, tuned for a bot turn (loaded by Rasa, in ``.venv-rasa``).

``bot/endpoints.yml`` names :class:`ShopTrackerStore`. It is Rasa 3.6's own
``SQLTrackerStore`` (same table, same rows, same queries, so every reader of
``var/tracker.db`` and a later switch back keep working) with two costs taken
out of every turn, both measured with py-spy on ``bench/bot_turn.py``:

- **The commit.** Rasa opens SQLite with its defaults: a rollback journal and
  ``synchronous=FULL``, so each turn's commit waits for several fsyncs, on
  Rasa's only thread (about a quarter of a turn). Here the file is in WAL mode
  with ``synchronous=NORMAL``, as the gateway's database is: a commit is a
  write to the log; a process killed with SIGKILL loses nothing committed
  (only a power cut can take back the last commits, never corrupt the file).
  And the connection stays open: a new one per session, as SQLAlchemy 1.4
  gives SQLite files, pays for a checkpoint and an fsync each time it closes.
- **Reading events back.** Rasa finds each stored event's class by walking
  every subclass of ``Event`` for every event of the conversation; here the
  classes are looked up in a table built once. Its two queries per turn (the
  latest session's events, and how many of them are stored) are plain SQL
  here, not built and compiled by the ORM each time.

On PostgreSQL (``bot/endpoints-scaleout.yml``, several Rasa servers sharing
one database) the reading of events is the same, and the events table lives in
its own schema (``schema:``, ``rasa``) so that it never meets a table of the
same name in the database the gateway shares: Rasa would create ``events`` in
``public``. SQLAlchemy's pool already keeps connections to a server, so the
SQLite connection handling does not apply there.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

__all__ = ["ShopTrackerStore", "deserialise_events", "event_classes", "postgres_schema_url"]

log = logging.getLogger(__name__)


@functools.cache
def event_classes() -> dict[str, type[Event]]:
    """Every concrete event class by its ``type_name``, in the order Rasa's own lookup
    (``Event.resolve_by_type``) tries them, so the first of two with one name wins as
    there. Built on first use: by then every event class Rasa has is imported."""
    classes: dict[str, type[Event]] = {}
    for cls in all_subclasses(Event):
        classes.setdefault(cls.type_name, cls)
    return classes


def deserialise_events(events: list[dict[str, Any]]) -> list[Event]:
    """What ``rasa.shared.core.events.deserialise_events`` returns, without the search for
    each event's class; the same rules: a dict without ``event`` and the retired
    ``topic`` are skipped, an unknown name raises ``ValueError``, an event its class
    cannot rebuild is left out with a warning."""
    classes = event_classes()
    out: list[Event] = []
    for parameters in events:
        name = parameters.get("event")
        if name is None or name == "topic":
            continue
        cls = classes.get(name)
        if cls is None:
            raise ValueError(f"Unknown event name '{name}'.")
        event = cls._from_parameters(parameters)
        if event is None:
            log.warning("tracker event %r could not be rebuilt; left out", name)
            continue
        out.append(event)
    return out


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


#: Any key: the advisory lock under which Rasa servers starting together create the schema.
_SCHEMA_LOCK = 0x5C4A7


def postgres_schema_url(url: str, schema: str) -> str:
    """``url`` (a whole ``postgresql://`` URL) with the schema first on the search path;
    creates the schema and Rasa's table in it if missing, under an advisory lock, so that
    replicas starting at once do not race each other into errors."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise ValueError(f"tracker store schema {schema!r}: use lower-case letters, digits, _")
    with_schema = sa.engine.make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}"})
    engine = sa.create_engine(with_schema, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _SCHEMA_LOCK})
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            SQLTrackerStore.Base.metadata.create_all(connection)
    finally:
        engine.dispose()
    return str(with_schema.render_as_string(hide_password=False))


class ShopTrackerStore(SQLTrackerStore):  # type: ignore[misc]
    """``SQLTrackerStore`` with WAL and ``synchronous=NORMAL`` on SQLite, and a faster
    reading of stored events. Takes the same settings in ``endpoints.yml``, and on
    PostgreSQL ``schema``: where the events table lives (given ``url`` as a whole
    ``postgresql://`` URL)."""

    def __init__(self, *args: Any, schema: str | None = None, **kwargs: Any) -> None:
        if schema is not None:
            host = kwargs.get("host") or ""
            if kwargs.get("dialect") != "postgresql" or "://" not in host:
                # Rasa falls back to an in-memory store on AttributeError/ImportError only:
                # a ValueError stops the server with this message.
                raise ValueError("tracker store: schema needs dialect postgresql and url "
                                 "postgresql://user:password@host:port/db")
            kwargs["host"] = postgres_schema_url(host, schema)
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 opens a file database with NullPool: a new connection for
            # every session, and closing the last connection to a WAL file checkpoints
            # and fsyncs it. One connection per thread instead (Rasa uses one).
            self.engine.dispose()
            self.engine = sa.create_engine(self.engine.url,
                                           poolclass=sa.pool.SingletonThreadPool)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
            # WAL is a property of the file: set once, it stays. synchronous is per
            # connection, so it is set on every connection the engine opens.
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.connect() as connection:
                mode = connection.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
            if str(mode).lower() != "wal":
                log.warning("tracker store: SQLite kept journal mode %s, not WAL", mode)

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        query = _ALL_EVENTS if fetch_events_from_all_sessions else _SESSION_EVENTS
        with self.session_scope() as session:
            rows = session.execute(query, {"sender_id": sender_id}).all()
        events = [json.loads(data) for (data,) in rows]
        if not (self.domain and events):
            return None
        return DialogueStateTracker.from_events(
            sender_id, deserialise_events(events), self.domain.slots
        )

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        stored = session.execute(_SESSION_COUNT, {"sender_id": tracker.sender_id}).scalar()
        return itertools.islice(tracker.events, stored, len(tracker.events))


# Rasa's own queries (SQLTrackerStore._event_query), as plain SQL: the ORM built and
# compiled them anew on every turn. The latest session starts at the newest
# session_started event; a conversation without one is all one session.
_SESSION_START = ("(SELECT max(timestamp) FROM events "
                  "WHERE sender_id = :sender_id AND type_name = 'session_started')")
_IN_SESSION = (f"sender_id = :sender_id AND "
               f"(timestamp >= {_SESSION_START} OR {_SESSION_START} IS NULL)")
_ALL_EVENTS = sa.text("SELECT data FROM events WHERE sender_id = :sender_id ORDER BY id")
_SESSION_EVENTS = sa.text(f"SELECT data FROM events WHERE {_IN_SESSION} ORDER BY id")
_SESSION_COUNT = sa.text(f"SELECT count(*) FROM events WHERE {_IN_SESSION}")
