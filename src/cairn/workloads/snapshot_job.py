"""The snapshot job: copies every disk of a workload's instances into the project's
repository, publishes the snapshot, then applies retention.

In order (the commit order of the data engine extended to the service): every disk's
manifest → the snapshot's catalog file → the row `available`. A crash at any point
leaves only garbage: manifests of a snapshot whose row never became available are
removed by the clean-up job its settlement (or the reaper's) queues on the worker that
wrote them (`cleanup.py`), and by reset; their chunks go at the next garbage collection.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting, rowcount
from cairn.db.models import Snapshot, Workload
from cairn.errors import CairnError, InvalidInput, NotFound
from cairn.jobs import records as jobs
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobCancelled, JobContext, Outcome
from cairn.platforms.base import Capture, InstanceInfo, InstanceView, Platform
from cairn.workloads import cleanup, disk_exclusion, states
from cairn.workloads.catalog import SnapshotDocument
from cairn.workloads.job_rows import RESET_MESSAGE, ProgressReporter, settle_unfinished
from cairn.workloads.records import WorkloadRecord, get_workload
from cairn.workloads.retention_step import RetentionStep
from cairn.workloads.snapshot_records import (
    SnapshotDisk,
    SnapshotInstance,
    SnapshotRecord,
    get_snapshot,
    latest_available,
)
from cairn.workloads.snapshot_type import FULL, INCREMENTAL
from cairn.workloads.storage import BackupTargets
from cairn.workloads.target_data import WorkloadData, manifest_key

log = logging.getLogger(__name__)

JOB_SNAPSHOT = "snapshot"
PARALLEL_TYPE_ID = "2ddd528d-c9b4-4d7e-8722-cc395140255a"


class SnapshotJob:
    """Copies every disk of the workload's instances into the project's repository."""

    def __init__(self, platform: Platform, targets: BackupTargets, clock: Callable[[], datetime],
                 retention: RetentionStep | None = None) -> None:
        self.platform = platform
        self.targets = targets
        self.clock = clock
        self.retention = retention

    def run(self, job: JobContext) -> None:
        snapshot_id = job.record.subject_id
        assert snapshot_id is not None and job.record.workload_id is not None
        started = self.clock()
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, job.record.workload_id, None)
                snapshot = get_snapshot(session, snapshot_id, None)
                parent = latest_available(session, workload.id) if snapshot.snapshot_type == INCREMENTAL else None
        for attempt in reconnecting():
            with attempt:
                instances, excluded, positions = self._instances(workload)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(
                    status=states.SNAP_EXECUTING, host=socket.gethostname(), updated_at=started,
                    progress_msg="Reading the instances' disks."))
        data = WorkloadData.of(self.targets, workload)
        data.repository  # noqa: B018 - opened (target checked) before any disk is captured
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
                    def copy(view: InstanceView) -> tuple[SnapshotInstance, int]:
                        return self._copy_instance(job, data, workload, snapshot_id, view, parent, progress,
                                                   positions[view.instance.id])
                    if parallel:
                        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="snap") as pool:
                            captured.extend(pool.map(copy, capture.views))
                    else:
                        captured.extend(copy(view) for view in capture.views)
                finally:
                    capture.close()
            self._publish(job, data, workload, snapshot, instances, captured, captures, excluded)
        except BaseException:
            for capture in captures:
                _quietly(capture.discard, f"undoing the capture of snapshot {snapshot_id}")
            raise
        for capture in captures:
            _quietly(capture.commit, f"after snapshot {snapshot_id}")
        if self.retention is not None:
            try:
                self.retention(job, workload, data)
            except CairnError as exc:  # the snapshot is safe; retention or GC can run next time
                log.warning("after snapshot %s: %s", snapshot_id, exc.message)

    def _publish(self, job: JobContext, data: WorkloadData, workload: WorkloadRecord, snapshot: SnapshotRecord,
                 instances: list[InstanceInfo], captured: list[tuple[SnapshotInstance, int]],
                 captures: list[Capture], excluded: list[disk_exclusion.ExcludedDisk]) -> None:
        """The catalog file, then the row `available`: the snapshot's commit point."""
        job.checkpoint()
        added = sum(size for _, size in captured)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                session.execute(update(Snapshot).where(Snapshot.id == snapshot.id).values(
                    status=states.SNAP_UPLOADING, progress_percent=99, progress_msg="Writing the catalog."))
        finished = self.clock()
        warnings = [w for capture in captures for w in capture.warnings]
        kind = snapshot.snapshot_type
        if kind == INCREMENTAL and any(v.full for c in captures for v in c.views):
            kind = FULL  # the platform could not trust its change history: say what was done
        document = SnapshotDocument(
            id=snapshot.id, workload_id=workload.id, project_id=workload.project_id,
            user_id=snapshot.user_id, name=snapshot.name, description=snapshot.description,
            snapshot_type=kind, created_at=snapshot.created_at, finished_at=finished, size=added,
            restore_size=sum(i.size for i in instances),
            time_taken=int((finished - snapshot.created_at).total_seconds()),
            warning_msg=" ".join(warnings) or None,
            metadata=disk_exclusion.record(snapshot.metadata, excluded),
            instances=tuple(instance for instance, _ in captured))
        data.publish_snapshot(workload, document)
        job.checkpoint()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                result = session.execute(update(Snapshot).where(
                    Snapshot.id == snapshot.id, Snapshot.status == states.SNAP_UPLOADING).values(
                    status=states.SNAP_AVAILABLE, size=added, uploaded_size=added,
                    restore_size=document.restore_size, progress_percent=100,
                    progress_msg="Snapshot is available.", finished_at=finished, updated_at=finished,
                    time_taken=document.time_taken, instances=document.instances_json(), snapshot_type=kind,
                    warning_msg=document.warning_msg, meta=document.metadata))
                # Only this job makes its snapshot available: found so, a lost commit had applied.
                if rowcount(result) != 1 and session.scalar(select(Snapshot.status).where(
                        Snapshot.id == snapshot.id)) != states.SNAP_AVAILABLE:
                    raise JobCancelled("The snapshot was settled by someone else.")
                if kind == FULL:
                    session.execute(update(Workload).where(Workload.id == workload.id).values(full_required=False))

    def _instances(self, workload: WorkloadRecord) -> tuple[list[InstanceInfo], list[disk_exclusion.ExcludedDisk],
                                                            dict[str, dict[str, int]]]:
        """The instances with only the disks to back up (confirmed), the disks left out,
        and each kept disk's position among its instance's disks."""
        found = self.platform.find_instances(workload.project_id, [m.id for m in workload.instances])
        missing = [m.id for m in workload.instances if m.id not in found]
        if missing:
            raise NotFound(f"Instance {missing[0]} of the workload could not be found.")
        ordered: list[InstanceInfo] = []
        excluded: list[disk_exclusion.ExcludedDisk] = []
        positions: dict[str, dict[str, int]] = {}
        for member in workload.instances:
            kept, left, positions[member.id] = disk_exclusion.split(found[member.id])
            ordered.append(kept)
            excluded.extend(left)
        for instance in ordered:
            self.platform.confirm(instance)
        return ordered, excluded, positions

    def _copy_instance(self, job: JobContext, data: WorkloadData, workload: WorkloadRecord, snapshot_id: str,
                       view: InstanceView, parent: SnapshotRecord | None, progress: ProgressReporter,
                       positions: dict[str, int]) -> tuple[SnapshotInstance, int]:
        instance = view.instance
        parent_disks = {}
        if parent is not None:
            for captured in parent.instances:
                if captured.id == instance.id:
                    parent_disks = {d.path: d.manifest_key for d in captured.vdisks}
        vdisks = []
        added = 0
        for position, disk_view in enumerate(view.disks):
            disk = disk_view.disk
            # its place among all the instance's disks, excluded ones counted
            index = positions.get(disk.path, position)
            job.checkpoint()
            key = manifest_key(workload.id, snapshot_id, instance.id, index)
            label = f"disk {index + 1} of {instance.name} ({disk.path})"
            parent_key = parent_disks.get(disk.path)
            # Changed ranges are relative to the parent's copy of this very disk.
            changed = disk_view.changed_ranges if parent_key is not None else None
            try:
                result = data.repository.backup(disk_view.source, key, parent_key=parent_key,
                                                changed_ranges=changed,
                                                progress=progress.for_disk(key, label),
                                                cancel=lambda: job.cancel_requested)
            except JobCancelled:
                raise
            except CairnError as exc:
                if job.cancel_requested:
                    raise JobCancelled("The snapshot was cancelled.") from exc
                # the same error, saying which disk: its kind and fields stay as they are
                exc.message = f"Disk {disk.path} of instance {instance.name}: {exc.message}"
                exc.args = (exc.message,)
                raise
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
        # a reset settled the row while the job ran: what the job wrote still goes
        reset = row is not None and row.status == states.SNAP_ERROR and row.error_msg == RESET_MESSAGE
        if row is not None and (row.status in states.SNAP_RUNNING or reset):
            owner = session.execute(select(Workload.backup_target, Workload.encryption, Workload.secret_uuid)
                                    .where(Workload.id == row.workload_id)).one_or_none()
            if owner is not None and owner.backup_target:  # removed by a clean-up job on the worker that wrote it
                secret = owner.secret_uuid if owner.encryption else None
                cleanup.request_cleanup(session, job, now, also=[
                    cleanup.snapshot_data(owner.backup_target, row.project_id, row.workload_id, row.id, secret)])
        status = states.SNAP_CANCELLED if outcome.state == jobs.CANCELLED else states.SNAP_ERROR
        settle_unfinished(session, row, status, outcome.error, now)


def _quietly(step: Callable[[], None], what: str) -> None:
    """Run a clean-up step whose failure must not change the job's outcome."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - logged; the next snapshot or a reset tidies up
        log.warning("%s: %s", what, exc)


def _disk_name(path: str, index: int) -> str:
    name = path.rsplit("/", 1)[-1]
    return name or f"disk{index}"
