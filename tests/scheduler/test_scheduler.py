"""The scheduler against a real service on each backend, driven tick by tick.

Every test drives `Scheduler.tick(now)` with an injected `now`; no test waits for an
interval to pass. Schedules start tomorrow (UTC), so every injected `now` lies ahead of
the real clock: a scheduler running inside the service with the real clock finds none
of these workloads due, and the tests cannot race it. Between ticks the tests wait for
the snapshot jobs to finish (a scheduled snapshot locks its workload while it runs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from cairn.db.database import Database
from cairn.db.models import Job, Snapshot, Workload
from cairn.scheduler import Scheduler
from tests.api.test_workloads import create_workload
from tests.conftest import Service, wait_until

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def first_fire() -> datetime:
    """The first fire time of `schedule()`: tomorrow 21:00 UTC, naive like the database."""
    tomorrow = datetime.now(UTC).date() + DAY
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, 21, 0)


def schedule(first_fire: datetime, interval: int = 1, **fields: Any) -> dict[str, Any]:
    return {"start_date": first_fire.strftime("%m/%d/%Y"), "start_time": "09:00 PM",
            "timezone": "UTC", "interval": f"{interval}hr", **fields}


def scheduled_workloads(api: Service, jobschedule: dict[str, Any], count: int = 1) -> list[str]:
    """`count` available workloads of one instance each, under `jobschedule`."""
    token = api.token("p1", "u1")
    ids = [create_workload(api, token, [api.add_instance("p1", f"vm{n}")], name=f"w{n}",
                           jobschedule=jobschedule)["id"] for n in range(count)]
    wait_until(lambda: all(status == "available" for status in workload_column(api, ids, Workload.status)),
               timeout=60)
    return ids


def workload_column(api: Service, ids: list[str], column: Any) -> list[Any]:
    with api.runtime.database.reader() as session:
        found: dict[str, Any] = dict(session.execute(sa.select(Workload.id, column).where(Workload.id.in_(ids))).all())
    return [found[i] for i in ids]


def row(api: Service, workload_id: str) -> Workload:
    with api.runtime.database.reader() as session:
        found = session.get_one(Workload, workload_id)
        session.expunge(found)  # readable after the reader's rollback
        return found


def set_row(api: Service, workload_id: str, **values: Any) -> None:
    with api.runtime.database.unit_of_work() as session:
        session.execute(sa.update(Workload).where(Workload.id == workload_id).values(**values))


def snapshots(api: Service, workload_id: str | None = None) -> list[Snapshot]:
    """Live snapshots (all workloads' when `workload_id` is None), by fire time."""
    query = sa.select(Snapshot).where(Snapshot.deleted.is_(False))
    if workload_id is not None:
        query = query.where(Snapshot.workload_id == workload_id)
    with api.runtime.database.reader() as session:
        found = list(session.scalars(query.order_by(Snapshot.fire_time, Snapshot.workload_id)))
        session.expunge_all()
        return found


def settle(api: Service) -> None:
    """Wait until every job has ended: scheduled snapshots are done, workloads unlocked."""
    def idle() -> bool:
        with api.runtime.database.reader() as session:
            return not session.scalar(sa.select(sa.func.count()).select_from(Job)
                                      .where(Job.state.in_(("queued", "running"))))
    wait_until(idle, timeout=60)


def make_scheduler(api: Service, database: Database | None = None, **options: Any) -> Scheduler:
    def no_clock() -> datetime:
        raise AssertionError("tests pass `now` to tick")
    return Scheduler(database or api.runtime.database, api.runtime.snapshots, no_clock, "test", **options)


@pytest.fixture
def admin(api: Service) -> Iterator[str]:
    token = api.token("admin", "root", roles=("admin",))
    yield token
    with api.client(token) as client:  # the switch is stored: never leave it off for the next test
        client.post("/v1/admin/global_job_scheduler/enable")


def test_each_due_time_fires_once_as_jobscheduler(api: Service, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(first_fire, interval=1))
    scheduler = make_scheduler(api)
    assert row(api, workload).next_fire_at == first_fire

    assert scheduler.tick(first_fire - timedelta(seconds=1)) == 0
    assert scheduler.tick(first_fire) == 1
    assert scheduler.tick(first_fire) == 0  # the same instant again: already fired
    settle(api)
    assert scheduler.tick(first_fire + 30 * MINUTE) == 0
    assert scheduler.tick(first_fire + HOUR + 5 * MINUTE) == 1
    settle(api)

    taken = snapshots(api, workload)
    assert [(s.name, s.fire_time, s.status) for s in taken] == [
        ("jobscheduler", first_fire, "available"), ("jobscheduler", first_fire + HOUR, "available")]
    assert [s.snapshot_type for s in taken] == ["full", "incremental"]
    state = row(api, workload)
    assert state.last_fired_at == first_fire + HOUR and state.next_fire_at == first_fire + 2 * HOUR
    with api.client(api.token("p1", "u1")) as client:
        listed = client.get("/v1/p1/snapshots", params={"workload_id": workload}).json()["snapshots"]
    assert [s["name"] for s in listed] == ["jobscheduler", "jobscheduler"]


def test_a_week_of_downtime_yields_one_snapshot(api: Service, first_fire: datetime) -> None:
    hourly, daily = scheduled_workloads(api, schedule(first_fire, interval=1), count=2)
    set_row(api, daily, jobschedule={**row(api, daily).jobschedule, "interval_hours": 24})
    scheduler = make_scheduler(api)
    back = first_fire + 7 * DAY + 30 * MINUTE  # 168 hourly and 8 daily fire times missed

    assert scheduler.tick(back) == 2
    settle(api)
    assert scheduler.tick(back) == 0
    assert [s.fire_time for s in snapshots(api, hourly)] == [first_fire + 7 * DAY]
    assert [s.fire_time for s in snapshots(api, daily)] == [first_fire + 7 * DAY]
    assert row(api, hourly).next_fire_at == first_fire + 7 * DAY + HOUR
    assert row(api, daily).next_fire_at == first_fire + 8 * DAY


def test_nothing_fires_while_the_global_switch_is_off_and_no_burst_after(
        api: Service, admin: str, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(first_fire, interval=1))
    scheduler = make_scheduler(api)
    with api.client(admin) as client:
        assert client.post("/v1/admin/global_job_scheduler/disable").status_code == 200
    for hours in range(4):
        assert scheduler.tick(first_fire + hours * HOUR + MINUTE) == 0
    assert snapshots(api, workload) == []
    assert row(api, workload).next_fire_at == first_fire + 4 * HOUR  # kept moving while off

    with api.client(admin) as client:
        assert client.post("/v1/admin/global_job_scheduler/enable").status_code == 200
    assert scheduler.tick(first_fire + 3 * HOUR + 30 * MINUTE) == 0  # what was passed over stays so
    assert scheduler.tick(first_fire + 4 * HOUR) == 1
    settle(api)
    assert [s.fire_time for s in snapshots(api, workload)] == [first_fire + 4 * HOUR]


def test_off_during_downtime_then_on_fires_only_the_next_time(
        api: Service, admin: str, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(first_fire, interval=24))
    scheduler = make_scheduler(api)
    with api.client(admin) as client:
        client.post("/v1/admin/global_job_scheduler/disable")
    assert scheduler.tick(first_fire + 3 * DAY + HOUR) == 0  # the first tick after downtime, still off
    with api.client(admin) as client:
        client.post("/v1/admin/global_job_scheduler/enable")
    assert scheduler.tick(first_fire + 3 * DAY + 2 * HOUR) == 0
    assert scheduler.tick(first_fire + 4 * DAY) == 1
    settle(api)
    assert [s.fire_time for s in snapshots(api, workload)] == [first_fire + 4 * DAY]


def test_a_disabled_schedule_never_fires(api: Service, first_fire: datetime) -> None:
    created_off, turned_off = scheduled_workloads(api, schedule(first_fire), count=2)
    set_row(api, created_off, jobschedule={**row(api, created_off).jobschedule, "enabled": False},
            next_fire_at=None)
    # stored disabled but with a stale next_fire_at: the scheduler clears it, fires nothing
    set_row(api, turned_off, jobschedule={**row(api, turned_off).jobschedule, "enabled": False})
    scheduler = make_scheduler(api)

    assert scheduler.tick(first_fire + 10 * DAY) == 0
    assert snapshots(api) == []
    assert row(api, turned_off).next_fire_at is None and row(api, turned_off).last_fired_at is None


def test_a_schedule_modified_to_disabled_stops_firing(api: Service, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(first_fire))
    with api.client(api.token("p1", "u1")) as client:
        response = client.put(f"/v1/p1/workloads/{workload}",
                              json={"workload": {"jobschedule": {"enabled": False}}})
    assert response.status_code == 202, response.text
    assert make_scheduler(api).tick(first_fire + DAY) == 0
    assert snapshots(api) == []


def test_end_date_is_honoured(api: Service, first_fire: datetime) -> None:
    end = first_fire.date() + DAY  # two daily fire times: tomorrow's and the day after's
    (workload,) = scheduled_workloads(api, schedule(first_fire, interval=24,
                                                    end_date=end.strftime("%m/%d/%Y")))
    scheduler = make_scheduler(api)
    assert scheduler.tick(first_fire) == 1
    settle(api)
    assert row(api, workload).next_fire_at == first_fire + DAY
    assert scheduler.tick(first_fire + DAY + MINUTE) == 1
    settle(api)
    assert row(api, workload).next_fire_at is None  # past end_date: nothing scheduled any more
    assert scheduler.tick(first_fire + 5 * DAY) == 0
    assert [s.fire_time for s in snapshots(api, workload)] == [first_fire, first_fire + DAY]


def test_a_busy_workload_is_skipped_and_fires_at_its_next_time(
        api: Service, first_fire: datetime, caplog: pytest.LogCaptureFixture) -> None:
    busy, free = scheduled_workloads(api, schedule(first_fire, interval=1), count=2)
    set_row(api, busy, status="locked")  # as while a restore runs
    scheduler = make_scheduler(api)

    with caplog.at_level(logging.WARNING, logger="cairn.scheduler"):
        assert scheduler.tick(first_fire + MINUTE) == 1  # the free one; the busy one is skipped
    assert any(busy in message and "skipped" in message for message in caplog.messages)
    state = row(api, busy)
    assert state.last_fired_at == first_fire and state.next_fire_at == first_fire + HOUR
    settle(api)
    set_row(api, busy, status="available")
    assert scheduler.tick(first_fire + 30 * MINUTE) == 0  # not retried before its next time
    assert scheduler.tick(first_fire + HOUR) == 2
    settle(api)
    assert [s.fire_time for s in snapshots(api, busy)] == [first_fire + HOUR]
    assert [s.fire_time for s in snapshots(api, free)] == [first_fire, first_fire + HOUR]


def test_a_fire_time_already_taken_counts_as_fired(api: Service, first_fire: datetime) -> None:
    """The unique (workload, fire_time) is the last word: a clash is not an error."""
    (workload,) = scheduled_workloads(api, schedule(first_fire, interval=1))
    with api.runtime.database.unit_of_work() as session:  # as if another replica fired it
        session.add(Snapshot(id="already-fired", workload_id=workload, project_id="p1", user_id="u1",
                             name="jobscheduler", snapshot_type="full", status="error",
                             created_at=first_fire, updated_at=first_fire, fire_time=first_fire,
                             instances=[], meta={}))
    scheduler = make_scheduler(api)

    assert scheduler.tick(first_fire) == 0
    state = row(api, workload)
    assert state.status == "available"  # the refused snapshot's lock was undone with it
    assert state.last_fired_at == first_fire and state.next_fire_at == first_fire + HOUR
    assert scheduler.tick(first_fire + HOUR) == 1
    settle(api)
    assert [(s.id == "already-fired", s.fire_time) for s in snapshots(api, workload)] == [
        (True, first_fire), (False, first_fire + HOUR)]


def test_one_broken_workload_does_not_hold_back_the_others(api: Service, first_fire: datetime) -> None:
    broken, healthy = scheduled_workloads(api, schedule(first_fire), count=2)
    set_row(api, broken, jobschedule={"enabled": True})  # unreadable
    scheduler = make_scheduler(api, retry_after=timedelta(minutes=10))

    assert scheduler.tick(first_fire) == 1
    settle(api)
    assert [s.workload_id for s in snapshots(api)] == [healthy]
    assert row(api, broken).next_fire_at == first_fire + 10 * MINUTE  # parked, not a hot loop
    assert scheduler.tick(first_fire + MINUTE) == 0


def test_four_concurrent_schedulers_fire_each_time_exactly_once(api: Service, first_fire: datetime) -> None:
    workloads = scheduled_workloads(api, schedule(first_fire, interval=1), count=20)
    # each replica with its own connection pool, as separate scheduler processes would be
    databases = [Database(api.runtime.database.url) for _ in range(4)]
    # small batches, so the replicas interleave and contend for the same rows
    schedulers = [make_scheduler(api, database, batch_size=3) for database in databases]
    try:
        for round_start in (first_fire, first_fire + HOUR):
            fired = race(schedulers, round_start + MINUTE)
            assert sum(fired) == 20, fired
            settle(api)
    finally:
        for database in databases:
            database.dispose()

    taken = snapshots(api)
    assert len(taken) == 40
    assert {(s.workload_id, s.fire_time) for s in taken} == {
        (w, t) for w in workloads for t in (first_fire, first_fire + HOUR)}
    assert all(s.status == "available" and s.name == "jobscheduler" for s in taken)


def race(schedulers: list[Scheduler], now: datetime) -> list[int]:
    """Tick every scheduler at `now` at the same moment, each from its own thread."""
    start = threading.Barrier(len(schedulers))
    fired = [0] * len(schedulers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            fired[index] = schedulers[index].tick(now)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(schedulers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return fired


def test_retention_applies_to_scheduled_snapshots(api: Service, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(
        first_fire, interval=1, retention_policy_type="Number of Snapshots to Keep",
        retention_policy_value="2"))
    scheduler = make_scheduler(api)
    for hours in range(4):
        assert scheduler.tick(first_fire + hours * HOUR) == 1
        settle(api)
    kept = snapshots(api, workload)
    assert [(s.fire_time, s.status) for s in kept] == [
        (first_fire + 2 * HOUR, "available"), (first_fire + 3 * HOUR, "available")]


def test_the_background_thread_ticks_survives_errors_and_stops(api: Service, first_fire: datetime) -> None:
    (workload,) = scheduled_workloads(api, schedule(first_fire))
    calls = 0

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the first tick fails")  # the loop must log it and go on
        return first_fire + MINUTE

    scheduler = Scheduler(api.runtime.database, api.runtime.snapshots, clock, "thread-test")
    scheduler.start(interval=0.02)
    try:
        with pytest.raises(RuntimeError):
            scheduler.start(interval=0.02)
        wait_until(lambda: snapshots(api, workload))
    finally:
        scheduler.stop()
    settle(api)
    assert calls >= 2
    assert [s.fire_time for s in snapshots(api, workload)] == [first_fire]
