"""Snapshots as the API and the scheduler ask for them: take one (now or on schedule),
delete one, cancel one. Each writes rows in the caller's unit of work and queues the
job that does the slow part (`snapshot_job.py`, `snapshot_delete.py`).

The platform is asked where a workload's disks are (to route its job) before the
workload's row is locked: a platform call can take seconds (a cloud API), and the lock
would hold every other writer of the workload for that long.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.database import Database
from cairn.db.models import Snapshot, Workload, WorkloadInstance
from cairn.errors import Conflict, NotFound
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.platforms.base import Platform
from cairn.workloads import states
from cairn.workloads.job_rows import cancel_work
from cairn.workloads.jobschedule import JobSchedule, fire_snapshot_type, fire_tiers, manual_tiers
from cairn.workloads.placement import instances_routing
from cairn.workloads.quotas import SNAPSHOTS, STORAGE, QuotaExceeded, QuotaGuard
from cairn.workloads.records import lock_workload
from cairn.workloads.snapshot_delete import JOB_SNAPSHOT_DELETE
from cairn.workloads.snapshot_job import JOB_SNAPSHOT
from cairn.workloads.snapshot_records import SnapshotRecord, get_snapshot, incrementals_since_full, latest_available
from cairn.workloads.snapshot_type import SnapshotRequest, choose_type

SCHEDULED_NAME = "jobscheduler"


@dataclass(frozen=True)
class Route:
    """Where a workload's snapshot job should run, as found before the row was locked:
    the instances it was found for, and the job payload entries that route it."""

    instance_ids: list[str]
    payload: dict[str, Any]


class SnapshotService:
    """Takes, deletes and cancels snapshots. With a `platform`, a snapshot job is routed to
    the worker that reaches its workload's disks (`cairn.workloads.placement`)."""

    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], datetime],
                 platform: Platform | None = None, database: Database | None = None,
                 quotas: QuotaGuard | None = None) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.platform = platform
        self.database = database
        self.quotas = quotas

    def routes(self, workload_ids: list[str], project_scope: str | None = None) -> dict[str, Route]:
        """Each live workload's route, read in a session of its own and asked of the
        platform with no row locked: call it before the unit of work that takes the
        snapshot."""
        if not workload_ids:
            return {}
        assert self.database is not None, "routes() needs the service's database"
        with self.database.reader() as session:
            query = select(Workload.id, Workload.project_id).where(
                Workload.id.in_(workload_ids), Workload.deleted.is_(False))
            if project_scope is not None:
                query = query.where(Workload.project_id == project_scope)
            projects: dict[str, str] = {row.id: row.project_id for row in session.execute(query)}
            members: dict[str, list[str]] = {workload_id: [] for workload_id in projects}
            for row in session.execute(select(WorkloadInstance.workload_id, WorkloadInstance.instance_id)
                                       .where(WorkloadInstance.workload_id.in_(list(projects)))
                                       .order_by(WorkloadInstance.workload_id, WorkloadInstance.position)):
                members[row.workload_id].append(row.instance_id)
        return {workload_id: Route(ids, {} if self.platform is None
                                   else instances_routing(self.platform, projects[workload_id], ids))
                for workload_id, ids in members.items()}

    def take(self, session: Session, workload_id: str, project_scope: str | None, user_id: str,
             request: SnapshotRequest, fire_time: datetime | None = None,
             route: Route | None = None) -> SnapshotRecord:
        """Lock the workload and queue a snapshot of it (status `creating`). `route` is
        what `routes()` found; without one, the job may run on any worker."""
        now = self.clock()
        row = lock_workload(session, workload_id, project_scope)
        if row.status != states.AVAILABLE:
            raise Conflict("Invalid state: Workload must be in the 'available' state to take a "
                           f"snapshot; it is '{row.status}'.")
        if route is not None and route.instance_ids != _instance_ids(session, row.id):
            raise Conflict("The workload's instances changed while the snapshot was being "
                           "requested; ask again.")
        schedule = JobSchedule.from_storage(row.jobschedule)
        tiers = fire_tiers(schedule, fire_time.replace(tzinfo=UTC)) if fire_time else manual_tiers(schedule)
        tier_type = fire_snapshot_type(schedule, tiers) if fire_time else None
        if tier_type is not None and request.snapshot_type is None and not request.full:
            request = replace(request, snapshot_type=tier_type)
        kind = choose_type(request, has_parent=latest_available(session, row.id) is not None,
                           full_required=row.full_required,
                           fullbackup_interval=schedule.fullbackup_interval,
                           incrementals=incrementals_since_full(session, row.id))
        snapshot_id = str(uuid.uuid4())
        name = request.name if request.name else (SCHEDULED_NAME if fire_time else "snapshot")
        if self.quotas is not None:
            try:
                self.quotas.check(session, row.project_id, {SNAPSHOTS: 1, STORAGE: 1})
            except QuotaExceeded as exc:
                if fire_time is None:
                    raise
                # A scheduled time over quota is recorded as a failed snapshot, so that the
                # owner sees why nothing was taken; it takes no unit of the quota.
                session.add(Snapshot(
                    id=snapshot_id, workload_id=row.id, project_id=row.project_id, user_id=user_id,
                    name=name, description=request.description or "", snapshot_type=kind,
                    status=states.SNAP_ERROR, created_at=now, updated_at=now, finished_at=now, size=0,
                    restore_size=0, uploaded_size=0, progress_percent=0, progress_msg=exc.message,
                    error_msg=exc.message, time_taken=0, host="", pinned=False, meta={}, instances=[],
                    fire_time=fire_time, deleted=False,
                    schedule_tiers=list(tiers) if schedule.tiers is not None else None))
                session.flush()
                return get_snapshot(session, snapshot_id, None)
        session.add(Snapshot(
            id=snapshot_id, workload_id=row.id, project_id=row.project_id, user_id=user_id,
            name=name, description=request.description or "", snapshot_type=kind,
            status=states.SNAP_CREATING, created_at=now, updated_at=now, size=0, restore_size=0,
            uploaded_size=0, progress_percent=0, progress_msg="Snapshot is queued.",
            time_taken=0, host="", pinned=False, meta={}, instances=[], fire_time=fire_time,
            deleted=False, schedule_tiers=list(tiers) if schedule.tiers is not None else None))
        row.status = states.LOCKED
        row.updated_at = now
        session.flush()
        enqueue(session, self.dispatcher, JOB_SNAPSHOT, row.project_id, now, workload_id=row.id,
                subject_id=snapshot_id, payload=route.payload if route is not None else {})
        return get_snapshot(session, snapshot_id, None)

    def delete(self, session: Session, snapshot_id: str, project_scope: str | None) -> Snapshot:
        now = self.clock()
        snapshot = session.scalars(select(Snapshot).where(
            Snapshot.id == snapshot_id, Snapshot.deleted.is_(False)).with_for_update()).first()
        if snapshot is None or (project_scope is not None and snapshot.project_id != project_scope):
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        if snapshot.status not in states.SNAP_DELETABLE:
            raise Conflict(f"Invalid state: Snapshot must be 'available', 'error' or 'cancelled' to be "
                           f"deleted; it is '{snapshot.status}'.")
        workload = lock_workload(session, snapshot.workload_id, None)
        if workload.status != states.AVAILABLE:
            raise Conflict(f"Invalid state: the snapshot's workload is '{workload.status}'; a snapshot "
                           "can be deleted while its workload is 'available'.")
        workload.status = states.LOCKED
        workload.updated_at = now
        snapshot.status = states.SNAP_DELETING
        snapshot.updated_at = now
        enqueue(session, self.dispatcher, JOB_SNAPSHOT_DELETE, snapshot.project_id, now,
                workload_id=workload.id, subject_id=snapshot.id, payload={"reason": "deleted by a user"})
        return snapshot

    def cancel(self, session: Session, snapshot_id: str, project_scope: str | None) -> SnapshotRecord:
        """Ask a running snapshot to stop; it ends `cancelled`. Finished ones are left alone."""
        record = get_snapshot(session, snapshot_id, project_scope)
        if record.status in states.SNAP_RUNNING:
            cancel_work(session, JOB_SNAPSHOT, session.get_one(Snapshot, snapshot_id), self.clock())
        return record


def _instance_ids(session: Session, workload_id: str) -> list[str]:
    return list(session.scalars(select(WorkloadInstance.instance_id)
                                .where(WorkloadInstance.workload_id == workload_id)
                                .order_by(WorkloadInstance.position)))
