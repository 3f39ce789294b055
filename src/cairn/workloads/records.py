"""Workload queries and the records they return (what crosses into the API layer).

Lists are loaded in a fixed number of statements whatever their length: one for the
workloads, one for all their instances (no per-row lazy loads).

`updated_at` is a workload's version: every write that changes what a view of the
workload shows (its columns or its instances) sets it, so a view rendered for one
`updated_at` stays right until it changes. Two things a view shows are not covered and
are read on every request: the storage usage (snapshots change it) and the next fire
time (the scheduler moves it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import String, and_, func, null, or_, select, type_coerce
from sqlalchemy.orm import Session

from cairn.db.models import Snapshot, Workload, WorkloadInstance
from cairn.errors import InvalidInput, NotFound
from cairn.workloads import states


@dataclass(slots=True)
class MemberInstance:
    id: str
    name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class StorageUsage:
    full_count: int = 0
    full_bytes: int = 0
    incremental_count: int = 0
    incremental_bytes: int = 0


class WorkloadSummary(NamedTuple):
    """What the list view shows of a workload (no JSON columns: lists stay cheap). A
    tuple, so that a rendering of it can be remembered by its exact values."""

    id: str
    project_id: str
    user_id: str
    name: str
    description: str
    workload_type_id: str
    status: str
    created_at: datetime
    updated_at: datetime


#: What a list reads of each workload on every request: (id, version, next fire time),
#: both of the last two as the driver returns them (SQLite: the stored text; the others:
#: datetimes), which spares a thousand conversions per list. The version is `updated_at`,
#: for comparing with a version read before and nothing else; the next fire time is read
#: because the scheduler moves it without a new version (`as_datetime` converts it).
#: Plain tuples (rows unpack as them): a list makes one per workload on every request.
WorkloadVersion = tuple[str, object, object]


def as_datetime(value: object) -> datetime | None:
    """A timestamp column's value as a list read it raw (`WorkloadVersion`)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which is a
# measurable share of a 1,000-row list; records are never mutated after building.
@dataclass(slots=True)
class WorkloadRecord:
    id: str
    project_id: str
    user_id: str
    name: str
    description: str
    workload_type_id: str
    status: str
    error_msg: str | None
    availability_zone: str
    jobschedule: dict[str, Any]
    metadata: dict[str, str]
    backup_target: str | None
    created_at: datetime
    updated_at: datetime
    next_fire_at: datetime | None = None
    instances: tuple[MemberInstance, ...] = ()
    storage: StorageUsage = StorageUsage()
    #: its data is encrypted under the Barbican secret `secret_uuid` (docs/encryption.md)
    encryption: bool = False
    secret_uuid: str | None = None
    #: set while the schedule is paused (`cairn.workloads.schedule_pause`)
    schedule_paused_at: datetime | None = None
    #: {"trust": id, "is_valid": bool} of the trust scheduled work acts through, or None
    scheduler_trust: dict[str, Any] | None = None


NO_USAGE = StorageUsage()

_SUMMARY_COLUMNS = (Workload.id, Workload.project_id, Workload.user_id, Workload.name,
                    Workload.description, Workload.workload_type_id, Workload.status,
                    Workload.created_at, Workload.updated_at)
_VERSION_COLUMNS = (Workload.id, type_coerce(Workload.updated_at, String).label("version"))
_COLUMNS = (*_SUMMARY_COLUMNS, Workload.error_msg, Workload.availability_zone, Workload.jobschedule,
            Workload.meta.label("meta"), Workload.backup_target, Workload.next_fire_at,
            Workload.encryption, Workload.secret_uuid, Workload.schedule_paused_at,
            Workload.scheduler_trust)


def _record(row: Any, instances: tuple[MemberInstance, ...] = (),
            storage: StorageUsage = NO_USAGE) -> WorkloadRecord:
    return WorkloadRecord(
        row.id, row.project_id, row.user_id, row.name, row.description, row.workload_type_id,
        row.status, row.error_msg, row.availability_zone, row.jobschedule or {},
        row.meta or {}, row.backup_target, row.created_at, row.updated_at, row.next_fire_at,
        instances, storage, bool(row.encryption), row.secret_uuid, row.schedule_paused_at,
        row.scheduler_trust)


def _select() -> Any:
    return select(*_COLUMNS)


def _instances_of(session: Session, workload_ids: list[str]) -> dict[str, list[MemberInstance]]:
    members: dict[str, list[MemberInstance]] = {wid: [] for wid in workload_ids}
    if not workload_ids:
        return members
    rows = session.connection().execute(
        select(WorkloadInstance.workload_id, WorkloadInstance.instance_id,
               WorkloadInstance.name, WorkloadInstance.meta.label("meta"))
        .where(WorkloadInstance.workload_id.in_(workload_ids))
        .order_by(WorkloadInstance.workload_id, WorkloadInstance.position)).all()
    for row in rows:
        members[row.workload_id].append(MemberInstance(row.instance_id, row.name, row.meta or {}))
    return members


def get_workload(session: Session, workload_id: str, project_id: str | None) -> WorkloadRecord:
    """A live workload; `project_id` None means any project (an admin asking)."""
    query = _select().where(Workload.id == workload_id, Workload.deleted.is_(False))
    if project_id is not None:
        query = query.where(Workload.project_id == project_id)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"Workload {workload_id} could not be found.")
    return _record(row, tuple(_instances_of(session, [workload_id])[workload_id]),
                   storage_usage(session, [workload_id])[workload_id])


def lock_workload(session: Session, workload_id: str, project_scope: str | None) -> Workload:
    """The live workload row, locked for update; `project_scope` None means any project."""
    query = select(Workload).where(Workload.id == workload_id, Workload.deleted.is_(False))
    if project_scope is not None:
        query = query.where(Workload.project_id == project_scope)
    row = session.scalars(query.with_for_update()).first()
    if row is None:
        raise NotFound(f"Workload {workload_id} could not be found.")
    return row


def _listing(session: Session, columns: tuple[Any, ...], *, project_id: str | None, limit: int,
             marker: str | None, backup_targets: list[str] | None) -> list[Any]:
    """Live workloads, newest first; `project_id` None lists every project."""
    query = select(*columns).where(Workload.deleted.is_(False))
    if project_id is not None:
        query = query.where(Workload.project_id == project_id)
    if backup_targets is not None:
        query = query.where(Workload.backup_target.in_(backup_targets))
    if marker is not None:
        anchor = session.execute(select(Workload.created_at, Workload.id).where(
            Workload.id == marker, Workload.deleted.is_(False))).first()
        if anchor is None:
            raise InvalidInput(f"marker: workload {marker} could not be found.", "marker")
        query = query.where(or_(Workload.created_at < anchor.created_at,
                                and_(Workload.created_at == anchor.created_at,
                                     Workload.id < anchor.id)))
    query = query.order_by(Workload.created_at.desc(), Workload.id.desc()).limit(limit)
    # Core, not the ORM: plain column rows need none of the ORM's per-row bookkeeping.
    return list(session.connection().execute(query).all())


def list_workload_versions(session: Session, *, project_id: str | None, limit: int,
                           marker: str | None = None, backup_targets: list[str] | None = None,
                           next_fire: bool = True) -> list[WorkloadVersion]:
    """The versions of the live workloads a list shows, newest first; without
    `next_fire`, every `next_fire_at` is None (a summary does not show it)."""
    fire = type_coerce(Workload.next_fire_at, String) if next_fire else null()
    columns = (*_VERSION_COLUMNS, fire.label("next_fire_at"))
    rows = _listing(session, columns, project_id=project_id, limit=limit, marker=marker,
                    backup_targets=backup_targets)
    return cast(list[WorkloadVersion], rows)


def workload_summaries_by_id(session: Session, workload_ids: list[str]) -> dict[str, WorkloadSummary]:
    """Summaries of the given workloads (deleted ones too: the caller listed them live)."""
    if not workload_ids:
        return {}
    rows = session.connection().execute(
        select(*_SUMMARY_COLUMNS).where(Workload.id.in_(workload_ids))).all()
    return {row.id: WorkloadSummary._make(row) for row in rows}


def workloads_by_id(session: Session, workload_ids: list[str]) -> dict[str, WorkloadRecord]:
    """The given workloads with their instances, without storage usage (`storage_usage`)."""
    if not workload_ids:
        return {}
    rows = session.connection().execute(_select().where(Workload.id.in_(workload_ids))).all()
    members = _instances_of(session, workload_ids)
    return {row.id: _record(row, tuple(members[row.id])) for row in rows}


def instance_owners(session: Session, instance_ids: list[str], exclude_workload: str | None = None
                    ) -> dict[str, str]:
    """instance id → name of the live workload that holds it."""
    if not instance_ids:
        return {}
    query = (select(WorkloadInstance.claim, Workload.name)
             .join(Workload, Workload.id == WorkloadInstance.workload_id)
             .where(WorkloadInstance.claim.in_(instance_ids)))
    if exclude_workload is not None:
        query = query.where(WorkloadInstance.workload_id != exclude_workload)
    return {row.claim: row.name for row in session.execute(query)}


#: longer lists of one project have their usage summed over the project's snapshots
#: instead of naming every workload (binding a thousand parameters cost more than that)
_USAGE_BY_PROJECT_FROM = 50


def storage_usage(session: Session, workload_ids: list[str],
                  project_id: str | None = None) -> dict[str, StorageUsage]:
    """Bytes each workload's live snapshots added to the target, by snapshot type.
    `project_id`, when given, is the project every one of the workloads is in."""
    found: dict[str, dict[str, tuple[int, int]]] = {}
    if workload_ids:
        query = (select(Snapshot.workload_id, Snapshot.snapshot_type, func.count(),
                        func.coalesce(func.sum(Snapshot.size), 0))
                 .where(Snapshot.deleted.is_(False), Snapshot.status == states.SNAP_AVAILABLE)
                 .group_by(Snapshot.workload_id, Snapshot.snapshot_type))
        if project_id is not None and len(workload_ids) >= _USAGE_BY_PROJECT_FROM:
            query = query.where(Snapshot.project_id == project_id)
        else:
            query = query.where(Snapshot.workload_id.in_(workload_ids))
        for workload_id, kind, count, total in session.execute(query):
            found.setdefault(workload_id, {})[kind] = (int(count), int(total))
    usage = dict.fromkeys(workload_ids, NO_USAGE)
    for workload_id, kinds in found.items():
        if workload_id in usage:
            usage[workload_id] = StorageUsage(
                full_count=kinds.get("full", (0, 0))[0], full_bytes=kinds.get("full", (0, 0))[1],
                incremental_count=kinds.get("incremental", (0, 0))[0],
                incremental_bytes=kinds.get("incremental", (0, 0))[1])
    return usage


def count_on_target(session: Session, target_name: str) -> int:
    """How many workloads (not deleted) keep their backups on the target `target_name`."""
    return int(session.scalar(select(func.count()).select_from(Workload).where(
        Workload.backup_target == target_name, Workload.deleted.is_(False))) or 0)


def secret_holder(session: Session, secret_uuid: str) -> str | None:
    """The live workload an encryption secret protects, if any (its `secret_claim`)."""
    return session.scalar(select(Workload.id).where(Workload.secret_claim == secret_uuid))
