"""What a restore or snapshot that did not finish leaves behind is removed by a clean-up job.

In one process (the embedded service): a restore that fails in its worker, and one whose
worker is gone (its job claimed by a worker that never renews the lease, then reaped).
The reaper settles such a job without touching a disk or a target; the clean-up job it
queues, routed to the worker that wrote the files, removes them.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cairn.clock import utcnow
from cairn.db.models import Job, Snapshot, Workload
from cairn.jobs import records
from cairn.jobs.reaper import LEASE_LOST, Reaper
from cairn.jobs.records import JobRecord
from cairn.platforms.local import register_instance
from cairn.workloads import cleanup
from cairn.workloads.restore_plan import RestoreRequest, plan_on
from cairn.workloads.restore_service import RestoreService
from cairn.workloads.snapshot_records import snapshot_record
from cairn.workloads.snapshot_service import SnapshotService
from cairn.workloads.snapshot_type import SnapshotRequest
from cairn.workloads.target_data import manifest_key
from tests.api.test_snapshots import restore, sha256, take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, wait_until


class Doorbells:
    """A dispatcher that only notes the doorbells it is asked to ring: the jobs stay queued."""

    def __init__(self) -> None:
        self.rung: list[str] = []

    def dispatch(self, job_id: str) -> None:
        self.rung.append(job_id)


@pytest.fixture
def protected(api: Service, tmp_path: Path) -> dict[str, Any]:
    """A workload of two instances (one raw disk each) on worker host-a, and a snapshot of it."""
    raw, second = (data_disk(tmp_path / "disks" / name) for name in ("web.raw", "db.raw"))
    token = api.token("p1")
    with api.runtime.database.unit_of_work() as session:
        web = register_instance(session, "p1", "web", [str(raw)], host="host-a").id
        db = register_instance(session, "p1", "db", [str(second)], host="host-a").id
    workload = create_workload(api, token, [web, db])["id"]
    wait_status(api, token, workload, "available")
    snap = wait_snapshot(api, token, take_snapshot(api, token, workload)["id"])
    wait_status(api, token, workload, "available")
    return {"token": token, "workload": workload, "snapshot": snap["id"], "web": web, "db": db,
            "disks": tmp_path / "disks", "raw": raw, "second": second}


def data_disk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(random.Random(path.name).randbytes(3 << 20))
        handle.truncate(8 << 20)
    return path


def leftovers(disks: Path, restore_id: str) -> list[str]:
    """The files of restore `restore_id` in `disks`: restored disks and engine temporaries."""
    return sorted(name for name in os.listdir(disks)
                  if f"-restore-{restore_id[:8]}" in name or cleanup.PARTIAL_INFIX in name)


def lose_manifest(api: Service, protected: dict[str, Any], instance: str) -> None:
    """Delete the manifest of `instance`'s disk from the target: restoring it fails."""
    with api.runtime.database.reader() as session:
        target = session.scalar(select(Workload.backup_target).where(Workload.id == protected["workload"]))
    assert target
    api.runtime.targets.repository(target, "p1").delete_manifest(
        manifest_key(protected["workload"], protected["snapshot"], instance, 0))


def jobs_of_kind(api: Service, kind: str) -> list[JobRecord]:
    with api.runtime.database.reader() as session:
        ids = list(session.scalars(select(Job.id).where(Job.kind == kind)))
        return [records.get_job(session, job_id) for job_id in ids]  # type: ignore[misc]


def test_a_restore_failing_in_its_worker_removes_the_disks_it_had_written(
        api: Service, protected: dict[str, Any]) -> None:
    lose_manifest(api, protected, protected["db"])  # web is restored first, then db fails
    done = restore(api, protected["token"], protected["workload"], protected["snapshot"],
                   {"type": "openstack", "oneclickrestore": True})
    assert done["status"] == "error", done
    assert "could not be found" in done["error_msg"] or "manifest" in done["error_msg"], done
    wait_until(lambda: leftovers(protected["disks"], done["id"]) == [], timeout=30)
    cleanups = jobs_of_kind(api, cleanup.JOB_CLEANUP)
    wait_until(lambda: [j.state for j in jobs_of_kind(api, cleanup.JOB_CLEANUP)] == ["succeeded"])
    assert cleanups[0].payload["worker"] == "host-a"
    assert protected["raw"].exists() and protected["second"].exists()
    assert show(api, protected["token"], protected["workload"])["status"] == "available"


def test_a_failed_inplace_restore_removes_its_temporaries_and_never_the_original_disk(
        api: Service, protected: dict[str, Any]) -> None:
    original = sha256(protected["raw"])
    lose_manifest(api, protected, protected["web"])
    # what the data engine leaves while it writes a disk, had an earlier attempt died
    temporary = protected["disks"] / f".{protected['raw'].name}{cleanup.PARTIAL_INFIX}0badf00d"
    temporary.write_bytes(b"partial")
    done = restore(api, protected["token"], protected["workload"], protected["snapshot"], {
        "type": "openstack", "restore_type": "inplace",
        "openstack": {"instances": [{"id": protected["web"], "include": True},
                                    {"id": protected["db"], "include": False}]}})
    assert done["status"] == "error", done
    wait_until(lambda: [j.state for j in jobs_of_kind(api, cleanup.JOB_CLEANUP)] == ["succeeded"])
    assert not temporary.exists()
    assert sha256(protected["raw"]) == original


def claim_as_a_dead_worker(api: Service, subject_id: str) -> JobRecord:
    """Claim the subject's queued job for a worker that will never renew its lease."""
    with api.runtime.database.unit_of_work() as session:
        job_id = session.scalar(select(Job.id).where(Job.subject_id == subject_id))
        assert job_id is not None
        record = records.claim_job(session, job_id, "host-a:1/dead", utcnow(), timedelta(seconds=1))
    assert record is not None
    return record


def reap(api: Service, doorbells: Doorbells) -> int:
    """One pass of a reaper whose clock is past every lease, in a process that only rings."""
    reaper = Reaper(api.runtime.database, api.runtime.handlers, doorbells,
                    clock=lambda: utcnow() + timedelta(minutes=5), requeue_after=timedelta(hours=1))
    return reaper.reap_once()


def test_a_reaped_restore_is_error_and_a_cleanup_on_its_worker_removes_its_files_idempotently(
        api: Service, protected: dict[str, Any]) -> None:
    doorbells = Doorbells()
    with api.runtime.database.unit_of_work() as session:
        started = RestoreService(doorbells, api.runtime.platform, utcnow).start(
            session, protected["snapshot"], "p1", "u1", RestoreRequest())
        instances = snapshot_record(session.get_one(Snapshot, protected["snapshot"])).instances
    # the dead worker had planned its disks, written the first and begun the second
    job = claim_as_a_dead_worker(api, started.id)
    plan = plan_on(api.runtime.platform, RestoreRequest(), instances, started.id, "p1")
    first, second = plan[0].disks[0].destination, plan[1].disks[0].destination
    with api.runtime.database.unit_of_work() as session:
        cleanup.plan_destinations(session, job, [cleanup.created_file(first), cleanup.created_file(second)])
    Path(first).write_bytes(b"restored")
    partial = Path(second).parent / f".{Path(second).name}{cleanup.PARTIAL_INFIX}1234abcd"
    partial.write_bytes(b"half")
    assert len(leftovers(protected["disks"], started.id)) == 2

    assert reap(api, doorbells) == 1
    with api.client(protected["token"]) as client:
        settled = client.get(f"/v1/p1/workloads/{protected['workload']}/snapshots/{protected['snapshot']}"
                             f"/restores/{started.id}").json()["restore"]
    assert settled["status"] == "error" and settled["error_msg"] == LEASE_LOST
    assert show(api, protected["token"], protected["workload"])["status"] == "available"
    # the reaper touched no file: it queued a clean-up for the worker that wrote them
    assert len(leftovers(protected["disks"], started.id)) == 2
    [queued] = jobs_of_kind(api, cleanup.JOB_CLEANUP)
    assert queued.state == "queued" and queued.payload == {"of_job": job.id, "worker": "host-a"}
    assert doorbells.rung[-1] == queued.id

    assert api.runtime.runner is not None
    api.runtime.runner.run(queued.id)
    assert leftovers(protected["disks"], started.id) == []
    # run again (a doorbell rung twice, a worker that died after removing): no harm done
    with api.runtime.database.unit_of_work() as session:
        again = records.create_job(session, cleanup.JOB_CLEANUP, "p1", utcnow(), payload=dict(queued.payload))
    api.runtime.runner.run(again)
    assert [j.state for j in jobs_of_kind(api, cleanup.JOB_CLEANUP)] == ["succeeded", "succeeded"]
    assert protected["raw"].exists() and protected["second"].exists()


def test_a_reaped_snapshot_leaves_its_target_data_to_a_cleanup_job(api: Service, protected: dict[str, Any]) -> None:
    token, workload = protected["token"], protected["workload"]
    doorbells = Doorbells()
    service = SnapshotService(doorbells, utcnow, api.runtime.platform, api.runtime.database)
    route = service.routes([workload])[workload]
    with api.runtime.database.unit_of_work() as session:
        started = service.take(session, workload, "p1", "u1", SnapshotRequest(), route=route)
        target = session.scalar(select(Workload.backup_target).where(Workload.id == workload))
    assert target
    job = claim_as_a_dead_worker(api, started.id)
    # the dead worker had copied the first disk: its manifest is on the target
    repository = api.runtime.targets.repository(target, "p1")
    partial_key = manifest_key(workload, started.id, protected["web"], 0)
    repository.backup(str(protected["raw"]), partial_key)
    assert partial_key in repository.list_manifests()

    assert reap(api, doorbells) == 1
    assert wait_snapshot(api, token, started.id, "error")["error_msg"] == LEASE_LOST
    assert partial_key in repository.list_manifests()  # the reaper never reaches a target
    [queued] = jobs_of_kind(api, cleanup.JOB_CLEANUP)
    assert queued.payload == {"of_job": job.id, "worker": "host-a"}
    assert api.runtime.runner is not None
    api.runtime.runner.run(queued.id)
    assert [k for k in repository.list_manifests() if k.startswith(f"{workload}/{started.id}/")] == []
    # the snapshot taken before is untouched
    kept = manifest_key(workload, protected["snapshot"], protected["web"], 0)
    assert kept in repository.list_manifests()
