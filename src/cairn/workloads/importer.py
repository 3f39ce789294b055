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
from cairn.workloads.catalog import CatalogEntry, SnapshotDocument, WorkloadDocument
from cairn.workloads.jobschedule import JobSchedule, next_fire_time
from cairn.workloads.storage import BackupTargets, EncryptedWorkload


@dataclass
class ImportReport:
    workloads: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TargetEntry:
    """One workload a target's catalog describes, with where it was found."""

    target: str
    project_id: str
    entry: CatalogEntry


def target_entries(targets: BackupTargets, target_names: list[str],
                   workload_ids: set[str] | None = None) -> list[TargetEntry]:
    """Every workload the named targets describe (only those of `workload_ids` if given),
    target by target, project by project."""
    found = []
    for target_name in target_names:
        target = targets.get(target_name)
        for project_id in target.projects():
            for entry in catalog.read_catalog(target.catalog(project_id)):
                if workload_ids is None or entry.workload.id in workload_ids:
                    found.append(TargetEntry(target_name, project_id, entry))
    return found


class ManifestCache:
    """The manifest keys of each project's repository, listed once per import."""

    def __init__(self, targets: BackupTargets) -> None:
        self._targets = targets
        self._keys: dict[tuple[str, str], set[str]] = {}

    def __call__(self, target_name: str, project_id: str) -> set[str]:
        key = (target_name, project_id)
        if key not in self._keys:
            self._keys[key] = set(self._targets.repository(target_name, project_id).list_manifests())
        return self._keys[key]

    def of_encrypted(self, target_name: str, project_id: str, document: WorkloadDocument) -> set[str]:
        """The manifest keys of an encrypted workload's own repository (not cached: it
        serves that workload alone)."""
        return set(self._targets.repository(target_name, project_id, EncryptedWorkload(
            document.id, document.secret_uuid or "")).list_manifests())


def import_entry(session: Session, item: TargetEntry, manifests: ManifestCache, now: datetime,
                 report: ImportReport) -> bool:
    """Import one workload and its snapshots in `session`; False (and a note in the
    report) when its row is live already."""
    document = item.entry.workload
    existing = session.get(Workload, document.id)
    if existing is not None and not existing.deleted:
        report.skipped.append(f"workload {document.id}: already in the database")
        return False
    if document.encryption:
        # its own repository, opened with its Barbican secret as the service user reads it
        # (the ACL granted at create lives in Barbican, not in the database)
        try:
            keys = manifests.of_encrypted(item.target, item.project_id, document)
        except CairnError as exc:
            report.skipped.append(f"workload {document.id}: encrypted, and its repository cannot "
                                  f"be opened: {exc}")
            return False
    else:
        keys = manifests(item.target, item.project_id)
    _import_workload(session, document, existing, item.target, now, report)
    for snapshot in sorted(item.entry.snapshots, key=lambda s: s.created_at):
        _import_snapshot(session, snapshot, keys, now, report)
    return True


def import_target(session: Session, targets: BackupTargets, target_name: str, now: datetime,
                  workload_id: str | None = None) -> ImportReport:
    report = ImportReport()
    manifests = ManifestCache(targets)
    for item in target_entries(targets, [target_name], {workload_id} if workload_id else None):
        import_entry(session, item, manifests, now, report)
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
