"""Snapshots: taking one (now or on schedule), deleting, cancelling, and the jobs that
copy the disks into the project's repository and apply retention afterwards.

A snapshot job, in order (the commit order of the data engine extended to the service):
every disk's manifest → the snapshot's catalog file → the row `available`. A crash at
any point leaves only garbage: manifests of a snapshot whose row never became available
are removed by the job's settlement (or the reaper's), and by reset; their chunks go
at the next garbage collection.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cairn.clock import isoformat
from cairn.db.database import reconnecting
from cairn.db.models import Restore, Snapshot, Workload
from cairn.engine import Repository
from cairn.engine.errors import ManifestNotFound
from cairn.errors import CairnError, Conflict, InvalidInput, NotFound, Unavailable
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobCancelled, JobContext, Outcome
from cairn.platforms.base import Capture, InstanceInfo, InstanceView, Platform
from cairn.workloads import catalog, cleanup, states
from cairn.workloads.jobschedule import JobSchedule
from cairn.workloads.placement import workload_routing
from cairn.workloads.records import WorkloadRecord, get_workload, lock_workload
from cairn.workloads.retention import Kept, expired_snapshots
from cairn.workloads.snapshot_records import (
    SnapshotDisk, SnapshotInstance, SnapshotRecord, count_live, get_snapshot,
    incrementals_since_full, latest_available, snapshot_record)
from cairn.workloads.storage import BackupTargets

log = logging.getLogger(__name__)

JOB_SNAPSHOT, JOB_SNAPSHOT_DELETE = "snapshot", "snapshot_delete"
PARALLEL_TYPE_ID = "2ddd528d-c9b4-4d7e-8722-cc395140255a"
SCHEDULED_NAME = "jobscheduler"
PROGRESS_EVERY = 0.5  # seconds between progress writes to the database


@dataclass(frozen=True)
class SnapshotRequest:
    name: str | None = None
    description: str | None = None
    snapshot_type: str | None = None
    full: bool = False


def choose_type(request: SnapshotRequest, *, has_parent: bool, full_required: bool,
                fullbackup_interval: int, incrementals: int) -> str:
    """full or incremental: the request first, then what the schedule's rule says."""
    if request.full or request.snapshot_type == "full" or not has_parent or full_required:
        return "full"
    if request.snapshot_type == "incremental":
        return "incremental"
    if fullbackup_interval == 0 or (fullbackup_interval > 0 and incrementals >= fullbackup_interval):
        return "full"
    return "incremental"


def manifest_key(workload_id: str, snapshot_id: str, instance_id: str, index: int) -> str:
    return f"{workload_id}/{snapshot_id}/{instance_id}/{index}"


class SnapshotService:
    """Takes, deletes and cancels snapshots. With a `platform`, a snapshot job is routed to
    the worker that reaches its workload's disks (`cairn.workloads.placement`)."""

    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], datetime],
                 platform: Platform | None = None) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.platform = platform

    def take(self, session: Session, workload_id: str, project_scope: str | None, user_id: str,
             request: SnapshotRequest, fire_time: datetime | None = None) -> SnapshotRecord:
        """Lock the workload and queue a snapshot of it (status `creating`)."""
        now = self.clock()
        row = lock_workload(session, workload_id, project_scope)
        if row.status != states.AVAILABLE:
            raise Conflict("Invalid state: Workload must be in the 'available' state to take a "
                           f"snapshot; it is '{row.status}'.")
        route = ({} if self.platform is None
                 else workload_routing(session, self.platform, row.project_id, row.id))
        schedule = JobSchedule.from_storage(row.jobschedule)
        kind = choose_type(request, has_parent=latest_available(session, row.id) is not None,
                           full_required=row.full_required,
                           fullbackup_interval=schedule.fullbackup_interval,
                           incrementals=incrementals_since_full(session, row.id))
        snapshot_id = str(uuid.uuid4())
        name = request.name if request.name else (SCHEDULED_NAME if fire_time else "snapshot")
        session.add(Snapshot(
            id=snapshot_id, workload_id=row.id, project_id=row.project_id, user_id=user_id,
            name=name, description=request.description or "", snapshot_type=kind,
            status=states.SNAP_CREATING, created_at=now, updated_at=now, size=0, restore_size=0,
            uploaded_size=0, progress_percent=0, progress_msg="Snapshot is queued.",
            time_taken=0, host="", pinned=False, meta={}, instances=[], fire_time=fire_time,
            deleted=False))
        row.status = states.LOCKED
        row.updated_at = now
        session.flush()
        enqueue(session, self.dispatcher, JOB_SNAPSHOT, row.project_id, now, workload_id=row.id,
                subject_id=snapshot_id, payload=route)
        return get_snapshot(session, snapshot_id, None)

    def delete(self, session: Session, snapshot_id: str, project_scope: str | None) -> None:
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

    def cancel(self, session: Session, snapshot_id: str, project_scope: str | None) -> SnapshotRecord:
        """Ask a running snapshot to stop; it ends `cancelled`. Finished ones are left alone."""
        record = get_snapshot(session, snapshot_id, project_scope)
        if record.status in states.SNAP_RUNNING:
            cancel_work(session, JOB_SNAPSHOT, session.get_one(Snapshot, snapshot_id), self.clock())
        return record


def cancel_work(session: Session, kind: str, row: Snapshot | Restore, now: datetime) -> None:
    """Ask the job working on a snapshot or restore to stop. A running job notices
    within a fraction of a second and settles the row itself; one still queued never
    starts, so the row is settled here."""
    for job in jobs.request_cancel(session, row.workload_id, now, kind=kind, subject_id=row.id):
        if job.state == jobs.QUEUED:
            jobs.cancel_queued(session, job.id, now, "Cancelled by a user.")
            settle_unfinished(session, row, states.SNAP_CANCELLED, "Cancelled by a user.", now)


def settle_unfinished(session: Session, row: Snapshot | Restore | None, status: str,
                      message: str | None, now: datetime) -> None:
    """Put a snapshot or restore that did not finish into `status` (error or cancelled)
    and unlock its workload; one that already ended is left as it is."""
    running = states.SNAP_RUNNING if isinstance(row, Snapshot) else states.RESTORE_RUNNING
    if row is None or row.status not in running:
        return
    row.status = status
    row.error_msg = message if status == states.SNAP_ERROR else None
    row.progress_msg = message or ""
    row.finished_at = now
    row.updated_at = now
    row.time_taken = int((now - row.created_at).total_seconds())
    session.execute(update(Workload).where(Workload.id == row.workload_id, Workload.status == states.LOCKED)
                    .values(status=states.AVAILABLE, updated_at=now))


class ProgressReporter:
    """Turns the engine's per-disk progress into throttled writes of the snapshot row."""

    def __init__(self, job: JobContext, snapshot_id: str, total: int, verb: str, model: type = Snapshot) -> None:
        self.job = job
        self.snapshot_id = snapshot_id
        self.total = max(total, 1)
        self.verb = verb
        self.model = model
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()
        self.last = 0.0

    def for_disk(self, key: str, label: str) -> Callable[[int, int], None]:
        def report(done: int, _total: int) -> None:
            with self.lock:
                self.done[key] = done
                now = time.monotonic()
                if now - self.last < PROGRESS_EVERY:
                    return
                self.last = now
                percent = min(99, int(sum(self.done.values()) * 100 / self.total))
            try:
                with self.job.database.unit_of_work() as session:
                    session.execute(update(self.model).where(self.model.id == self.snapshot_id).values(
                        progress_percent=percent, progress_msg=f"{self.verb} {label}"))
            except (DBAPIError, Unavailable):
                # progress is only shown: a database blip must not fail the copy; the
                # next report writes again
                log.warning("could not record the progress of %s", self.snapshot_id, exc_info=True)
        return report


class SnapshotJob:
    """Copies every disk of the workload's instances into the project's repository."""

    def __init__(self, platform: Platform, targets: BackupTargets, clock: Callable[[], datetime],
                 after_success: list[Callable[[JobContext, str], None]] | None = None) -> None:
        self.platform = platform
        self.targets = targets
        self.clock = clock
        self.after_success = after_success if after_success is not None else []

    def run(self, job: JobContext) -> None:
        snapshot_id = job.record.subject_id
        assert snapshot_id is not None and job.record.workload_id is not None
        started = self.clock()
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, job.record.workload_id, None)
                snapshot = get_snapshot(session, snapshot_id, None)
                parent = latest_available(session, workload.id) if snapshot.snapshot_type == "incremental" else None
        for attempt in reconnecting():
            with attempt:
                instances = self._instances(workload)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(
                    status=states.SNAP_EXECUTING, host=socket.gethostname(), updated_at=started,
                    progress_msg="Reading the instances' disks."))
        repository = self.targets.repository(_target_name(workload), workload.project_id)
        progress = ProgressReporter(job, snapshot_id, sum(i.size for i in instances), "Copying")
        parents = {i.id: i.platform for i in parent.instances} if parent is not None else {}
        # A parallel workload is one consistency group (its instances are captured at the
        # same moment); a serial one captures and copies each instance in turn.
        parallel = workload.workload_type_id == PARALLEL_TYPE_ID and len(instances) > 1
        groups = [instances] if parallel else [[instance] for instance in instances]
        captures: list[Capture] = []
        captured: list[tuple[SnapshotInstance, int]] = []
        try:
            for group in groups:
                job.checkpoint()
                capture = self.platform.capture(group, {i.id: parents[i.id] for i in group if i.id in parents},
                                                snapshot_id)
                captures.append(capture)
                try:
                    copy = lambda view: self._copy_instance(job, repository, workload, snapshot_id, view,  # noqa: E731
                                                            parent, progress)
                    if parallel:
                        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="snap") as pool:
                            captured.extend(pool.map(copy, capture.views))
                    else:
                        captured.extend(copy(view) for view in capture.views)
                finally:
                    capture.close()
            self._publish(job, workload, snapshot, snapshot_id, instances, captured, captures)
        except BaseException:
            for capture in captures:
                _quietly(capture.discard, f"undoing the capture of snapshot {snapshot_id}")
            raise
        for capture in captures:
            _quietly(capture.commit, f"after snapshot {snapshot_id}")
        for step in self.after_success:
            try:
                step(job, snapshot_id)
            except CairnError as exc:  # the snapshot is safe; retention or GC can run next time
                log.warning("after snapshot %s: %s", snapshot_id, exc.message)

    def _publish(self, job: JobContext, workload: WorkloadRecord, snapshot: SnapshotRecord, snapshot_id: str,
                 instances: list[InstanceInfo], captured: list[tuple[SnapshotInstance, int]],
                 captures: list[Capture]) -> None:
        """The catalog file, then the row `available`: the snapshot's commit point."""
        job.checkpoint()
        added = sum(size for _, size in captured)
        restore_size = sum(i.size for i in instances)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(
                    status=states.SNAP_UPLOADING, progress_percent=99, progress_msg="Writing the catalog."))
        finished = self.clock()
        warnings = [w for capture in captures for w in capture.warnings]
        kind = snapshot.snapshot_type
        if kind == "incremental" and any(v.full for c in captures for v in c.views):
            kind = "full"  # the platform could not trust its change history: say what was done
        document = {
            "id": snapshot_id, "workload_id": workload.id, "project_id": workload.project_id,
            "user_id": snapshot.user_id, "name": snapshot.name, "description": snapshot.description,
            "snapshot_type": kind, "created_at": isoformat(snapshot.created_at),
            "finished_at": isoformat(finished), "size": added, "restore_size": restore_size,
            "time_taken": int((finished - snapshot.created_at).total_seconds()),
            "warning_msg": " ".join(warnings) or None, "metadata": snapshot.metadata,
            "instances": [instance.to_json() for instance, _ in captured]}
        target = self.targets.get(_target_name(workload))
        publish_workload(self.targets, workload)
        catalog.write_snapshot(target.catalog(workload.project_id), document)
        job.checkpoint()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                result = session.execute(update(Snapshot).where(
                    Snapshot.id == snapshot_id, Snapshot.status == states.SNAP_UPLOADING).values(
                    status=states.SNAP_AVAILABLE, size=added, uploaded_size=added,
                    restore_size=restore_size, progress_percent=100,
                    progress_msg="Snapshot is available.", finished_at=finished, updated_at=finished,
                    time_taken=document["time_taken"], instances=document["instances"], snapshot_type=kind,
                    warning_msg=document["warning_msg"]))
                # Only this job makes its snapshot available: found so, a lost commit had applied.
                if result.rowcount != 1 and session.scalar(select(Snapshot.status).where(
                        Snapshot.id == snapshot_id)) != states.SNAP_AVAILABLE:
                    raise JobCancelled("The snapshot was settled by someone else.")
                if kind == "full":
                    session.execute(update(Workload).where(Workload.id == workload.id).values(full_required=False))

    def _instances(self, workload: WorkloadRecord) -> list[InstanceInfo]:
        found = self.platform.find_instances(workload.project_id, [m.id for m in workload.instances])
        missing = [m.id for m in workload.instances if m.id not in found]
        if missing:
            raise NotFound(f"Instance {missing[0]} of the workload could not be found.")
        ordered = [found[m.id] for m in workload.instances]
        for instance in ordered:
            self.platform.confirm(instance)
        return ordered

    def _copy_instance(self, job: JobContext, repository: Repository, workload: WorkloadRecord,
                       snapshot_id: str, view: InstanceView, parent: SnapshotRecord | None,
                       progress: ProgressReporter) -> tuple[SnapshotInstance, int]:
        instance = view.instance
        parent_disks = {}
        if parent is not None:
            for captured in parent.instances:
                if captured.id == instance.id:
                    parent_disks = {d.path: d.manifest_key for d in captured.vdisks}
        vdisks = []
        added = 0
        for index, disk_view in enumerate(view.disks):
            disk = disk_view.disk
            job.checkpoint()
            key = manifest_key(workload.id, snapshot_id, instance.id, index)
            label = f"disk {index + 1} of {instance.name} ({disk.path})"
            parent_key = parent_disks.get(disk.path)
            # Changed ranges are relative to the parent's copy of this very disk.
            changed = disk_view.changed_ranges if parent_key is not None else None
            try:
                result = repository.backup(disk_view.source, key, parent_key=parent_key,
                                           changed_ranges=changed,
                                           progress=progress.for_disk(key, label),
                                           cancel=lambda: job.cancel_requested)
            except JobCancelled:
                raise
            except CairnError as exc:
                if job.cancel_requested:
                    raise JobCancelled("The snapshot was cancelled.") from exc
                raise type(exc)(f"Disk {disk.path} of instance {instance.name}: {exc.message}") from exc
            except OSError as exc:
                raise InvalidInput(f"Disk {disk.path} of instance {instance.name} could not be read: "
                                   f"{exc.strerror or exc}") from exc
            added += result.bytes_added
            vdisks.append(SnapshotDisk(id=f"{instance.id}-{index}", name=_disk_name(disk.path, index),
                                       size=disk.size, format=disk.format, restore_size=disk.size,
                                       path=disk.path, manifest_key=key, bytes_read=result.bytes_read,
                                       device=disk.device))
        return SnapshotInstance(instance.id, instance.name, dict(instance.metadata), tuple(vdisks),
                                dict(view.state)), added

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.subject_id is not None
        now = self.clock()
        if outcome.state == jobs.SUCCEEDED:
            session.execute(update(Workload).where(Workload.id == job.workload_id,
                                                   Workload.status == states.LOCKED)
                            .values(status=states.AVAILABLE, updated_at=now))
            return
        row = session.get(Snapshot, job.subject_id)
        if row is not None and row.status in states.SNAP_RUNNING:
            target = session.scalar(select(Workload.backup_target).where(Workload.id == row.workload_id))
            if target:
                # never here: the reaper settles in a process that may not reach the target
                cleanup.request_cleanup(session, job, now, also=[
                    cleanup.snapshot_data(target, row.project_id, row.workload_id, row.id)])
        status = states.SNAP_CANCELLED if outcome.state == jobs.CANCELLED else states.SNAP_ERROR
        settle_unfinished(session, row, status, outcome.error, now)


def _quietly(step: Callable[[], None], what: str) -> None:
    """Run a clean-up step whose failure must not change the job's outcome."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - logged; the next snapshot or a reset tidies up
        log.warning("%s: %s", what, exc)


def _target_name(workload: WorkloadRecord) -> str:
    if not workload.backup_target:
        raise Conflict(f"Workload {workload.id} has no backup target.")
    return workload.backup_target


def _disk_name(path: str, index: int) -> str:
    name = path.rsplit("/", 1)[-1]
    return name or f"disk{index}"


class SnapshotDeleteJob:
    """Removes a snapshot's data from the target, then its row goes `deleted`."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime], gc_wait_seconds: float) -> None:
        self.targets = targets
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds

    def run(self, job: JobContext) -> None:
        assert job.record.subject_id is not None and job.record.workload_id is not None
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, job.record.workload_id, None)
                snapshot = snapshot_record(session.get_one(Snapshot, job.record.subject_id))
        remove_snapshot_data(self.targets, workload, snapshot)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                now = self.clock()
                session.execute(update(Snapshot).where(Snapshot.id == snapshot.id).values(
                    status=states.SNAP_DELETED, deleted=True, deleted_at=now, updated_at=now,
                    deleted_reason=job.record.payload.get("reason", "deleted")))
        try:
            collect_garbage(self.targets, workload, self.gc_wait_seconds)
        except CairnError as exc:  # the space comes back at the next collection
            log.warning("after deleting snapshot %s: %s", snapshot.id, exc.message)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.state != jobs.SUCCEEDED and job.subject_id:
            session.execute(update(Snapshot).where(Snapshot.id == job.subject_id,
                                                   Snapshot.status == states.SNAP_DELETING)
                            .values(status=states.SNAP_ERROR, updated_at=now,
                                    error_msg=f"Delete did not complete: {outcome.error}"))
        session.execute(update(Workload).where(Workload.id == job.workload_id, Workload.status == states.LOCKED)
                        .values(status=states.AVAILABLE, updated_at=now))


def delete_snapshot_files(targets: BackupTargets, target_name: str, project_id: str,
                          workload_id: str, snapshot_id: str) -> None:
    """Catalog file first, then manifests: a target never describes a snapshot it cannot
    restore. The chunks become garbage for the next GC."""
    target = targets.get(target_name)
    catalog.remove_snapshot(target.catalog(project_id), workload_id, snapshot_id)
    repository = targets.repository(target_name, project_id)
    prefix = f"{workload_id}/{snapshot_id}/"
    for key in repository.list_manifests():
        if key.startswith(prefix):
            try:
                repository.delete_manifest(key)
            except ManifestNotFound:
                pass


def remove_snapshot_data(targets: BackupTargets, workload: WorkloadRecord, snapshot: SnapshotRecord) -> None:
    delete_snapshot_files(targets, _target_name(workload), workload.project_id, workload.id, snapshot.id)


def apply_retention(database_session: Session, workload: WorkloadRecord, now: datetime) -> list[tuple[str, str]]:
    """Mark expired snapshots `deleting`; returns (snapshot id, reason) to remove."""
    schedule = JobSchedule.from_storage(workload.jobschedule)
    rows = database_session.execute(select(Snapshot.id, Snapshot.created_at, Snapshot.pinned).where(
        Snapshot.workload_id == workload.id, Snapshot.status == states.SNAP_AVAILABLE,
        Snapshot.deleted.is_(False))).all()
    removals = expired_snapshots([Kept(r.id, r.created_at, r.pinned) for r in rows],
                                 schedule.retention_policy_type, schedule.retention_policy_value, now)
    for removal in removals:
        database_session.execute(update(Snapshot).where(Snapshot.id == removal.snapshot_id).values(
            status=states.SNAP_DELETING, updated_at=now, deleted_reason=removal.reason))
    return [(r.snapshot_id, r.reason) for r in removals]


class RetentionStep:
    """After a successful snapshot: remove what the schedule no longer keeps, then GC."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime], gc_wait_seconds: float) -> None:
        self.targets = targets
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds

    def __call__(self, job: JobContext, snapshot_id: str) -> None:
        assert job.record.workload_id is not None
        with job.database.unit_of_work() as session:
            workload = get_workload(session, job.record.workload_id, None)
            removals = apply_retention(session, workload, self.clock())
        for removed_id, reason in removals:
            delete_snapshot_files(self.targets, _target_name(workload), workload.project_id,
                                  workload.id, removed_id)
            with job.database.unit_of_work() as session:
                now = self.clock()
                session.execute(update(Snapshot).where(Snapshot.id == removed_id).values(
                    status=states.SNAP_DELETED, deleted=True, deleted_at=now, updated_at=now))
            log.info("snapshot %s removed: %s", removed_id, reason)
        if removals:
            collect_garbage(self.targets, workload, self.gc_wait_seconds)


def collect_garbage(targets: BackupTargets, workload: WorkloadRecord, wait_seconds: float) -> None:
    report = targets.repository(_target_name(workload), workload.project_id).gc(wait_seconds=wait_seconds)
    log.info("garbage collection for project %s: %d packs deleted, %d repacked, %d bytes freed%s",
             workload.project_id, report.packs_deleted, report.packs_repacked, report.bytes_freed,
             " (plan pending: backups still running)" if report.pending else "")


def publish_workload(targets: BackupTargets, workload: WorkloadRecord) -> None:
    """Write the workload's description to its target's catalog (for import)."""
    document = {"id": workload.id, "project_id": workload.project_id, "user_id": workload.user_id,
                "name": workload.name, "description": workload.description,
                "workload_type_id": workload.workload_type_id,
                "availability_zone": workload.availability_zone,
                "jobschedule": workload.jobschedule, "metadata": workload.metadata,
                "instances": [{"id": i.id, "name": i.name, "metadata": i.metadata}
                              for i in workload.instances],
                "created_at": isoformat(workload.created_at)}
    catalog.write_workload(targets.get(_target_name(workload)).catalog(workload.project_id), document)


def refuse_delete_with_snapshots(session: Session, workload: WorkloadRecord) -> None:
    if count_live(session, workload.id):
        raise Conflict("This workload contains snapshots. Delete all its snapshots first.")


class ResetCleanup:
    """Reset: the next snapshot is full, leftovers of unfinished snapshots leave the target."""

    def __init__(self, targets: BackupTargets, gc_wait_seconds: float) -> None:
        self.targets = targets
        self.gc_wait_seconds = gc_wait_seconds

    def __call__(self, job: JobContext, workload_id: str) -> None:
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Workload).where(Workload.id == workload_id).values(full_required=True))
                workload = get_workload(session, workload_id, None)
                kept = set(session.scalars(select(Snapshot.id).where(
                    Snapshot.workload_id == workload_id, Snapshot.deleted.is_(False),
                    Snapshot.status.in_((states.SNAP_AVAILABLE, states.SNAP_DELETING)))))
        repository = self.targets.repository(_target_name(workload), workload.project_id)
        leftovers = {key.split("/")[1] for key in repository.list_manifests()
                     if key.startswith(f"{workload_id}/") and key.split("/")[1] not in kept}
        for snapshot_id in sorted(leftovers):
            job.checkpoint()
            delete_snapshot_files(self.targets, _target_name(workload), workload.project_id,
                                  workload_id, snapshot_id)
        if leftovers:
            collect_garbage(self.targets, workload, self.gc_wait_seconds)


class ForgetPlatformHistory:
    """Reset: the platform drops what it kept for incrementals (libvirt: Cairn's checkpoints)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __call__(self, job: JobContext, workload_id: str) -> None:
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, workload_id, None)
        self.platform.forget_history([m.id for m in workload.instances])


class DeleteWorkloadData:
    """Delete (not database_only): the workload's catalog goes, and the space it held."""

    def __init__(self, targets: BackupTargets, gc_wait_seconds: float) -> None:
        self.targets = targets
        self.gc_wait_seconds = gc_wait_seconds

    def __call__(self, job: JobContext, workload_id: str) -> None:
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, workload_id, None)
        if not workload.backup_target:
            return
        catalog.remove_workload(self.targets.get(workload.backup_target).catalog(workload.project_id),
                                workload_id)
        repository = self.targets.repository(workload.backup_target, workload.project_id)
        for key in repository.list_manifests():  # leftovers of failed snapshots
            if key.startswith(f"{workload_id}/"):
                try:
                    repository.delete_manifest(key)
                except ManifestNotFound:
                    pass
        collect_garbage(self.targets, workload, self.gc_wait_seconds)
