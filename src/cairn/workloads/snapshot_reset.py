"""Resetting a snapshot that is still running: it ends `error` at once.

For an operator facing a snapshot that does not end (its worker is slow, stuck or
gone before its lease expires): the snapshot's job is asked to stop (a queued one never
starts), the snapshot becomes `error` with "Reset by a user." and its workload is
unlocked, all in the caller's unit of work. A job that was running sees its cancel flag
within a heartbeat, stops, and removes what it wrote (its recorded destinations); the
row it finds already settled is left as it is. Unlike cancel, which leaves the row to
the job and ends it `cancelled`, reset settles the row itself. Only a running snapshot
can be reset (`409` otherwise).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.models import Snapshot
from cairn.errors import Conflict, NotFound
from cairn.jobs import records as jobs
from cairn.workloads import states
from cairn.workloads.job_rows import RESET_MESSAGE, settle_unfinished
from cairn.workloads.records import lock_workload
from cairn.workloads.snapshot_job import JOB_SNAPSHOT


def reset_snapshot(session: Session, snapshot_id: str, project_scope: str | None, now: datetime) -> Snapshot:
    found = session.scalars(select(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.deleted.is_(False))).first()
    if found is None or (project_scope is not None and found.project_id != project_scope):
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    lock_workload(session, found.workload_id, None)  # the workload first: the lock order of every writer
    row = session.scalars(select(Snapshot).where(Snapshot.id == snapshot_id).with_for_update()).one()
    if row.status not in states.SNAP_RUNNING:
        raise Conflict(f"Invalid state: only a running snapshot can be reset; snapshot {snapshot_id} "
                       f"is '{row.status}'.")
    for job in jobs.request_cancel(session, row.workload_id, now, kind=JOB_SNAPSHOT, subject_id=row.id):
        if job.state == jobs.QUEUED:
            jobs.cancel_queued(session, job.id, now, RESET_MESSAGE)
    settle_unfinished(session, row, states.SNAP_ERROR, RESET_MESSAGE, now)
    return row
