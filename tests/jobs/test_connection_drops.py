"""Jobs complete when the database drops their connection in the middle of a step.

The connection is killed by the server itself (`pg_terminate_backend`, `KILL`) just
before a chosen statement of the job is sent on it, so the statement meets a dead
connection: the step must run again on a fresh one, and the job end as if nothing
happened. SQLite has no server connection to drop, so these run on the servers only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from cairn.db.models import Instance, Job
from tests.api.test_snapshots import make_disks, register, restore, restored_disks, sha256, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import BACKENDS, Service, kill_server_connection, wait_until

SERVERS = [backend for backend in BACKENDS if backend != "sqlite"]
pytestmark = pytest.mark.parametrize("service", SERVERS, indirect=True)

Match = Callable[[str, Any], bool]


def updates(table: str, value: str) -> Match:
    """Matches an UPDATE of `table` that writes `value` (a state) among its parameters."""
    return lambda statement, parameters: (statement.startswith(f"UPDATE {table} ")
                                          and value in repr(parameters))


def inserts(table: str) -> Match:
    """Matches an INSERT into `table`."""
    return lambda statement, _parameters: statement.startswith(f"INSERT INTO {table} ")


class ConnectionKiller:
    """Kills the connection a matching statement is about to be sent on, once per match."""

    def __init__(self, api: Service, matches: dict[str, Match]) -> None:
        self.api = api
        self._matches = dict(matches)
        self._unclaimed = dict(matches)
        self.fired: list[str] = []
        self._lock = threading.Lock()

    def before_execute(self, conn: sa.Connection, _cursor: Any, statement: str, parameters: Any,
                       _context: Any, _many: bool) -> None:
        with self._lock:
            name = next((n for n, match in self._unclaimed.items() if match(statement, parameters)), None)
            if name is None:
                return
            # Claimed before the kill so no other statement fires it twice; it counts as
            # fired only once the server has let the connection go.
            del self._unclaimed[name]
        dbapi = conn.connection.dbapi_connection
        server_id = dbapi.info.backend_pid if self.api.backend == "postgresql" else dbapi.thread_id()  # type: ignore[union-attr]
        kill_server_connection(self.api.backend, server_id)
        with self._lock:
            self.fired.append(name)

    @property
    def pending(self) -> bool:
        """Whether some match has not yet seen its connection killed."""
        with self._lock:
            return len(self.fired) < len(self._matches)


@pytest.fixture
def killer(api: Service) -> Iterator[Callable[[dict[str, Match]], ConnectionKiller]]:
    engine = api.runtime.database.engine
    made: list[ConnectionKiller] = []

    def arm(matches: dict[str, Match]) -> ConnectionKiller:
        made.append(ConnectionKiller(api, matches))
        event.listen(engine, "before_cursor_execute", made[-1].before_execute)
        return made[-1]
    yield arm
    for each in made:
        event.remove(engine, "before_cursor_execute", each.before_execute)


def test_a_snapshot_and_a_restore_complete_when_every_step_loses_its_connection(
        api: Service, tmp_path: Path, killer: Callable[[dict[str, Match]], ConnectionKiller]) -> None:
    import random

    raw, _ = make_disks(tmp_path / "disks", random.Random(3), size=4 << 20)
    token = api.token("p1")
    workload = create_workload(api, token, [register(api, "p1", "web", raw)])["id"]
    wait_status(api, token, workload, "available")

    steps = killer({"snapshot executing": updates("snapshots", "executing"),
                    "snapshot uploading": updates("snapshots", "uploading"),
                    "snapshot available": updates("snapshots", "available"),
                    "job succeeded": updates("jobs", "succeeded")})
    taken = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    assert taken["progress_percent"] == 100 and taken["error_msg"] is None
    wait_until(lambda: not steps.pending, timeout=60)
    assert sorted(steps.fired) == ["job succeeded", "snapshot available", "snapshot executing",
                                   "snapshot uploading"]

    def job_states() -> list[str]:
        with api.runtime.database.reader() as session:
            return list(session.scalars(sa.select(Job.state).where(Job.subject_id == taken["id"])))
    wait_until(lambda: job_states() != ["running"], timeout=60)
    assert job_states() == ["succeeded"]
    wait_status(api, token, workload, "available")

    steps = killer({"restore executing": updates("restores", "executing"),
                    "instance registered": inserts("instances"),
                    "restore available": updates("restores", "available")})
    done = restore(api, token, workload, taken["id"], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "available", done
    assert sorted(steps.fired) == ["instance registered", "restore available", "restore executing"]
    assert [sha256(path) for path in restored_disks(api, [i["id"] for i in done["instances"]])] == [sha256(raw)]
    with api.runtime.database.reader() as session:  # the original and one restored, not two
        assert session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 2


def reads(column: str, skip: int = 0) -> Match:
    """Matches a SELECT of `column` (`table.column`) alone, after letting `skip` such
    statements (that it was asked about) through."""
    seen = [0]

    def match(statement: str, _parameters: Any) -> bool:
        if not statement.startswith(f"SELECT {column} "):
            return False
        seen[0] += 1
        return seen[0] > skip
    return match


def sets(table: str, column: str) -> Match:
    """Matches an UPDATE of `table` that sets `column` first."""
    return lambda statement, _parameters: statement.startswith(f"UPDATE {table} SET {column}=")


def test_a_failed_restore_is_cleaned_up_when_its_steps_lose_their_connection(
        api: Service, tmp_path: Path, killer: Callable[[dict[str, Match]], ConnectionKiller]) -> None:
    from tests.workloads.test_cleanup import data_disk, jobs_of_kind, leftovers, lose_manifest

    disks = tmp_path / "disks"
    token = api.token("p1")
    web, db = (register(api, "p1", name, data_disk(disks / f"{name}.raw")) for name in ("web", "db"))
    workload = create_workload(api, token, [web, db])["id"]
    wait_status(api, token, workload, "available")
    taken = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    lose_manifest(api, {"workload": workload, "snapshot": taken["id"]}, db)  # web is written, then db fails

    # asked in this order: the second read is the clean-up job's (the settlement's own
    # read, run again once its connection was killed, is let through)
    steps = killer({"destinations recorded": sets("jobs", "destinations"),
                    "destinations read to settle": reads("jobs.destinations"),
                    "destinations read to clean up": reads("jobs.destinations", skip=1),
                    "cleanup succeeded": updates("jobs", "succeeded")})
    done = restore(api, token, workload, taken["id"], {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "error", done
    wait_until(lambda: not steps.pending, timeout=60)
    assert sorted(steps.fired) == ["cleanup succeeded", "destinations read to clean up",
                                   "destinations read to settle", "destinations recorded"]
    wait_until(lambda: [j.state for j in jobs_of_kind(api, "cleanup")] == ["succeeded"], timeout=60)
    assert leftovers(disks, done["id"]) == []
    wait_status(api, token, workload, "available")
