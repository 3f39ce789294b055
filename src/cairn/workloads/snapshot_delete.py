"""The snapshot delete job: removes a snapshot's data from the target (catalog file,
then manifests), then its row goes `deleted`, then a garbage collection gives the space
back. A delete that fails leaves the snapshot `error`, its workload unlocked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.db.models import Snapshot, Workload
from cairn.errors import CairnError
from cairn.jobs import records as jobs
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, Outcome
from cairn.workloads import states
from cairn.workloads.records import get_workload
from cairn.workloads.storage import BackupTargets
from cairn.workloads.target_data import WorkloadData

log = logging.getLogger(__name__)

JOB_SNAPSHOT_DELETE = "snapshot_delete"


class SnapshotDeleteJob:
    """Removes a snapshot's data from the target, then its row goes `deleted`."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime], gc_wait_seconds: float) -> None:
        self.targets = targets
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds

    def run(self, job: JobContext) -> None:
        snapshot_id = job.record.subject_id
        assert snapshot_id is not None and job.record.workload_id is not None
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, job.record.workload_id, None)
        data = WorkloadData.of(self.targets, workload)
        data.remove_snapshot(snapshot_id)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                now = self.clock()
                session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(
                    status=states.SNAP_DELETED, deleted=True, deleted_at=now, updated_at=now,
                    deleted_reason=job.record.payload.get("reason", "deleted")))
        try:
            data.collect_garbage(self.gc_wait_seconds)
        except CairnError as exc:  # the space comes back at the next collection
            log.warning("after deleting snapshot %s: %s", snapshot_id, exc.message)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.state != jobs.SUCCEEDED and job.subject_id:
            session.execute(update(Snapshot).where(Snapshot.id == job.subject_id,
                                                   Snapshot.status == states.SNAP_DELETING)
                            .values(status=states.SNAP_ERROR, updated_at=now,
                                    error_msg=f"Delete did not complete: {outcome.error}"))
        session.execute(update(Workload).where(Workload.id == job.workload_id, Workload.status == states.LOCKED)
                        .values(status=states.AVAILABLE, updated_at=now))
