"""Scheduled snapshots across two scheduler replicas: every fire time fires exactly once.

Twenty workloads get one fire time a minute or less ahead (the smallest interval is an
hour, so each fires once in the test), and both schedulers tick every second over the
same due rows. The database says what fired (`snapshots.fire_time`, unique per
workload), the API what a tenant sees, and the schedulers' logs which replica fired.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import wait_until
from tests.scale.client import Caller, quick_workloads
from tests.scale.conftest import Cluster

pytestmark = pytest.mark.slow

WORKLOADS = 20
#: the time the test needs to switch the twenty schedules on before they fall due
MARGIN = timedelta(seconds=5)


def test_every_fire_time_of_twenty_workloads_gives_exactly_one_snapshot_across_two_schedulers(
        cluster: Cluster) -> None:
    # Made with the schedule off: a workload still `creating` when its time comes would
    # be passed over, which is right, but not what this test is about.
    workloads = quick_workloads(cluster, [f"sched{i}" for i in range(WORKLOADS)], {"enabled": False})
    callers = [Caller(cluster, 0), Caller(cluster, 1)]
    ids = list(workloads.values())
    in_ids = ", ".join(f"'{workload}'" for workload in ids)  # uuids made by the service
    for _ in range(3):  # a loaded machine may take longer than MARGIN: then the next minute
        fire = _switch_on(callers, ids)
        if datetime.now(UTC) < fire - timedelta(seconds=3):
            break
        # moved on before anything fired, or the test cannot say which time was whose
        assert not cluster.query(f"SELECT id FROM snapshots WHERE workload_id IN ({in_ids})"), \
            "the machine was too slow to switch twenty schedules on before their fire time"
    else:
        pytest.fail("switching the schedules on kept taking longer than their fire time")
    before = datetime.now(UTC)
    shown = httpx.get(f"{callers[0].base}/workloads/{workloads['sched0']}", headers=callers[0].headers).json()
    assert 0 < shown["workload"]["jobschedule"]["nextrun"] <= (fire - before).total_seconds() + 1

    def all_available() -> bool:
        rows = cluster.query(f"SELECT status FROM snapshots WHERE workload_id IN ({in_ids})")
        return len(rows) >= WORKLOADS and all(row["status"] == "available" for row in rows)

    wait_until(all_available, timeout=(fire - datetime.now(UTC)).total_seconds() + 90, interval=0.5)
    time.sleep(2)  # two more ticks of each replica: room for a second firing to show up

    rows = cluster.query(f"SELECT workload_id, fire_time, name, status FROM snapshots WHERE workload_id IN ({in_ids})")
    by_workload: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_workload.setdefault(str(row["workload_id"]), []).append(row)
    expected_time = fire.replace(tzinfo=None)
    assert sorted(by_workload) == sorted(ids), "a workload's fire time was missed"
    for workload, snapshots in by_workload.items():
        assert len(snapshots) == 1, (workload, snapshots)
        assert snapshots[0]["fire_time"] == expected_time, snapshots
        assert snapshots[0]["name"] == "jobscheduler" and snapshots[0]["status"] == "available"
    for index, workload in enumerate(ids):
        seen = callers[index % 2].snapshots_of(workload)
        assert [(s["name"], s["status"]) for s in seen] == [("jobscheduler", "available")], seen

    # each replica logs what its ticks fired; together they fired each time once
    fired = {name: _fired_since(cluster.log(name), expected_time) for name in cluster.schedulers()}
    assert sum(fired.values()) == WORKLOADS, fired
    for workload in ids:  # and every workload is back to available, its next time an hour on
        shown = callers[0].wait_workload(workload, "available", timeout=30)
        assert shown["jobschedule"]["nextrun"] > 3000


def _switch_on(callers: list[Caller], workloads: list[str]) -> datetime:
    """Give every workload one fire time, the first minute boundary MARGIN or more ahead
    (an hourly schedule: it fires once in the test); returns that time."""
    fire = (datetime.now(UTC) + MARGIN).replace(second=0, microsecond=0) + timedelta(minutes=1)
    # other tests' workloads keep the default schedule, on the hour: keep the minute
    # before it (whose ticks run into it) and the hour itself out of this test's count
    while fire.minute in (59, 0):
        fire += timedelta(minutes=1)
    schedule = {"enabled": True, "start_date": fire.strftime("%m/%d/%Y"), "start_time": fire.strftime("%H:%M"),
                "interval": "1", "timezone": "UTC", "retention_policy_value": "5"}

    def put(index: int) -> None:
        caller = callers[index % 2]
        response = httpx.put(f"{caller.base}/workloads/{workloads[index]}", headers=caller.headers,
                             json={"workload": {"jobschedule": schedule}}, timeout=60)
        assert response.status_code == 202, response.text

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(put, range(len(workloads))))
    return fire


_TICK_LINE = re.compile(r"scheduler \S+ at (\S+): (.*)$", re.MULTILINE)


def _fired_since(log: str, since: datetime) -> int:
    """How many snapshots a scheduler's log says its ticks at or after `since` fired."""
    total = 0
    for at, summary in _TICK_LINE.findall(log):
        if datetime.fromisoformat(at) >= since and (count := re.search(r"(\d+) fired", summary)):
            total += int(count.group(1))
    return total
