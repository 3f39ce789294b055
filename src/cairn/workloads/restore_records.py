"""Restore queries and the records they return (what crosses into the API layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.models import Restore
from cairn.errors import NotFound


@dataclass(frozen=True)
class RestoreRecord:
    id: str
    snapshot_id: str
    workload_id: str
    project_id: str
    user_id: str
    name: str
    description: str
    status: str
    restore_type: str
    size: int
    uploaded_size: int
    progress_percent: int
    progress_msg: str
    error_msg: str | None
    time_taken: int
    created_at: datetime
    finished_at: datetime | None
    instances: tuple[dict[str, str], ...]


def restore_record(row: Restore) -> RestoreRecord:
    return RestoreRecord(
        id=row.id, snapshot_id=row.snapshot_id, workload_id=row.workload_id, project_id=row.project_id,
        user_id=row.user_id, name=row.name, description=row.description, status=row.status,
        restore_type=row.restore_type, size=row.size, uploaded_size=row.uploaded_size,
        progress_percent=row.progress_percent, progress_msg=row.progress_msg, error_msg=row.error_msg,
        time_taken=row.time_taken, created_at=row.created_at, finished_at=row.finished_at,
        instances=tuple({"id": i["id"], "name": i["name"], "status": i["status"]} for i in row.instances or []))


def get_restore(session: Session, restore_id: str, project_id: str | None,
                snapshot_id: str | None = None) -> RestoreRecord:
    query = select(Restore).where(Restore.id == restore_id, Restore.deleted.is_(False))
    if project_id is not None:
        query = query.where(Restore.project_id == project_id)
    if snapshot_id is not None:
        query = query.where(Restore.snapshot_id == snapshot_id)
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"Restore {restore_id} could not be found.")
    return restore_record(row)


def list_restores(session: Session, project_id: str | None, snapshot_id: str | None,
                  limit: int) -> list[RestoreRecord]:
    query = select(Restore).where(Restore.deleted.is_(False))
    if project_id is not None:
        query = query.where(Restore.project_id == project_id)
    if snapshot_id is not None:
        query = query.where(Restore.snapshot_id == snapshot_id)
    rows = session.scalars(query.order_by(Restore.created_at, Restore.id).limit(limit))
    return [restore_record(row) for row in rows]
