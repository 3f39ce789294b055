"""Pausing and resuming a workload's schedule, and resetting a running snapshot, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cairn.db.models import Job
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service
from tests.scheduler.test_scheduler import first_fire, make_scheduler, schedule, settle, snapshots  # noqa: F401

HOUR = timedelta(hours=1)
MISSING = "00000000-0000-4000-8000-000000000000"


def post(api: Service, token: str, path: str, project: str = "p1") -> Any:
    with api.client(token) as client:
        return client.post(f"/v1/{project}{path}")


def test_a_paused_schedule_does_not_fire_and_fires_again_once_resumed(
        api: Service, first_fire: datetime) -> None:  # noqa: F811
    token = api.token()
    workload = create_workload(api, token, [api.add_instance()], jobschedule=schedule(first_fire))["id"]
    wait_status(api, token, workload, "available")
    paused = post(api, token, f"/workloads/{workload}/pause")
    assert paused.status_code == 202 and paused.content == b""
    assert "nextrun" not in show(api, token, workload)["jobschedule"]
    scheduler = make_scheduler(api)
    assert scheduler.tick(first_fire) == 0
    assert scheduler.tick(first_fire + 2 * HOUR) == 0
    with api.client(token) as client:  # a modify while paused keeps it paused
        assert client.put(f"/v1/p1/workloads/{workload}", json={"workload": {
            "jobschedule": {"interval": "2hr"}}}).status_code == 202
    assert scheduler.tick(first_fire + 4 * HOUR) == 0
    assert snapshots(api, workload) == []
    # an on-request snapshot is not the schedule's: it is taken while paused
    wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    assert post(api, token, f"/workloads/{workload}/resume").status_code == 202
    assert "nextrun" in show(api, token, workload)["jobschedule"]
    assert scheduler.tick(first_fire + 6 * HOUR) == 1
    settle(api)
    assert [s.name for s in snapshots(api, workload)] == ["snapshot", "jobscheduler"]


def test_pause_and_resume_refuse_what_does_not_fit(api: Service) -> None:
    token = api.token()
    workload = create_workload(api, token, [api.add_instance()])["id"]
    wait_status(api, token, workload, "available")
    not_paused = post(api, token, f"/workloads/{workload}/resume")
    assert not_paused.status_code == 409 and "is not paused" in not_paused.json()["conflictingRequest"]["message"]
    assert post(api, token, f"/workloads/{workload}/pause").status_code == 202
    twice = post(api, token, f"/workloads/{workload}/pause")
    assert twice.status_code == 409 and "already paused" in twice.json()["conflictingRequest"]["message"]
    for verb in ("pause", "resume"):
        unknown = post(api, token, f"/workloads/{MISSING}/{verb}")
        assert unknown.status_code == 404 and MISSING in unknown.json()["itemNotFound"]["message"]
        # another project's member does not see the workload
        assert post(api, api.token("p2", "u2"), f"/workloads/{workload}/{verb}", "p2").status_code == 404
        assert post(api, api.token("p1", "u1"), f"/workloads/{workload}/{verb}", "p2").status_code == 400


def test_reset_of_a_running_snapshot_ends_it_error_and_unlocks_the_workload(api: Service) -> None:
    token = api.token()
    vm = api.add_instance(size=8 << 20)
    workload = create_workload(api, token, [vm])["id"]
    wait_status(api, token, workload, "available")
    disk = api.disks.inner.find_instances("p1", [vm])[vm].disks[0].path
    with open(disk, "r+b") as handle:
        handle.write(b"\x17" * (4 << 20))
    with api.disks.holding(disk, 1 << 20) as gate:
        snap = take_snapshot(api, token, workload)["id"]
        gate.wait_reached()
        reset = post(api, token, f"/snapshots/{snap}/reset")
        assert reset.status_code == 202 and reset.content == b""
        with api.client(token) as client:
            shown = client.get(f"/v1/p1/snapshots/{snap}").json()["snapshot"]
        assert shown["status"] == "error" and shown["error_msg"] == "Reset by a user."
        assert show(api, token, workload)["status"] == "available"
        api.jobs.wait_cancel_seen(snap)
    settle(api)
    with api.client(token) as client:
        assert client.get(f"/v1/p1/snapshots/{snap}").json()["snapshot"]["status"] == "error"
    with api.runtime.database.reader() as session:  # what the stopped job recorded is cleaned up
        origin = session.scalar(sa.select(Job.id).where(Job.subject_id == snap, Job.kind == "snapshot"))
        cleanups = [j.payload for j in session.scalars(sa.select(Job).where(Job.kind == "cleanup",
                                                                          Job.state == "succeeded"))]
    assert origin is not None and [c for c in cleanups if origin in c.values()], cleanups
    again = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])  # the workload works on
    assert again["status"] == "available"


def test_reset_refuses_a_finished_snapshot_and_unknown_ids(api: Service) -> None:
    token = api.token()
    workload = create_workload(api, token, [api.add_instance()])["id"]
    wait_status(api, token, workload, "available")
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    finished = post(api, token, f"/snapshots/{snap['id']}/reset")
    assert finished.status_code == 409
    assert "only a running snapshot can be reset" in finished.json()["conflictingRequest"]["message"]
    assert post(api, token, f"/snapshots/{MISSING}/reset").status_code == 404
    assert post(api, api.token("p2", "u2"), f"/snapshots/{snap['id']}/reset", "p2").status_code == 404
    with api.client(None) as anonymous:
        assert anonymous.post(f"/v1/p1/snapshots/{snap['id']}/reset").status_code == 401
