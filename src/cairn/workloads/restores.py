"""Restores: give a snapshot's disks back, as new instances or over the originals.

- `oneclick`: every instance of the snapshot comes back as a new instance, its disks
  written as new files beside the original disks.
- `selective`: only the instances marked `include`, under the names given, and only the
  disks listed in `vdisks` when that list is given.
- `inplace`: the chosen disks are written back over the original instance's disk files.

The workload is `locked` while a restore runs. Before it writes a disk, a restore job
records in its job row every file it will write (`cairn.workloads.cleanup`): the new
files, and for an in-place restore the original disks it overwrites. When it fails, is
cancelled or is reaped after its worker died, its settlement marks it `error` or
`cancelled`, unlocks the workload and queues a `cleanup` job on the same worker, which
removes the new files and the data engine's temporary files; an original disk is never
removed. An in-place restore cannot be undone, and says so in its error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.db.models import Restore, Snapshot, Workload
from cairn.errors import CairnError, Conflict, InvalidInput, NotFound
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import WORKER_KEY, Dispatcher, enqueue
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobCancelled, JobContext, Outcome
from cairn.platforms.base import InstanceInfo, Platform
from cairn.workloads import cleanup, states
from cairn.workloads.job_rows import ProgressReporter, cancel_work, settle_unfinished
from cairn.workloads.placement import instances_routing
from cairn.workloads.records import get_workload
from cairn.workloads.snapshot_records import SnapshotDisk, SnapshotInstance, snapshot_record
from cairn.workloads.storage import BackupTargets

log = logging.getLogger(__name__)

JOB_RESTORE = "restore"
RESTORE_TYPES = ("oneclick", "selective", "inplace")


@dataclass(frozen=True)
class InstanceChoice:
    id: str
    include: bool = True
    name: str | None = None
    vdisks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RestoreRequest:
    name: str = "restore"
    description: str = ""
    restore_type: str = "oneclick"
    instances: tuple[InstanceChoice, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreRecord:
    id: str
    snapshot_id: str
    workload_id: str
    project_id: str
    user_id: str
    name: str
    description: str
    status: str
    restore_type: str
    size: int
    uploaded_size: int
    progress_percent: int
    progress_msg: str
    error_msg: str | None
    time_taken: int
    created_at: datetime
    finished_at: datetime | None
    instances: tuple[dict[str, str], ...]


def restore_record(row: Restore) -> RestoreRecord:
    return RestoreRecord(
        id=row.id, snapshot_id=row.snapshot_id, workload_id=row.workload_id, project_id=row.project_id,
        user_id=row.user_id, name=row.name, description=row.description, status=row.status,
        restore_type=row.restore_type, size=row.size, uploaded_size=row.uploaded_size,
        progress_percent=row.progress_percent, progress_msg=row.progress_msg, error_msg=row.error_msg,
        time_taken=row.time_taken, created_at=row.created_at, finished_at=row.finished_at,
        instances=tuple({"id": i["id"], "name": i["name"], "status": i["status"]} for i in row.instances or []))


def get_restore(session: Session, restore_id: str, project_id: str | None,
                snapshot_id: str | None = None) -> RestoreRecord:
    query = select(Restore).where(Restore.id == restore_id, Restore.deleted.is_(False))
    if project_id is not None:
        query = query.where(Restore.project_id == project_id)
    if snapshot_id is not None:
        query = query.where(Restore.snapshot_id == snapshot_id)
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"Restore {restore_id} could not be found.")
    return restore_record(row)


def list_restores(session: Session, project_id: str | None, snapshot_id: str | None,
                  limit: int) -> list[RestoreRecord]:
    query = select(Restore).where(Restore.deleted.is_(False))
    if project_id is not None:
        query = query.where(Restore.project_id == project_id)
    if snapshot_id is not None:
        query = query.where(Restore.snapshot_id == snapshot_id)
    rows = session.scalars(query.order_by(Restore.created_at, Restore.id).limit(limit))
    return [restore_record(row) for row in rows]


@dataclass(frozen=True)
class PlannedDisk:
    """One disk to write: from which manifest, to which path, in which format."""

    source: SnapshotDisk
    destination: str
    creates_file: bool


@dataclass(frozen=True)
class PlannedInstance:
    source: SnapshotInstance
    name: str
    disks: tuple[PlannedDisk, ...]
    inplace: bool
    #: the instance as the platform knows it now (in-place restores only)
    live: InstanceInfo | None = None


def plan_restore(request: RestoreRequest, instances: tuple[SnapshotInstance, ...], restore_id: str,
                 platform: Platform, project_id: str) -> list[PlannedInstance]:
    """Decide what each instance and disk of the snapshot becomes; refuses bad choices."""
    by_id = {i.id: i for i in instances}
    for choice in request.instances:
        if choice.id not in by_id:
            raise InvalidInput(f"restore.options.openstack.instances: instance {choice.id} is not in the "
                               "snapshot.", "restore.options.openstack.instances")
    chosen: list[tuple[SnapshotInstance, InstanceChoice]]
    if request.restore_type == "oneclick" or not request.instances:
        chosen = [(i, InstanceChoice(i.id)) for i in instances]
    else:
        chosen = [(by_id[c.id], c) for c in request.instances if c.include]
    if not chosen:
        raise InvalidInput("restore.options.openstack.instances: no instance is included.",
                           "restore.options.openstack.instances")
    inplace = request.restore_type == "inplace"
    current = platform.find_instances(project_id, [i.id for i, _ in chosen]) if inplace else {}
    plan = []
    for instance, choice in chosen:
        disks = instance.vdisks
        if choice.vdisks is not None:
            known = {d.id for d in instance.vdisks}
            unknown = [v for v in choice.vdisks if v not in known]
            if unknown:
                raise InvalidInput(f"restore.options.openstack.instances: disk {unknown[0]} is not a disk "
                                   f"of instance {instance.id} in the snapshot.",
                                   "restore.options.openstack.instances.vdisks")
            disks = tuple(d for d in instance.vdisks if d.id in set(choice.vdisks))
        if inplace:
            live = current.get(instance.id)
            if live is None:
                raise Conflict(f"Instance {instance.id} no longer exists; restore it with 'oneclick' "
                               "or 'selective' instead.")
            live_paths = {d.path for d in live.disks}
            for disk in disks:
                if disk.path not in live_paths:
                    raise Conflict(f"Disk {disk.path} is no longer a disk of instance {instance.name}.")
            platform.check_inplace(live, request.options)
            planned = tuple(PlannedDisk(d, d.path, creates_file=False) for d in disks)
        else:
            planned = tuple(PlannedDisk(d, _beside(d.path, restore_id), creates_file=True) for d in disks)
        plan.append(PlannedInstance(instance, choice.name or instance.name, planned, inplace,
                                    current.get(instance.id)))
    return plan


def _beside(path: str, restore_id: str) -> str:
    directory, name = os.path.split(path)
    stem, dot, extension = name.partition(".")
    return os.path.join(directory, f"{stem}-restore-{restore_id[:8]}{dot}{extension}")


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
        plan = plan_restore(request, record.instances, restore_id, self.platform, snapshot.project_id)
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

    def delete(self, session: Session, restore_id: str, project_scope: str | None) -> None:
        row = session.scalars(select(Restore).where(Restore.id == restore_id, Restore.deleted.is_(False))).first()
        if row is None or (project_scope is not None and row.project_id != project_scope):
            raise NotFound(f"Restore {restore_id} could not be found.")
        if row.status in states.RESTORE_RUNNING:
            raise Conflict(f"Restore {restore_id} is still running; cancel it first.")
        row.deleted = True
        row.updated_at = self.clock()

    def cancel(self, session: Session, restore_id: str, project_scope: str | None) -> RestoreRecord:
        record = get_restore(session, restore_id, project_scope)
        if record.status in states.RESTORE_RUNNING:
            cancel_work(session, JOB_RESTORE, session.get_one(Restore, restore_id), self.clock())
        return record


class RestoreJob:
    def __init__(self, platform: Platform, targets: BackupTargets, clock: Callable[[], datetime]) -> None:
        self.platform = platform
        self.targets = targets
        self.clock = clock

    def run(self, job: JobContext) -> None:
        restore_id = job.record.subject_id
        assert restore_id is not None and job.record.workload_id is not None
        started = time.monotonic()
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                row = session.get_one(Restore, restore_id)
                snapshot = snapshot_record(session.get_one(Snapshot, row.snapshot_id))
                workload = get_workload(session, job.record.workload_id, None)
                options = dict(row.options or {})
                restore_type = row.restore_type
        request = RestoreRequest(restore_type=restore_type, instances=tuple(
            InstanceChoice(c["id"], c.get("include", True), c.get("name"),
                           tuple(c["vdisks"]) if c.get("vdisks") is not None else None)
            for c in options.get("instances", [])), options=options)
        plan = plan_restore(request, snapshot.instances, restore_id, self.platform, snapshot.project_id)
        destinations = [cleanup.created_file(d.destination) if d.creates_file
                        else cleanup.overwritten_file(d.destination) for item in plan for d in item.disks]
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                # before any disk is written: a clean-up finds them even if this process dies
                cleanup.plan_destinations(session, job.record, destinations)
                session.execute(update(Restore).where(Restore.id == restore_id).values(
                    status=states.RESTORE_EXECUTING, progress_msg="Writing disks.", updated_at=self.clock()))
        if not workload.backup_target:
            raise Conflict(f"Workload {workload.id} has no backup target.")
        repository = self.targets.repository(workload.backup_target, snapshot.project_id)
        total = sum(d.source.size for p in plan for d in p.disks)
        progress = ProgressReporter(job, restore_id, total, "Restoring", model=Restore)
        restored = []
        for item in plan:
            window = (self.platform.inplace_window(item.live, options) if item.inplace and item.live
                      else contextlib.nullcontext())
            with window:
                for disk in item.disks:
                    job.checkpoint()
                    try:
                        repository.restore(disk.source.manifest_key, disk.destination, format=disk.source.format,
                                           progress=progress.for_disk(disk.destination, disk.destination),
                                           cancel=lambda: job.cancel_requested)
                    except CairnError as exc:
                        if job.cancel_requested:
                            raise JobCancelled("The restore was cancelled.") from exc
                        undo = " The disk may be partly overwritten." if not disk.creates_file else ""
                        raise type(exc)(f"Disk {disk.source.path} of instance {item.source.name}: "
                                        f"{exc.message}{undo}") from exc
            if item.inplace:
                restored.append({"id": item.source.id, "name": item.name, "status": "available"})
            else:
                for attempt in reconnecting():
                    with attempt:
                        info = self.platform.restore_instance(
                            snapshot.project_id, item.name,
                            [(d.source.device, d.destination, d.source.format) for d in item.disks],
                            item.source.platform, restore_id, job.record.payload.get(WORKER_KEY))
                restored.append({"id": info.id, "name": info.name, "status": "available"})
        job.checkpoint()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                now = self.clock()
                session.execute(update(Restore).where(Restore.id == restore_id).values(
                    status=states.RESTORE_AVAILABLE, progress_percent=100, progress_msg="Restore is complete.",
                    uploaded_size=total, instances=restored, finished_at=now, updated_at=now,
                    time_taken=int(time.monotonic() - started)))

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.subject_id is not None
        now = self.clock()
        if outcome.state == jobs.SUCCEEDED:
            session.execute(update(Workload).where(Workload.id == job.workload_id,
                                                   Workload.status == states.LOCKED)
                            .values(status=states.AVAILABLE, updated_at=now))
            return
        status = states.RESTORE_CANCELLED if outcome.state == jobs.CANCELLED else states.RESTORE_ERROR
        settle_unfinished(session, session.get(Restore, job.subject_id), status, outcome.error, now)
        # never here: the reaper settles in a process that may not reach the disks
        cleanup.request_cleanup(session, job, now)
