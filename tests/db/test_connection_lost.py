"""A server that drops a session's connection: `ConnectionLost`, and blocks that run again.

The connection is killed with the server's own tool (`pg_terminate_backend`, `KILL`)
from an administrator's connection, in the middle of a session that holds it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.database import ConnectionLost, Database, reconnecting
from cairn.db.models import ServiceSetting
from cairn.errors import Conflict
from tests.conftest import BACKENDS, kill_server_connection

SERVERS = [backend for backend in BACKENDS if backend != "sqlite"]


@pytest.fixture(params=SERVERS)
def server_db(request: pytest.FixtureRequest, database_urls: dict[str, str]) -> Iterator[Database]:
    db = Database(database_urls[request.param])
    with db.unit_of_work() as session:
        session.execute(sa.delete(ServiceSetting))
    yield db
    with db.unit_of_work() as session:
        session.execute(sa.delete(ServiceSetting))
    db.dispose()


def kill_connection_of(db: Database, session: Session) -> None:
    """Kill, from outside, the server connection that `session` holds."""
    own_id = session.scalar(sa.text("SELECT pg_backend_pid()" if db.backend == "postgresql"
                                    else "SELECT CONNECTION_ID()"))
    kill_server_connection("postgresql" if db.backend == "postgresql" else "mariadb", int(own_id))


def settings(db: Database) -> dict[str, str]:
    with db.reader() as session:
        return {row.key: row.value for row in session.scalars(select(ServiceSetting))}


def test_a_write_whose_connection_is_killed_raises_connection_lost_and_writes_nothing(server_db: Database) -> None:
    with pytest.raises(ConnectionLost, match="connection was lost"):
        with server_db.unit_of_work() as session:
            session.add(ServiceSetting(key="lost", value="1"))
            session.flush()
            kill_connection_of(server_db, session)
            session.execute(select(ServiceSetting.key))
    assert settings(server_db) == {}


def test_reads_that_finished_before_their_connection_was_killed_keep_their_result(server_db: Database) -> None:
    with server_db.unit_of_work() as session:
        session.add(ServiceSetting(key="kept", value="1"))
    with server_db.reader() as session:
        found = list(session.scalars(select(ServiceSetting.key)))
        kill_connection_of(server_db, session)  # the reader's rollback meets a dead connection
    assert found == ["kept"]
    assert settings(server_db) == {"kept": "1"}  # and the next session gets a live one


def test_an_error_in_a_unit_of_work_is_not_hidden_by_its_rollback_on_a_killed_connection(
        server_db: Database) -> None:
    with pytest.raises(Conflict, match="the block's own error"):
        with server_db.unit_of_work() as session:
            session.add(ServiceSetting(key="never", value="1"))
            session.flush()
            kill_connection_of(server_db, session)
            raise Conflict("the block's own error")
    assert settings(server_db) == {}


def test_a_read_whose_connection_is_killed_raises_connection_lost(server_db: Database) -> None:
    with pytest.raises(ConnectionLost):
        with server_db.reader() as session:
            kill_connection_of(server_db, session)
            session.execute(select(ServiceSetting.key))
    assert settings(server_db) == {}  # the pool serves a live connection next


def test_reconnecting_runs_the_block_again_on_a_fresh_connection(server_db: Database) -> None:
    attempts = 0
    for attempt in reconnecting(patience=10):
        with attempt, server_db.unit_of_work() as session:
            attempts += 1
            session.add(ServiceSetting(key="written", value=str(attempts)))
            session.flush()
            if attempts < 3:
                kill_connection_of(server_db, session)
    assert attempts == 3
    assert settings(server_db) == {"written": "3"}


def test_reconnecting_lets_other_errors_through_at_once(server_db: Database) -> None:
    attempts = 0
    with pytest.raises(Conflict):
        for attempt in reconnecting(patience=10):
            with attempt, server_db.unit_of_work() as session:
                attempts += 1
                session.add(ServiceSetting(key="refused", value="1"))
                raise Conflict("no")
    assert attempts == 1
    assert settings(server_db) == {}
