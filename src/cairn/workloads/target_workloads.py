"""What the backup targets describe against what the database holds: the workloads that
can be imported, and the orphaned ones.

A workload described on a target (its `workload.json`, `catalog.py`) is

- *importable* when the database has no live row for it (none at all, or one deleted
  with `database_only`): `GET /workloads/get_list/import_workloads` lists them;
- *orphaned* when it is importable, or when its project is gone (Keystone no longer
  knows it, `cairn.auth.projects`): `GET /workloads/orphan_workloads` lists them.
  Such data is only reachable by an import (or a reassign, once imported), so an
  operator looks at this list before reclaiming space on a target.

Reading a target costs one listing of each project's catalog; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.auth.projects import ProjectDirectory
from cairn.db.models import Workload
from cairn.workloads.importer import TargetEntry, target_entries
from cairn.workloads.storage import BackupTargets

NOT_IN_DATABASE = "not in the database"
DELETED = "deleted from the database (database only); its data is on the target"


@dataclass(frozen=True)
class TargetWorkload:
    id: str
    name: str
    project_id: str
    user_id: str
    backup_target: str
    snapshots: int
    created_at: datetime | None
    reason: str


def _row(item: TargetEntry, reason: str) -> TargetWorkload:
    document = item.entry.workload
    return TargetWorkload(id=document.id, name=document.name, project_id=document.project_id,
                          user_id=document.user_id, backup_target=item.target,
                          snapshots=len(item.entry.snapshots), created_at=document.created_at, reason=reason)


def _described(session: Session, targets: BackupTargets, target_names: list[str] | None,
               project_id: str | None) -> tuple[list[TargetEntry], dict[str, bool]]:
    names = target_names if target_names is not None else [t.name for t in targets]
    entries = [e for e in target_entries(targets, names)
               if project_id is None or e.entry.workload.project_id == project_id]
    ids = [e.entry.workload.id for e in entries]
    deleted: dict[str, bool] = {}
    for start in range(0, len(ids), 500):  # IN lists stay short on every backend
        deleted.update((row.id, row.deleted) for row in session.execute(
            select(Workload.id, Workload.deleted).where(Workload.id.in_(ids[start:start + 500]))))
    return entries, deleted


def importable(session: Session, targets: BackupTargets, target_names: list[str] | None = None,
               project_id: str | None = None) -> list[TargetWorkload]:
    """The workloads the targets describe that have no live row."""
    entries, deleted = _described(session, targets, target_names, project_id)
    found = []
    for item in entries:
        state = deleted.get(item.entry.workload.id)
        if state is None:
            found.append(_row(item, NOT_IN_DATABASE))
        elif state:
            found.append(_row(item, DELETED))
    return found


def orphaned(session: Session, targets: BackupTargets, projects: ProjectDirectory,
             target_names: list[str] | None = None) -> list[TargetWorkload]:
    """The importable workloads, and those whose project is gone."""
    entries, deleted = _described(session, targets, target_names, None)
    gone = projects.missing({item.entry.workload.project_id for item in entries})
    found = []
    for item in entries:
        document = item.entry.workload
        state = deleted.get(document.id)
        if document.project_id in gone:
            found.append(_row(item, f"project {document.project_id} is gone"))
        elif state is None:
            found.append(_row(item, NOT_IN_DATABASE))
        elif state:
            found.append(_row(item, DELETED))
    return found
