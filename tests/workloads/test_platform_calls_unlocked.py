"""No platform call is made while a workload row is locked.

A platform call can take seconds (a cloud API answering), and a locked workload row
holds every other writer of that workload, and the scheduler's claim, for that long.
Each call to the local platform's `find_instances` here first asks, from a connection
of its own, for every workload row with `FOR UPDATE NOWAIT`: a row locked by the
calling request makes that fail at once, and the test records it. PostgreSQL and
MariaDB only (SQLite has no row locks).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cairn.platforms.local import LocalPlatform
from tests.api.test_snapshots import restore, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import BACKENDS, Service
from tests.scheduler.test_scheduler import first_fire, make_scheduler, schedule, settle  # noqa: F401

LOCK_PROBE = "SELECT id FROM workloads FOR UPDATE NOWAIT"


@pytest.fixture
def locked_calls(api: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What each platform call found locked (an empty list: nothing was)."""
    found: list[str] = []
    original = LocalPlatform.find_instances
    probe = sa.create_engine(api.runtime.settings.database_url, poolclass=sa.pool.NullPool)

    def probing(self: LocalPlatform, project_id: str, instance_ids: list[str]) -> Any:
        with probe.connect() as conn:
            if api.backend == "mariadb":
                conn.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
            try:
                conn.execute(sa.text(LOCK_PROBE))
            except sa.exc.DBAPIError as exc:
                found.append(f"find_instances({instance_ids}) while a workload row was locked: {exc.orig}")
            conn.rollback()
        return original(self, project_id, instance_ids)

    monkeypatch.setattr(LocalPlatform, "find_instances", probing)
    yield found
    probe.dispose()


@pytest.mark.parametrize("service", [b for b in BACKENDS if b != "sqlite"], indirect=True)
def test_snapshot_modify_restore_and_schedule_ask_the_platform_with_no_row_locked(
        api: Service, locked_calls: list[str], first_fire: Any, tmp_path: Path) -> None:  # noqa: F811
    token = api.token()
    first, second = api.add_instance(name="a"), api.add_instance(name="b")
    workload = create_workload(api, token, [first], jobschedule=schedule(first_fire))["id"]
    wait_status(api, token, workload, "available")

    snapshot = take_snapshot(api, token, workload)["id"]
    wait_snapshot(api, token, snapshot)
    wait_status(api, token, workload, "available")

    with api.client(token) as client:
        assert client.put(f"/v1/p1/workloads/{workload}",
                          json={"workload": {"instances": [{"instance-id": first},
                                                           {"instance-id": second}]}}).status_code == 202

    restore(api, token, workload, snapshot, {"type": "openstack", "oneclickrestore": True})
    wait_status(api, token, workload, "available")

    assert make_scheduler(api).tick(first_fire + timedelta(seconds=1)) == 1
    settle(api)
    assert locked_calls == []
