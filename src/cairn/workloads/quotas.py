"""Project quotas: the fixed quota types, each project's allowed quotas, and the guard
that enforces them on workload create, modify and snapshot.

Five types, fixed in code (their ids are stable, so a client may keep them):

    Workloads  live workloads of the project
    Snapshots  live snapshots of the project, not counting failed or cancelled ones
    VMs        instances protected by the project's live workloads
    Volumes    disks of those instances (as the platform reported them when each joined)
    Storage    bytes the project's available snapshots added to the backup targets

An allowed quota says how much of one type a project may use (`allowed_value`; 0 means
none) and where a warning starts (`high_watermark`, at most `allowed_value`). A project
without a quota of a type is not limited in it.

Exact under concurrency. `QuotaGuard.check` runs inside the caller's unit of work,
before that unit writes anything the quota counts: it locks the project's quota rows of
the types the request uses (`SELECT ... FOR UPDATE`, in id order), then counts the
usage from a connection of its own. The lock makes every request that would use a type
wait for the one that holds it to commit or roll back; the count on a fresh connection
sees everything committed until then, whatever the isolation level (MariaDB's
REPEATABLE READ would show the request's own transaction a snapshot taken at its first
read, before the winner committed). The counting reads lock nothing, so they cannot
deadlock with the workload rows other requests hold. Requests that only free units
(deletes) take no lock. SQLite serialises writers anyway.

Lock order, to stay free of deadlocks: a workload row (modify, snapshot) before quota
rows; quota rows in id order.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cairn import __version__
from cairn.db.database import Database
from cairn.db.models import AllowedQuota, Snapshot, Workload, WorkloadInstance
from cairn.errors import Conflict, InvalidInput, NotFound, TooLarge
from cairn.workloads import states

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuotaType:
    id: str
    name: str
    description: str


WORKLOADS = QuotaType("2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a01", "Workloads", "Live workloads of the project.")
SNAPSHOTS = QuotaType("2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a02", "Snapshots",
                      "Live snapshots of the project, failed and cancelled ones not counted.")
VMS = QuotaType("2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a03", "VMs", "Instances protected by the project's workloads.")
VOLUMES = QuotaType("2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a04", "Volumes",
                    "Disks of the instances protected by the project's workloads.")
STORAGE = QuotaType("2d5ef0d5-a1f0-4a36-9f1b-0b2f9a0c1a05", "Storage",
                    "Bytes the project's available snapshots added to the backup targets.")
QUOTA_TYPES: tuple[QuotaType, ...] = (WORKLOADS, SNAPSHOTS, VMS, VOLUMES, STORAGE)
BY_ID = {t.id: t for t in QUOTA_TYPES}
#: the largest value a quota may have (a signed 64-bit column)
MAX_VALUE = 2**63 - 1


class QuotaExceeded(TooLarge):
    """A request would take a project past one of its allowed quotas (413 overLimit)."""


@dataclass(frozen=True)
class QuotaRecord:
    id: str
    project_id: str
    quota_type_id: str
    allowed_value: int
    high_watermark: int
    quota_type_name: str
    version: str = __version__


def _record(row: AllowedQuota) -> QuotaRecord:
    return QuotaRecord(row.id, row.project_id, row.quota_type_id, int(row.allowed_value),
                       int(row.high_watermark), BY_ID[row.quota_type_id].name)


def quota_type(type_id: str, field: str) -> QuotaType:
    found = BY_ID.get(type_id)
    if found is None:
        names = ", ".join(f"{t.id} ({t.name})" for t in QUOTA_TYPES)
        raise InvalidInput(f"{field}: quota type {type_id} could not be found; the types are {names}.", field)
    return found


def _check_values(allowed: int, watermark: int, field: str) -> None:
    for name, value in (("allowed_value", allowed), ("high_watermark", watermark)):
        if not 0 <= value <= MAX_VALUE:
            raise InvalidInput(f"{field}.{name}: must be an integer from 0 to {MAX_VALUE}.", f"{field}.{name}")
    if watermark > allowed:
        raise InvalidInput(f"{field}.high_watermark: {watermark} is above allowed_value {allowed}.",
                           f"{field}.high_watermark")


# -- the allowed quotas of a project --------------------------------------------------


@dataclass(frozen=True)
class QuotaInput:
    """One allowed quota of a create request, after wire validation."""

    quota_type_id: str
    allowed_value: int
    high_watermark: int


def create_quotas(session: Session, project_id: str, wanted: list[QuotaInput], now: datetime) -> list[QuotaRecord]:
    """Add the project's quotas, all or none; a type the project already has is a 409."""
    seen: set[str] = set()
    for n, item in enumerate(wanted):
        field = f"allowed_quotas.{n}"
        quota_type(item.quota_type_id, f"{field}.quota_type_id")
        _check_values(item.allowed_value, item.high_watermark, field)
        if item.quota_type_id in seen:
            raise InvalidInput(f"{field}.quota_type_id: quota type {item.quota_type_id} is listed twice.",
                               f"{field}.quota_type_id")
        seen.add(item.quota_type_id)
    existing = set(session.scalars(select(AllowedQuota.quota_type_id).where(
        AllowedQuota.project_id == project_id, AllowedQuota.quota_type_id.in_(seen))))
    if existing:
        names = ", ".join(sorted(BY_ID[t].name for t in existing))
        raise Conflict(f"Project {project_id} already has a quota of type {names}; update it instead.")
    rows = [AllowedQuota(id=str(uuid.uuid4()), project_id=project_id, quota_type_id=item.quota_type_id,
                         allowed_value=item.allowed_value, high_watermark=item.high_watermark,
                         created_at=now, updated_at=now) for item in wanted]
    session.add_all(rows)
    session.flush()
    return [_record(row) for row in rows]


def list_quotas(session: Session, project_id: str) -> list[QuotaRecord]:
    rows = session.scalars(select(AllowedQuota).where(AllowedQuota.project_id == project_id)
                           .order_by(AllowedQuota.created_at, AllowedQuota.id))
    return [_record(row) for row in rows]


def _row(session: Session, quota_id: str, lock: bool = False) -> AllowedQuota:
    query = select(AllowedQuota).where(AllowedQuota.id == quota_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"Allowed quota {quota_id} could not be found.")
    return row


def get_quota(session: Session, quota_id: str) -> QuotaRecord:
    return _record(_row(session, quota_id))


def update_quota(session: Session, quota_id: str, project_id: str | None, allowed: int | None,
                 watermark: int | None, now: datetime) -> QuotaRecord:
    """Change a quota's values (an omitted one keeps its value). Lowering it below what
    the project already uses is allowed: nothing is taken away, new use is refused."""
    row = _row(session, quota_id, lock=True)
    if project_id is not None and project_id != row.project_id:
        raise InvalidInput(f"allowed_quotas.project_id: quota {quota_id} belongs to project "
                           f"{row.project_id}, not {project_id}.", "allowed_quotas.project_id")
    new_allowed = int(row.allowed_value) if allowed is None else allowed
    new_watermark = int(row.high_watermark) if watermark is None else watermark
    _check_values(new_allowed, new_watermark, "allowed_quotas")
    row.allowed_value = new_allowed
    row.high_watermark = new_watermark
    row.updated_at = now
    return _record(row)


def delete_quota(session: Session, quota_id: str) -> QuotaRecord:
    row = _row(session, quota_id, lock=True)
    record = _record(row)
    session.delete(row)
    return record


# -- usage and the guard --------------------------------------------------------------


def _usage_query(type_id: str, project_id: str) -> object:
    live = (Workload.project_id == project_id, Workload.deleted.is_(False))
    if type_id == WORKLOADS.id:
        return select(func.count()).select_from(Workload).where(*live)
    if type_id in (VMS.id, VOLUMES.id):
        counted = func.count() if type_id == VMS.id else func.coalesce(func.sum(WorkloadInstance.quota_disks), 0)
        return (select(counted).select_from(WorkloadInstance)
                .join(Workload, Workload.id == WorkloadInstance.workload_id).where(*live))
    if type_id == SNAPSHOTS.id:
        return select(func.count()).select_from(Snapshot).where(
            Snapshot.project_id == project_id, Snapshot.deleted.is_(False),
            Snapshot.status.not_in((states.SNAP_ERROR, states.SNAP_CANCELLED)))
    return select(func.coalesce(func.sum(Snapshot.size), 0)).where(
        Snapshot.project_id == project_id, Snapshot.deleted.is_(False),
        Snapshot.status == states.SNAP_AVAILABLE)


def usage(session: Session, project_id: str, type_ids: list[str]) -> dict[str, int]:
    """What the project uses of each type, as committed."""
    return {type_id: int(session.scalar(_usage_query(type_id, project_id)) or 0)  # type: ignore[call-overload]
            for type_id in type_ids}


class QuotaGuard:
    """Refuses a request that would take a project past an allowed quota.

    `before_lock`, when set, is called with the project id just before the quota rows
    are locked: a test uses it to hold two requests at that moment, both inside their
    transactions, so that they meet at the lock whatever the machine's speed.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.before_lock: Callable[[str], None] | None = None

    def check(self, session: Session, project_id: str, wanted: dict[QuotaType, int]) -> None:
        """Raise QuotaExceeded if the project's usage plus `wanted` passes a quota; on
        success the quota rows stay locked until the caller's unit of work ends, so the
        caller must write what it counted for before then."""
        needed = {t.id: n for t, n in wanted.items() if n > 0}
        if not needed:
            return
        if self.before_lock is not None:
            self.before_lock(project_id)
        rows = list(session.scalars(select(AllowedQuota).where(
            AllowedQuota.project_id == project_id, AllowedQuota.quota_type_id.in_(list(needed)))
            .order_by(AllowedQuota.id).with_for_update()))
        if not rows:
            return
        # a connection of its own: it sees every commit made before the lock was granted
        with self.database.reader() as fresh:
            used = usage(fresh, project_id, [row.quota_type_id for row in rows])
        order = [t.id for t in QUOTA_TYPES]  # reported in the types' order, whatever the rows' ids
        for row in sorted(rows, key=lambda r: order.index(r.quota_type_id)):
            kind = BY_ID[row.quota_type_id]
            after = used[kind.id] + needed[kind.id]
            if after > row.allowed_value:
                raise QuotaExceeded(
                    f"{kind.name} quota exceeded: project {project_id} is allowed {row.allowed_value} "
                    f"{kind.name.lower()} (quota {row.id}) and uses {used[kind.id]}; this request "
                    f"needs {needed[kind.id]} more.")
            if after > row.high_watermark:
                log.warning("project %s passes the high watermark of its %s quota: %d of %d (watermark %d)",
                            project_id, kind.name, after, row.allowed_value, row.high_watermark)
