"""Restores as the API asks for them: start one, delete its record, cancel it.

Starting a restore plans it (`restore_plan.py`) and asks the platform where its disks
are before the workload's row is locked (a platform call may take seconds), then locks
the workload and queues the restore job (`restore_job.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.models import Restore, Snapshot, Workload
from cairn.errors import Conflict, InvalidInput, NotFound
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.platforms.base import Platform
from cairn.workloads import states
from cairn.workloads.job_rows import cancel_work
from cairn.workloads.placement import instances_routing
from cairn.workloads.restore_job import JOB_RESTORE
from cairn.workloads.restore_plan import RESTORE_TYPES, RestoreRequest, plan_on
from cairn.workloads.restore_records import RestoreRecord, get_restore
from cairn.workloads.snapshot_records import snapshot_record


class RestoreService:
    def __init__(self, dispatcher: Dispatcher, platform: Platform, clock: Callable[[], datetime]) -> None:
        self.dispatcher = dispatcher
        self.platform = platform
        self.clock = clock

    def start(self, session: Session, snapshot_id: str, project_scope: str | None, user_id: str,
              request: RestoreRequest, workload_id: str | None = None) -> RestoreRecord:
        if request.restore_type not in RESTORE_TYPES:
            raise InvalidInput(f"restore.options.restore_type: {request.restore_type!r} is not one of "
                               f"{', '.join(RESTORE_TYPES)}.", "restore.options.restore_type")
        if request.options.get("instant"):
            if request.restore_type == "inplace":
                raise InvalidInput("restore.options.instant: an in-place restore writes the original disks; "
                                   "an instant restore starts a new instance.", "restore.options.instant")
            if not getattr(self.platform, "supports_instant_restore", False):
                raise InvalidInput("restore.options.instant: this platform cannot start an instance before its "
                                   "data is copied (the libvirt platform can).", "restore.options.instant")
        now = self.clock()
        query = select(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.deleted.is_(False))
        if project_scope is not None:
            query = query.where(Snapshot.project_id == project_scope)
        if workload_id is not None:
            query = query.where(Snapshot.workload_id == workload_id)
        snapshot = session.scalars(query).first()
        if snapshot is None:
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        if snapshot.status != states.SNAP_AVAILABLE:
            raise Conflict(f"Invalid state: Snapshot must be 'available' to be restored; it is "
                           f"'{snapshot.status}'.")
        restore_id = str(uuid.uuid4())
        record = snapshot_record(snapshot)
        # The platform is asked before the workload's row is locked (a call may take seconds).
        plan = plan_on(self.platform, request, record.instances, restore_id, snapshot.project_id)
        # restored disks are written beside the originals: on the worker that reaches them
        route = instances_routing(self.platform, snapshot.project_id, [i.id for i in record.instances])
        workload = session.scalars(select(Workload).where(Workload.id == snapshot.workload_id)
                                   .with_for_update()).one()
        if workload.status != states.AVAILABLE:
            raise Conflict("Invalid state: Workload must be in the 'available' state to restore a "
                           f"snapshot; it is '{workload.status}'.")
        workload.status = states.LOCKED
        workload.updated_at = now
        session.add(Restore(
            id=restore_id, snapshot_id=snapshot.id, workload_id=workload.id,
            project_id=snapshot.project_id, user_id=user_id, name=request.name,
            description=request.description, restore_type=request.restore_type,
            status=states.RESTORE_RESTORING, size=sum(d.source.size for p in plan for d in p.disks),
            uploaded_size=0, progress_percent=0, progress_msg="Restore is queued.", time_taken=0,
            options={"restore_type": request.restore_type,
                     "instances": [{"id": c.id, "include": c.include, "name": c.name,
                                    "vdisks": list(c.vdisks) if c.vdisks is not None else None}
                                   for c in request.instances], **request.options},
            instances=[], created_at=now, updated_at=now, deleted=False))
        session.flush()
        enqueue(session, self.dispatcher, JOB_RESTORE, snapshot.project_id, now,
                workload_id=workload.id, subject_id=restore_id, payload=route)
        return get_restore(session, restore_id, None)

    def delete(self, session: Session, restore_id: str, project_scope: str | None) -> Restore:
        row = session.scalars(select(Restore).where(Restore.id == restore_id, Restore.deleted.is_(False))).first()
        if row is None or (project_scope is not None and row.project_id != project_scope):
            raise NotFound(f"Restore {restore_id} could not be found.")
        if row.status in states.RESTORE_RUNNING:
            raise Conflict(f"Restore {restore_id} is still running; cancel it first.")
        row.deleted = True
        row.updated_at = self.clock()
        return row

    def cancel(self, session: Session, restore_id: str, project_scope: str | None) -> RestoreRecord:
        record = get_restore(session, restore_id, project_scope)
        if record.status in states.RESTORE_RUNNING:
            cancel_work(session, JOB_RESTORE, session.get_one(Restore, restore_id), self.clock())
        return record
