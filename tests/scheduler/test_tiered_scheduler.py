"""The scheduler fires a tiered schedule's tiers, tick by tick with an injected `now`.

The same harness as test_scheduler.py: a real service on each backend, schedules that
start tomorrow (UTC) so the service's own scheduler never finds them due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from cairn.db.models import Snapshot
from cairn.workloads.tiers import WEEKDAYS
from tests.conftest import Service
from tests.scheduler.test_scheduler import (
    HOUR,
    MINUTE,
    first_fire,  # noqa: F401 - a fixture
    make_scheduler,
    row,
    scheduled_workloads,
    settle,
    snapshots,
)


def all_snapshots(api: Service, workload_id: str) -> list[Snapshot]:
    with api.runtime.database.reader() as session:
        found = list(session.scalars(sa.select(Snapshot).where(Snapshot.workload_id == workload_id)
                                     .order_by(Snapshot.fire_time)))
        session.expunge_all()
        return found


def test_each_tier_fires_is_recorded_and_keeps_its_own_snapshots(
        api: Service, first_fire: datetime) -> None:  # noqa: F811
    day = WEEKDAYS[first_fire.weekday()]
    (workload,) = scheduled_workloads(api, {
        "start_date": first_fire.strftime("%m/%d/%Y"), "start_time": "9:00 PM", "timezone": "UTC",
        "hourly": {"interval": 1, "retention": 2, "snapshot_type": "incremental"},
        "daily": {"backup_time": ["21:30"], "retention": 1, "snapshot_type": "incremental"},
        "weekly": {"backup_day": [day], "retention": 1}})
    scheduler = make_scheduler(api)
    assert row(api, workload).next_fire_at == first_fire

    ticks = [first_fire, first_fire + 30 * MINUTE, first_fire + HOUR, first_fire + 2 * HOUR,
             first_fire + 3 * HOUR]
    for now in ticks:
        assert scheduler.tick(now - timedelta(seconds=1)) == 0
        assert scheduler.tick(now) == 1
        settle(api)
    assert row(api, workload).next_fire_at == first_fire + 4 * HOUR

    taken = {s.fire_time: s for s in all_snapshots(api, workload)}
    assert [(taken[t].schedule_tiers, taken[t].snapshot_type) for t in ticks] == [
        (["hourly"], "full"),              # the first snapshot is full whatever its tier
        (["daily", "weekly"], "full"),     # weekly snapshots are full
        (["hourly"], "incremental"),
        (["hourly"], "incremental"),
        (["hourly"], "incremental")]
    # hourly keeps its newest two, daily and weekly the 21:30 one
    assert [s.fire_time for s in snapshots(api, workload)] == [ticks[1], ticks[3], ticks[4]]
    for removed in (ticks[0], ticks[2]):
        assert taken[removed].status == "deleted"
        assert taken[removed].deleted_reason == (
            "retention: no tier keeps it any more (hourly keeps the newest 2)")

    with api.client(api.token("p1", "u1")) as client:
        detail = client.get(f"/v1/p1/snapshots/{taken[ticks[1]].id}").json()["snapshot"]
    assert detail["schedule_tiers"] == ["daily", "weekly"] and detail["snapshot_type"] == "full"


def test_a_manual_snapshot_of_a_tiered_workload_belongs_to_the_manual_tier(
        api: Service, first_fire: datetime) -> None:  # noqa: F811
    (workload,) = scheduled_workloads(api, {
        "start_date": first_fire.strftime("%m/%d/%Y"), "start_time": "9:00 PM", "timezone": "UTC",
        "hourly": {"interval": 24, "retention": 3}, "manual": {"retention": 1}})
    with api.client(api.token("p1", "u1")) as client:
        for _ in range(2):
            response = client.post(f"/v1/p1/workloads/{workload}", json={"snapshot": {"name": "m"}})
            assert response.status_code == 200, response.text
            settle(api)
    taken = all_snapshots(api, workload)
    kept, removed = [s for s in taken if not s.deleted], [s for s in taken if s.deleted]
    assert [s.schedule_tiers for s in kept] == [["manual"]]
    assert [s.deleted_reason for s in removed] == [
        "retention: no tier keeps it any more (manual keeps the newest 1)"]
