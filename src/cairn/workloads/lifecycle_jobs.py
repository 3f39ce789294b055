"""The jobs behind the workload lifecycle, each reading as what it does:

- create: confirm the instances with the platform, `creating → available`, then
  describe the workload in its target's catalog;
- reset: the next snapshot is full, leftovers of unfinished snapshots leave the target,
  and the platform forgets its change history (libvirt: Cairn's checkpoints), then
  `resetting → available`;
- delete: its Keystone trust is deleted; unless `database_only`, the workload's catalog and every manifest it has
  leave the target and a garbage collection gives the space back, then
  `deleting → deleted` (the row stays for audit; its instances are released).

A failed job puts the workload in `error` with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting, rowcount
from cairn.db.models import Snapshot, Workload, WorkloadInstance
from cairn.errors import NotFound
from cairn.jobs import records as jobs
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, Outcome
from cairn.platforms.base import Platform
from cairn.workloads import states
from cairn.workloads.lifecycle import approx_size_gb
from cairn.workloads.records import WorkloadRecord, get_workload
from cairn.workloads.storage import BackupTargets, RepositoryMissing
from cairn.workloads.target_data import WorkloadData
from cairn.workloads.trusts import TrustService


def _set_status(session: Session, workload_id: str, expected: tuple[str, ...], status: str,
                now: datetime, error: str | None = None, **values: Any) -> bool:
    """Move the workload to `status` if it is in one of `expected`; whether it was."""
    result = session.execute(update(Workload).where(Workload.id == workload_id, Workload.status.in_(expected))
                             .values(status=status, error_msg=error, updated_at=now, **values))
    return rowcount(result) == 1


def _read_workload(job: JobContext) -> WorkloadRecord:
    assert job.record.workload_id is not None
    for attempt in reconnecting():
        with attempt, job.database.reader() as session:
            return get_workload(session, job.record.workload_id, None)
    raise AssertionError("reconnecting() gives up by raising")


class CreateWorkloadJob:
    """Confirms the workload's instances with the platform: `creating → available | error`."""

    def __init__(self, platform: Platform, targets: BackupTargets, clock: Callable[[], datetime]) -> None:
        self.platform = platform
        self.targets = targets
        self.clock = clock

    def run(self, job: JobContext) -> None:
        record = _read_workload(job)
        for attempt in reconnecting():
            with attempt:
                found = self.platform.find_instances(record.project_id, [i.id for i in record.instances])
        instances = []
        for member in record.instances:
            if member.id not in found:
                raise NotFound(f"Instance {member.id} could not be found.")
            self.platform.confirm(found[member.id])
            instances.append(found[member.id])
        # Its project's repository is made here, on a worker that reaches the target (and
        # only on a target whose marker is its own), before the workload is available.
        self.targets.prepare_workload(record)
        # The write is one statement: writers take turns, and everything else was read
        # before (a creating workload's metadata cannot change: modify waits for available).
        metadata = {**record.metadata, "workload_approx_backup_size": approx_size_gb(instances)}
        now = self.clock()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                available = _set_status(session, record.id, (states.CREATING,), states.AVAILABLE, now,
                                        meta=metadata)
        if available:
            record = dataclasses.replace(record, status=states.AVAILABLE, metadata=metadata, updated_at=now)
        WorkloadData.of(self.targets, record).publish_workload(record)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        if outcome.state != jobs.SUCCEEDED and job.workload_id:
            _set_status(session, job.workload_id, (states.CREATING,), states.ERROR, self.clock(),
                        error=outcome.error)


class ResetWorkloadJob:
    """Full next, leftovers off the target, platform history forgotten: `resetting → available`."""

    def __init__(self, platform: Platform, targets: BackupTargets, clock: Callable[[], datetime],
                 gc_wait_seconds: float) -> None:
        self.platform = platform
        self.targets = targets
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds

    def run(self, job: JobContext) -> None:
        workload_id = job.record.workload_id
        assert workload_id is not None
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Workload).where(Workload.id == workload_id).values(full_required=True))
                workload = get_workload(session, workload_id, None)
                kept = set(session.scalars(select(Snapshot.id).where(
                    Snapshot.workload_id == workload_id, Snapshot.deleted.is_(False),
                    Snapshot.status.in_((states.SNAP_AVAILABLE, states.SNAP_DELETING)))))
        job.checkpoint()
        if workload.backup_target:
            self._remove_leftovers(job, WorkloadData.of(self.targets, workload), kept)
        job.checkpoint()
        self.platform.forget_history([m.id for m in workload.instances])

    def _remove_leftovers(self, job: JobContext, data: WorkloadData, kept: set[str]) -> None:
        try:
            leftovers = data.snapshot_ids_with_manifests() - kept
        except RepositoryMissing:  # its create job failed before making one: nothing stored
            return
        for snapshot_id in sorted(leftovers):
            job.checkpoint()
            data.remove_snapshot(snapshot_id)
        if leftovers:
            data.collect_garbage(self.gc_wait_seconds)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.workload_id is not None
        if outcome.state == jobs.SUCCEEDED:
            _set_status(session, job.workload_id, (states.RESETTING,), states.AVAILABLE, self.clock())
        else:
            _set_status(session, job.workload_id, (states.RESETTING,), states.ERROR, self.clock(),
                        error=f"Reset did not complete: {outcome.error}")


class DeleteWorkloadJob:
    """Removes the workload's data (unless database_only), then `deleting → deleted`."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime], gc_wait_seconds: float,
                 trusts: TrustService | None = None) -> None:
        self.targets = targets
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds
        self.trusts = trusts

    def run(self, job: JobContext) -> None:
        assert job.record.workload_id is not None
        # Its Keystone trust goes first, even with database_only: a deleted workload
        # schedules nothing, and nobody should keep acting for its user.
        if self.trusts is not None:
            self.trusts.delete_for_workload(job.record.workload_id)
        if job.record.payload.get("database_only"):
            return
        workload = _read_workload(job)
        if not workload.backup_target:
            return
        data = WorkloadData.of(self.targets, workload)
        try:
            data.remove_all()
        except RepositoryMissing:  # its create job failed before making one: nothing stored
            return
        data.collect_garbage(self.gc_wait_seconds)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.workload_id is not None
        now = self.clock()
        if outcome.state == jobs.SUCCEEDED:
            _set_status(session, job.workload_id, (states.DELETING,), states.DELETED, now,
                        deleted=True, deleted_at=now, next_fire_at=None)
            session.execute(update(Snapshot).where(Snapshot.workload_id == job.workload_id,
                                                   Snapshot.deleted.is_(False))
                            .values(deleted=True, deleted_at=now, status=states.SNAP_DELETED,
                                    deleted_reason="the workload was deleted from the database only"))
            # Release the instances: NULL claims never collide, so they may join a new workload.
            session.execute(update(WorkloadInstance)
                            .where(WorkloadInstance.workload_id == job.workload_id)
                            .values(claim=None))
            session.execute(update(Workload).where(Workload.id == job.workload_id).values(secret_claim=None))
        else:
            _set_status(session, job.workload_id, (states.DELETING,), states.ERROR, now,
                        error=f"Delete did not complete: {outcome.error}")
