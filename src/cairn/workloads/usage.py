"""Usage and chargeback: what each project protects and stores, and what each backup
target holds. Every function here is one SQL statement, whatever the number of
workloads, instances or snapshots (tests/api/test_usage.py counts them).

Stored bytes are the `size` of live available snapshots: what each snapshot added to
its target (deduplicated data counts once, in the snapshot that first stored it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, distinct, func, literal, select, union_all
from sqlalchemy.orm import Session

from cairn.db.models import Instance, Snapshot, Workload, WorkloadInstance
from cairn.workloads import states


def _stored() -> object:
    return and_(Snapshot.deleted.is_(False), Snapshot.status == states.SNAP_AVAILABLE)


@dataclass(frozen=True)
class TargetUse:
    workloads: int = 0
    snapshots: int = 0
    stored_bytes: int = 0


def usage_by_target(session: Session) -> dict[str, TargetUse]:
    """backup target name → its live workloads, their stored snapshots and bytes."""
    query = (select(Workload.backup_target, func.count(distinct(Workload.id)), func.count(Snapshot.id),
                    func.coalesce(func.sum(Snapshot.size), 0))
             .select_from(Workload)
             .outerjoin(Snapshot, and_(Snapshot.workload_id == Workload.id, _stored()))  # type: ignore[arg-type]
             .where(Workload.deleted.is_(False))
             .group_by(Workload.backup_target))
    return {str(name): TargetUse(int(w), int(s), int(b)) for name, w, s, b in session.execute(query)}


@dataclass
class ProjectUse:
    workloads: int = 0
    vms_protected: int = 0
    snapshots: int = 0
    stored_bytes: int = 0
    #: instances of the local inventory (None: the platform is not the local one)
    total_vms: int | None = None


def usage_by_project(session: Session, count_inventory: bool) -> dict[str, ProjectUse]:
    """project → what it protects and stores; with `count_inventory`, also how many
    instances the local inventory registers for it. One statement: a UNION ALL of the
    aggregates, each tagged with what it counts."""
    parts = [
        select(Workload.project_id, literal("protected").label("kind"), func.count(distinct(Workload.id)),
               func.count(WorkloadInstance.id))
        .select_from(Workload).outerjoin(WorkloadInstance, WorkloadInstance.workload_id == Workload.id)
        .where(Workload.deleted.is_(False)).group_by(Workload.project_id),
        select(Snapshot.project_id, literal("stored").label("kind"), func.count(),
               func.coalesce(func.sum(Snapshot.size), 0))
        .where(_stored()).group_by(Snapshot.project_id),  # type: ignore[arg-type]
    ]
    if count_inventory:
        parts.append(select(Instance.project_id, literal("inventory").label("kind"), func.count(),
                            literal(0)).where(Instance.deleted_at.is_(None)).group_by(Instance.project_id))
    found: dict[str, ProjectUse] = {}
    for project_id, kind, first, second in session.execute(union_all(*parts)):
        use = found.setdefault(project_id, ProjectUse(total_vms=0 if count_inventory else None))
        if kind == "protected":
            use.workloads, use.vms_protected = int(first), int(second)
        elif kind == "stored":
            use.snapshots, use.stored_bytes = int(first), int(second)
        else:
            use.total_vms = int(first)
    return found


@dataclass
class ChargedWorkload:
    id: str
    name: str
    project_id: str
    snapshots: int
    stored_bytes: int
    #: instance id → name
    vms: dict[str, str] = field(default_factory=dict)


def chargeback(session: Session) -> list[ChargedWorkload]:
    """Every live workload with its instances and stored bytes, by project then age."""
    stored = (select(Snapshot.workload_id.label("workload_id"), func.count().label("snapshots"),
                     func.coalesce(func.sum(Snapshot.size), 0).label("stored"))
              .where(_stored()).group_by(Snapshot.workload_id).subquery())  # type: ignore[arg-type]
    query = (select(Workload.id, Workload.name, Workload.project_id, stored.c.snapshots, stored.c.stored,
                    WorkloadInstance.instance_id, WorkloadInstance.name.label("vm_name"))
             .select_from(Workload)
             .outerjoin(WorkloadInstance, WorkloadInstance.workload_id == Workload.id)
             .outerjoin(stored, stored.c.workload_id == Workload.id)
             .where(Workload.deleted.is_(False))
             .order_by(Workload.project_id, Workload.created_at, Workload.id, WorkloadInstance.position))
    workloads: dict[str, ChargedWorkload] = {}
    for row in session.execute(query):
        charged = workloads.get(row.id)
        if charged is None:
            charged = workloads[row.id] = ChargedWorkload(row.id, row.name, row.project_id,
                                                          int(row.snapshots or 0), int(row.stored or 0))
        if row.instance_id is not None:
            charged.vms[row.instance_id] = row.vm_name
    return list(workloads.values())


@dataclass(frozen=True)
class ProtectedVm:
    id: str
    name: str
    workload_id: str
    workload_name: str
    project_id: str


def protected_vms(session: Session, project_id: str | None) -> list[ProtectedVm]:
    """The instances the live workloads of `project_id` (None: every project) protect."""
    query = (select(WorkloadInstance.instance_id, WorkloadInstance.name, Workload.id, Workload.name.label("wname"),
                    Workload.project_id)
             .join(Workload, Workload.id == WorkloadInstance.workload_id)
             .where(Workload.deleted.is_(False)))
    if project_id is not None:
        query = query.where(Workload.project_id == project_id)
    query = query.order_by(Workload.project_id, Workload.created_at, Workload.id, WorkloadInstance.position)
    return [ProtectedVm(r.instance_id, r.name, r.id, r.wname, r.project_id) for r in session.execute(query)]
