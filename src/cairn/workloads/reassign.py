"""Reassign (`POST /workloads/reasign_workloads`, admin): workloads, their snapshots and
their data move to another project and user.

A backup target keeps one chunk store per project (`projects/<project>/repo`), and a
project's chunks are never read for another (no leak across projects), so moving a
workload to another project moves its data: every manifest of the workload is copied
into the new project's repository (`cairn.engine.copy`: decoded from the old store,
stored anew, deduplicated against what the new project has), and its catalog is
written under the new project; only then do the rows change project; only after that
is the old project's copy removed. In order, each step safe to run again:

1. The request (one transaction): each workload named, or owned by one of
   `old_tenant_ids`, must be live and `available` or `error` (else it is reported in
   `failed_workloads` and left alone); it becomes `locked` and a `reassign` job is
   queued. A workload already in the new project only changes user, at once.
2. The job records the new project's copy as what to remove if it fails (`cleanup`'s
   `{"workload": ...}` destination), creates the new project's repository if needed,
   copies every manifest (one already there is skipped), then writes the snapshots'
   catalog files and the workload's, with the new project and user.
3. Its closing transaction (the commit point) moves the workload, snapshot and restore
   rows to the new project and user and makes the workload `available` again; the
   job's destination becomes the old project's copy, and a clean-up job removes it
   (catalog first, then manifests; its chunks go at that project's next collection).
   A job that fails, is cancelled (unlock) or dies leaves the rows where they were; its
   clean-up removes the partial copy from the new project.

So at every moment the rows point at a complete copy: before the commit the old one
(untouched), after it the new one. Refused as a whole (400): `migrate_cloud: true`
(moving between clouds is not something Cairn does), a new project Keystone does not
know, a workload id twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.auth.projects import ProjectDirectory
from cairn.db.database import reconnecting
from cairn.db.models import Job, Restore, Snapshot, Workload
from cairn.engine.copy import copy_manifest
from cairn.errors import InvalidInput
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, Outcome
from cairn.workloads import catalog, cleanup, states
from cairn.workloads.catalog import SnapshotDocument, WorkloadDocument
from cairn.workloads.records import get_workload
from cairn.workloads.snapshot_records import SnapshotRecord, get_snapshot
from cairn.workloads.storage import BackupTargets
from cairn.workloads.target_data import WorkloadData

log = logging.getLogger(__name__)

JOB_REASSIGN = "reassign"
_NEW_PROJECT, _NEW_USER, _OLD_PROJECT, _PRIOR = "new_project_id", "new_user_id", "old_project_id", "prior_status"


@dataclass(frozen=True)
class ReassignRequest:
    workload_ids: list[str]
    old_project_ids: list[str]
    new_project_id: str
    new_user_id: str
    migrate_cloud: bool = False


@dataclass(frozen=True)
class Reassigned:
    id: str
    name: str
    status: str
    project_id: str
    user_id: str


@dataclass
class ReassignOutcome:
    reassigned: list[Reassigned] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def request_reassign(session: Session, dispatcher: Dispatcher, projects: ProjectDirectory,
                     requests: list[ReassignRequest], now: datetime) -> ReassignOutcome:
    """Check the requests, then lock each movable workload and queue its move."""
    seen: set[str] = set()
    for index, request in enumerate(requests):
        if not request.workload_ids and not request.old_project_ids:
            raise InvalidInput(f"[{index}].workload_ids: name workloads, or old_tenant_ids whose workloads move.",
                               f"[{index}].workload_ids")
        if request.migrate_cloud:
            raise InvalidInput(f"[{index}].migrate_cloud: moving workloads between clouds is not supported; "
                               "reassign within this cloud (migrate_cloud false).", f"[{index}].migrate_cloud")
        for workload_id in request.workload_ids:
            if workload_id in seen:
                raise InvalidInput(f"[{index}].workload_ids: workload {workload_id} is named twice.",
                                   f"[{index}].workload_ids")
            seen.add(workload_id)
    gone = projects.missing({r.new_project_id for r in requests})
    if gone:
        project = sorted(gone)[0]
        raise InvalidInput(f"new_tenant_id: project {project} does not exist.", "new_tenant_id")
    outcome = ReassignOutcome()
    for request in requests:
        ids = list(request.workload_ids)
        if request.old_project_ids:
            ids.extend(w for w in session.scalars(select(Workload.id).where(
                Workload.project_id.in_(request.old_project_ids), Workload.deleted.is_(False))
                .order_by(Workload.created_at, Workload.id)) if w not in ids)
        for workload_id in ids:
            _one(session, dispatcher, request, workload_id, now, outcome)
    return outcome


def _one(session: Session, dispatcher: Dispatcher, request: ReassignRequest, workload_id: str, now: datetime,
         outcome: ReassignOutcome) -> None:
    row = session.scalars(select(Workload).where(Workload.id == workload_id, Workload.deleted.is_(False))
                          .with_for_update()).first()
    if row is None:
        outcome.failed.append((workload_id, f"Workload {workload_id} could not be found."))
        return
    if row.status not in states.MODIFIABLE:
        outcome.failed.append((workload_id, f"Workload {workload_id} is {row.status}: it can be reassigned "
                                            "when available or error."))
        return
    if row.project_id == request.new_project_id:  # no data moves: only its user changes
        row.user_id = request.new_user_id
        row.updated_at = now
        session.execute(update(Snapshot).where(Snapshot.workload_id == row.id).values(user_id=request.new_user_id))
    else:
        prior = row.status
        row.status = states.LOCKED
        row.updated_at = now
        enqueue(session, dispatcher, JOB_REASSIGN, row.project_id, now, workload_id=row.id,
                payload={_NEW_PROJECT: request.new_project_id, _NEW_USER: request.new_user_id,
                         _OLD_PROJECT: row.project_id, _PRIOR: prior})
    outcome.reassigned.append(Reassigned(row.id, row.name, row.status, request.new_project_id,
                                         request.new_user_id))


class ReassignJob:
    """Copies a workload's data into the new project, then moves its rows (see above)."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime]) -> None:
        self.targets = targets
        self.clock = clock

    def run(self, job: JobContext) -> None:
        payload = job.record.payload
        new_project, new_user = payload[_NEW_PROJECT], payload[_NEW_USER]
        assert job.record.workload_id is not None
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                workload = get_workload(session, job.record.workload_id, None)
                snapshot_ids = list(session.scalars(select(Snapshot.id).where(
                    Snapshot.workload_id == workload.id, Snapshot.status == states.SNAP_AVAILABLE,
                    Snapshot.deleted.is_(False)).order_by(Snapshot.created_at)))
                snapshots = [get_snapshot(session, sid, None) for sid in snapshot_ids]
        target = workload.backup_target
        if not target:
            raise InvalidInput(f"Workload {workload.id} has no backup target.")
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                cleanup.plan_destinations(session, job.record, [cleanup.workload_data(target, new_project,
                                                                                       workload.id)])
        old = WorkloadData(self.targets, target, workload.project_id, workload.id)
        new_repository = self.targets.create_repository(target, new_project)
        new_catalog = self.targets.get(target).catalog(new_project)
        for snapshot in snapshots:
            for instance in snapshot.instances:
                for disk in instance.vdisks:
                    job.checkpoint()
                    copy_manifest(old.repository, new_repository, disk.manifest_key,
                                  cancel=lambda: job.cancel_requested)
            job.checkpoint()
            catalog.write_snapshot(new_catalog, _moved_snapshot(snapshot, new_project, new_user))
        moved = WorkloadDocument.from_record(workload)
        catalog.write_workload(new_catalog, WorkloadDocument(**{**moved.__dict__, "project_id": new_project,
                                                                "user_id": new_user}))
        job.checkpoint()
        log.info("reassign of workload %s: %d snapshot(s) copied from project %s to %s on target %s",
                 workload.id, len(snapshots), workload.project_id, new_project, target)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        """The commit point on success: rows move, the old copy is queued for removal;
        otherwise the rows stay and the partial new copy is queued for removal."""
        now = self.clock()
        payload = job.payload
        row = session.get(Workload, job.workload_id) if job.workload_id else None
        if row is None:
            return
        if outcome.state == jobs.SUCCEEDED:
            new_project, new_user = payload[_NEW_PROJECT], payload[_NEW_USER]
            row.project_id = new_project
            row.user_id = new_user
            row.status = payload.get(_PRIOR) or states.AVAILABLE
            row.updated_at = now
            session.execute(update(Snapshot).where(Snapshot.workload_id == row.id)
                            .values(project_id=new_project, user_id=new_user, updated_at=now))
            session.execute(update(Restore).where(Restore.workload_id == row.id).values(project_id=new_project))
            if row.backup_target:
                session.execute(update(Job).where(Job.id == job.id).values(destinations=[
                    cleanup.workload_data(row.backup_target, payload[_OLD_PROJECT], row.id)]))
                cleanup.request_cleanup(session, job, now)
            return
        if row.status == states.LOCKED and row.project_id == payload[_OLD_PROJECT]:
            row.status = payload.get(_PRIOR) or states.AVAILABLE
            row.updated_at = now
        cleanup.request_cleanup(session, job, now)
        log.warning("reassign of workload %s to project %s ended %s: %s", row.id, payload[_NEW_PROJECT],
                    outcome.state, outcome.error)


def _moved_snapshot(snapshot: SnapshotRecord, project_id: str, user_id: str) -> SnapshotDocument:
    return SnapshotDocument(
        id=snapshot.id, workload_id=snapshot.workload_id, project_id=project_id, user_id=user_id,
        name=snapshot.name, description=snapshot.description, snapshot_type=snapshot.snapshot_type,
        created_at=snapshot.created_at, finished_at=snapshot.finished_at, size=snapshot.size,
        restore_size=snapshot.restore_size, time_taken=snapshot.time_taken, warning_msg=snapshot.warning_msg,
        metadata=snapshot.metadata, instances=tuple(snapshot.instances))

