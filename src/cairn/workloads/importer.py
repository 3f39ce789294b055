"""Import: rebuild workload and snapshot rows from what a backup target describes.

After a `database_only` delete, or with a new database, the catalog on a target
(`catalog.py`) is enough to bring workloads and their snapshots back. A snapshot is
imported only when every manifest it names is present in the project's repository (an
encrypted workload's own repository, opened with its Barbican secret as the service user
may read it: docs/encryption.md); a workload whose row is live already is left alone.
Imported workloads are `available`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cairn.db.models import Policy, Snapshot, Workload, WorkloadInstance, WorkloadType
from cairn.errors import CairnError
from cairn.workloads import catalog, states
from cairn.workloads.catalog import SnapshotDocument, WorkloadDocument
from cairn.workloads.jobschedule import JobSchedule, next_fire_time
from cairn.workloads.storage import BackupTargets, EncryptedWorkload


@dataclass
class ImportReport:
    workloads: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def import_target(session: Session, targets: BackupTargets, target_name: str, now: datetime,
                  workload_id: str | None = None) -> ImportReport:
    target = targets.get(target_name)
    report = ImportReport()
    for project_id in target.projects():
        manifests: set[str] | None = None
        for entry in catalog.read_catalog(target.catalog(project_id), workload_id):
            document = entry.workload
            existing = session.get(Workload, document.id)
            if existing is not None and not existing.deleted:
                report.skipped.append(f"workload {document.id}: already in the database")
                continue
            if document.encryption:
                # its own repository, opened with its Barbican secret as the service user
                # reads it (the ACL granted at create lives in Barbican, not in the database)
                try:
                    own = set(targets.repository(target_name, project_id, EncryptedWorkload(
                        document.id, document.secret_uuid or "")).list_manifests())
                except CairnError as exc:
                    report.skipped.append(f"workload {document.id}: encrypted, and its repository cannot "
                                          f"be opened: {exc}")
                    continue
                _import_workload(session, document, existing, target_name, now, report)
                for snapshot in sorted(entry.snapshots, key=lambda s: s.created_at):
                    _import_snapshot(session, snapshot, own, now, report)
                continue
            if manifests is None:
                manifests = set(targets.repository(target_name, project_id).list_manifests())
            _import_workload(session, document, existing, target_name, now, report)
            for snapshot in sorted(entry.snapshots, key=lambda s: s.created_at):
                _import_snapshot(session, snapshot, manifests, now, report)
    return report


def _import_workload(session: Session, document: WorkloadDocument, existing: Workload | None,
                     target_name: str, now: datetime, report: ImportReport) -> None:
    metadata = dict(document.metadata)
    policy_id = metadata.get("policy_id")
    if policy_id and session.get(Policy, policy_id) is None:
        metadata.pop("policy_id")
        report.skipped.append(f"workload {document.id}: policy {policy_id} is unknown here; dropped")
        policy_id = None
    type_id = document.workload_type_id
    if session.get(WorkloadType, type_id) is None:
        type_id = "f82ce76f-17fe-438b-aa37-7a023058e50d"
    schedule = JobSchedule.from_storage(document.jobschedule)
    upcoming = next_fire_time(schedule, now.replace(tzinfo=UTC)) if schedule.enabled else None
    values = dict(
        project_id=document.project_id, user_id=document.user_id, name=document.name,
        description=document.description, workload_type_id=type_id,
        status=states.AVAILABLE, error_msg=None, availability_zone=document.availability_zone,
        jobschedule=document.jobschedule, meta=metadata, policy_id=policy_id,
        backup_target=target_name, created_at=document.created_at or now, updated_at=now,
        deleted=False, deleted_at=None, full_required=True,
        encryption=document.encryption, secret_uuid=document.secret_uuid,
        secret_claim=_free_secret(session, document),
        next_fire_at=upcoming.astimezone(UTC).replace(tzinfo=None) if upcoming else None)
    if existing is None:
        session.add(Workload(id=document.id, **values))
    else:
        for name, value in values.items():
            setattr(existing, name, value)
        session.execute(delete(WorkloadInstance).where(WorkloadInstance.workload_id == existing.id))
    session.flush()
    claimed = set(session.scalars(select(WorkloadInstance.claim).where(
        WorkloadInstance.claim.in_([i.id for i in document.instances]))))
    for position, instance in enumerate(document.instances):
        free = instance.id not in claimed
        if not free:
            report.skipped.append(f"workload {document.id}: instance {instance.id} belongs to "
                                  "another workload; imported without it being claimed")
        session.add(WorkloadInstance(workload_id=document.id, instance_id=instance.id,
                                     name=instance.name, meta=instance.metadata,
                                     claim=instance.id if free else None, position=position))
    session.flush()
    report.workloads.append(document.id)


def _free_secret(session: Session, document: WorkloadDocument) -> str | None:
    """The secret's claim for the imported workload, unless a live one holds it."""
    if not document.encryption or not document.secret_uuid:
        return None
    holder = session.scalar(select(Workload.id).where(Workload.secret_claim == document.secret_uuid,
                                                      Workload.id != document.id))
    return None if holder else document.secret_uuid


def _import_snapshot(session: Session, document: SnapshotDocument, manifests: set[str], now: datetime,
                     report: ImportReport) -> None:
    missing = [k for k in document.manifest_keys if k not in manifests]
    if missing:
        report.skipped.append(f"snapshot {document.id}: manifest {missing[0]} is missing on the target")
        return
    values = dict(
        workload_id=document.workload_id, project_id=document.project_id,
        user_id=document.user_id, name=document.name, description=document.description,
        snapshot_type=document.snapshot_type, status=states.SNAP_AVAILABLE,
        created_at=document.created_at, updated_at=now, finished_at=document.finished_at,
        size=document.size, restore_size=document.restore_size, uploaded_size=document.size,
        progress_percent=100, progress_msg="Imported from the backup target.", error_msg=None,
        warning_msg=document.warning_msg, time_taken=document.time_taken, host="",
        pinned=False, meta=document.metadata, instances=document.instances_json(),
        deleted=False, deleted_at=None, deleted_reason=None)
    existing = session.get(Snapshot, document.id)
    if existing is None:
        session.add(Snapshot(id=document.id, fire_time=None, **values))
    else:
        for name, value in values.items():
            setattr(existing, name, value)
    report.snapshots.append(document.id)
