"""The database handle: engine creation per backend, sessions and units of work.

A `Database` is made once per process from the configured URL. `unit_of_work()` is the
one way code writes: it yields a session, commits when the block succeeds, rolls back
when it raises, and only then runs the callbacks registered with `after_commit` (so a
job is dispatched only once its row is durable, and never for a rolled-back request).

SQLite has one writer at a time, and a writer that finds the lock taken polls for it,
sleeping up to 100 ms between tries: under concurrent writes most of the time went to
those sleeps, and the unlucky waited seconds. So on SQLite the units of work of one
process first take a lock of their own, which a waiter gets as soon as it is free, and
only writers of other processes (the `cairn` commands) meet SQLite's busy timeout.

A server may drop a connection at any moment (a restart, a failover, an operator's
kill). Pooled connections are tested before use, so only a session that holds its
connection at that moment fails, with `ConnectionLost`. The API answers 503 and the
client retries; the jobs' own steps retry on a fresh connection with `reconnecting()`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from cairn.errors import Unavailable

_AFTER_COMMIT = "cairn_after_commit"
#: seconds a unit of work waits for its turn to write on SQLite (SQLite's busy timeout)
WRITE_WAIT_SECONDS = 30.0
#: how long `reconnecting()` keeps trying while the database is unreachable
RECONNECT_PATIENCE_SECONDS = 60.0

log = logging.getLogger(__name__)


class ConnectionLost(Unavailable):
    """The session's connection broke; its transaction was rolled back, or (when the
    commit itself broke) may have committed."""


def reconnecting(patience: float = RECONNECT_PATIENCE_SECONDS) -> Retrying:
    """Attempts at a block that runs again, on a fresh connection, when its connection
    was lost::

        for attempt in reconnecting():
            with attempt, database.unit_of_work() as session:
                ...

    Only for blocks that may run twice: reads, and writes whose second run finds the
    first one's result and does no harm (a lost commit may have been applied).
    """
    return Retrying(retry=retry_if_exception_type(ConnectionLost), stop=stop_after_delay(patience),
                    wait=wait_exponential(multiplier=0.05, max=5), reraise=True,
                    before_sleep=lambda state: log.warning(
                        "the database connection was lost (attempt %d); trying again", state.attempt_number))


def create_db_engine(url: str, *, immediate: bool = True) -> Engine:
    """An engine tuned for its backend (SQLite: WAL, foreign keys, a busy timeout).

    On SQLite, `immediate` makes every transaction take the write lock at BEGIN, so
    concurrent writers queue on the busy timeout instead of failing when a read lock
    cannot be upgraded; read-only sessions use an engine made with `immediate=False`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # As many pooled connections as threads that may use them at once (the API's 40
        # worker threads and the jobs'): a connection opened past the pool's size is closed
        # on return, and opening one (file, pragmas) cost more than the query it served.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=48, max_overflow=16,
                               json_serializer=_json_dumps, json_deserializer=orjson.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Hand transaction control to SQLAlchemy (the "begin" hook below).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20,
                               "json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        options["pool_recycle"] = 3600
    return create_engine(url, **options)


def _json_dumps(value: Any) -> str:
    # orjson: JSON columns are decoded on every listed row, where the stdlib is slow.
    return orjson.dumps(value).decode()


class Database:
    """One process's connection to the database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.backend = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = (create_db_engine(url, immediate=False)
                            if self.backend == "sqlite" else self.engine)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        # Re-entrant: a unit of work may open another in the same thread before it writes.
        self._write_turn = threading.RLock() if self.backend == "sqlite" else None

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        turn = self._write_turn
        if turn is not None and not turn.acquire(timeout=WRITE_WAIT_SECONDS):
            raise Unavailable("The database is busy with other writes; retry the request.")
        session = self._sessions()
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            _roll_back(session)
            _raise_lost(exc)
            raise
        except BaseException:
            _roll_back(session)
            raise
        finally:
            callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_COMMIT, [])
            committed = session.info.pop("committed", False)
            session.close()
            if turn is not None:
                turn.release()
        if committed:
            for callback in callbacks:
                callback()

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session (no write lock on SQLite); rolled back at the end."""
        session = self._read_sessions()
        try:
            yield session
        except DBAPIError as exc:
            _raise_lost(exc)
            raise
        finally:
            _roll_back(session)
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (its result is a cursor's)."""
    return cast(CursorResult[Any], result).rowcount


def _roll_back(session: Session) -> None:
    """Roll back, letting go of a connection the server dropped: the error that ends the
    block (or its reads, which stay valid) must not be replaced by the rollback's."""
    try:
        session.rollback()
    except DBAPIError:
        log.warning("the rollback found the database connection lost; it is discarded")
        session.invalidate()


def _raise_lost(exc: DBAPIError) -> None:
    if exc.connection_invalidated:
        raise ConnectionLost("The database connection was lost; retry the request.") from exc


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once `session`'s unit of work has committed (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    session.info["committed"] = True
