"""The restore job: writes a snapshot's disks back, as new instances or over the originals.

The workload is `locked` while a restore runs. Before it writes a disk, a restore job
records in its job row every file it will write (`cairn.workloads.cleanup`): the new
files, and for an in-place restore the original disks it overwrites. When it fails, is
cancelled or is reaped after its worker died, its settlement marks it `error` or
`cancelled`, unlocks the workload and queues a `cleanup` job on the same worker, which
removes the new files and the data engine's temporary files; an original disk is never
removed. An in-place restore cannot be undone, and says so in its error.

A cloud platform (OpenStack) makes a new instance's volumes before its disks are written
(`Platform.prepare_disks`) and its ports and server after (`restore_instance`): it
records each in the job row (`record`) before it makes it, and the clean-up deletes them
through the platform (`Platform.remove_created`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.db.models import Restore, Snapshot, Workload
from cairn.engine.repository import Repository
from cairn.engine.snapshot_reader import SnapshotReader
from cairn.errors import CairnError, Conflict, Unavailable
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import WORKER_KEY
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobCancelled, JobContext, Outcome
from cairn.platforms.base import DiskReader, InstantCopy, InstantRestorer, Platform, Recorder, RestoreDisk
from cairn.workloads import cleanup, states
from cairn.workloads.job_rows import ProgressReporter, settle_unfinished
from cairn.workloads.records import get_workload
from cairn.workloads.restore_plan import InstanceChoice, PlannedInstance, RestoreRequest, plan_on
from cairn.workloads.snapshot_records import snapshot_record
from cairn.workloads.storage import BackupTargets, EncryptedWorkload

JOB_RESTORE = "restore"
# how often an instant restore looks at its background copy
POLL_SECONDS = 0.2


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
        plan = plan_on(self.platform, request, snapshot.instances, restore_id, snapshot.project_id)
        recorded = [cleanup.overwritten_file(d.destination) for item in plan if item.inplace for d in item.disks]

        def record(more: list[dict[str, Any]]) -> None:
            """Add to what the job row lists it wrote (before it is written or made)."""
            recorded.extend(m for m in more if m not in recorded)
            for attempt in reconnecting():
                with attempt, job.database.unit_of_work() as session:
                    cleanup.plan_destinations(session, job.record, recorded)

        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                # before any disk is written: a clean-up finds them even if this process dies
                cleanup.plan_destinations(session, job.record, recorded)
                session.execute(update(Restore).where(Restore.id == restore_id).values(
                    status=states.RESTORE_EXECUTING, progress_msg="Writing disks.", updated_at=self.clock()))
        if not workload.backup_target:
            raise Conflict(f"Workload {workload.id} has no backup target.")
        repository = self.targets.repository(workload.backup_target, snapshot.project_id,
                                             EncryptedWorkload.of(workload))
        total = sum(d.source.size for p in plan for d in p.disks)
        if options.get("instant"):
            record([cleanup.created_file(d.destination) for item in plan for d in item.disks if d.creates_file])
            restored = self._run_instant(job, restore_id, snapshot.project_id, plan, repository, total, options,
                                         record)
            self._finish(job, restore_id, total, restored, started)
            return
        progress = ProgressReporter(job, restore_id, total, "Restoring", model=Restore)
        restored = []
        for item in plan:
            targets = [RestoreDisk(d.source.device, d.source.size, d.destination, d.source.format, d.creates_file)
                       for d in item.disks]
            if not item.inplace:
                # a cloud platform makes its volumes here (recording each first); the files
                # a restore creates are recorded before they are written
                targets = self.platform.prepare_disks(snapshot.project_id, item.source.id, item.source.platform,
                                                      targets, options, restore_id, record)
                record([cleanup.created_file(t.path) if t.creates_file else cleanup.overwritten_file(t.path)
                        for t in targets if t.path])
            window = (self.platform.inplace_window(item.live, options) if item.inplace and item.live
                      else contextlib.nullcontext())
            with window:
                for disk, target in zip(item.disks, targets, strict=True):
                    if not target.path:  # the platform leaves it out (a root disk the image gives)
                        continue
                    job.checkpoint()
                    try:
                        # an original disk is compared chunk by chunk and only what differs is written
                        repository.restore(disk.source.manifest_key, target.path, format=target.format,
                                           progress=progress.for_disk(target.path, target.path),
                                           cancel=lambda: job.cancel_requested, inplace=item.inplace)
                    except CairnError as exc:
                        if job.cancel_requested:
                            raise JobCancelled("The restore was cancelled.") from exc
                        undo = " The disk may be partly overwritten." if item.inplace else ""
                        # the same error, saying which disk: its kind and fields stay as they are
                        exc.message = f"Disk {disk.source.path} of instance {item.source.name}: {exc.message}{undo}"
                        exc.args = (exc.message,)
                        raise
            if item.inplace:
                restored.append({"id": item.source.id, "name": item.name, "status": "available"})
            else:
                job.checkpoint()
                for attempt in reconnecting():
                    with attempt:
                        info = self.platform.restore_instance(
                            snapshot.project_id, item.name,
                            [(t.device, t.path, t.format) for t in targets if t.path],
                            item.source.platform, restore_id, job.record.payload.get(WORKER_KEY),
                            options, record)
                restored.append({"id": info.id, "name": info.name, "status": "available"})
        self._finish(job, restore_id, total, restored, started)

    def _finish(self, job: JobContext, restore_id: str, total: int, restored: list[dict[str, str]],
                started: float) -> None:
        job.checkpoint()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                now = self.clock()
                session.execute(update(Restore).where(Restore.id == restore_id).values(
                    status=states.RESTORE_AVAILABLE, progress_percent=100, progress_msg="Restore is complete.",
                    uploaded_size=total, instances=restored, finished_at=now, updated_at=now,
                    time_taken=int(time.monotonic() - started)))

    def _run_instant(self, job: JobContext, restore_id: str, project_id: str, plan: list[PlannedInstance],
                     repository: Repository, total: int, options: dict[str, Any],
                     record: Recorder) -> list[dict[str, str]]:
        """Start every restored instance on its snapshot (platform.instant_restore_instance),
        then wait for the background copy, showing its progress; a copy that stops
        removes the instances and fails the restore with the reason."""
        platform = cast(InstantRestorer, self.platform)
        readers: list[SnapshotReader] = []
        copies: list[InstantCopy] = []
        try:
            for item in plan:
                disks: list[tuple[str, str, DiskReader]] = []
                for disk in item.disks:
                    reader = repository.open_reader(disk.source.manifest_key)
                    readers.append(reader)
                    disks.append((disk.source.device, disk.destination, reader))
                copies.append(platform.instant_restore_instance(
                    project_id, item.name, disks, item.source.platform, restore_id,
                    job.record.payload.get(WORKER_KEY), options, record))
            restored = [{"id": c.instance.id, "name": c.instance.name, "status": "available"} for c in copies]
            names = ", ".join(c.instance.name for c in copies)
            for attempt in reconnecting():
                with attempt, job.database.unit_of_work() as session:
                    session.execute(update(Restore).where(Restore.id == restore_id).values(
                        instances=restored, updated_at=self.clock(),
                        progress_msg=f"{names} running; copying its data in the background."))
            for copy in copies:
                copy.start_copy()
            progress = ProgressReporter(job, restore_id, total, "Copying in the background:", model=Restore)
            report = progress.for_disk("instant", names)
            while True:
                job.checkpoint()
                states_now = [c.progress() for c in copies]
                failed = next((p.failure for p in states_now if p.failure), None)
                if failed is not None:
                    copied = sum(p.copied for p in states_now)
                    raise Unavailable(f"The background copy stopped at {copied * 100 // max(total, 1)} %: {failed}. "
                                      f"The restored instance {names} was removed; the snapshot is intact, "
                                      "restore it again.")
                if all(p.complete for p in states_now):
                    break
                report(sum(p.copied for p in states_now), total)
                time.sleep(POLL_SECONDS)
            for copy in copies:
                copy.close()
            return restored
        except BaseException:
            for copy in copies:
                copy.abandon()
            if copies:  # the instances it listed are gone
                with contextlib.suppress(Exception), job.database.unit_of_work() as session:
                    session.execute(update(Restore).where(Restore.id == restore_id).values(instances=[]))
            raise
        finally:
            for reader in readers:
                reader.close()

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
