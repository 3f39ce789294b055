"""Snapshot queries and the records they return (what crosses into the API layer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cairn.db.models import Snapshot
from cairn.errors import InvalidInput, NotFound
from cairn.workloads import states


@dataclass(frozen=True)
class SnapshotDisk:
    id: str
    name: str
    size: int
    format: str
    restore_size: int
    path: str
    manifest_key: str
    #: bytes the snapshot read from this disk (the changed ranges of a live incremental)
    bytes_read: int = 0
    #: the platform's name for the disk inside its instance (libvirt: `vda`)
    device: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotDisk:
        return cls(id=data["id"], name=data["name"], size=data["size"], format=data["format"],
                   restore_size=data["restore_size"], path=data["path"],
                   manifest_key=data["manifest_key"], bytes_read=int(data.get("bytes_read", 0)),
                   device=data.get("device", ""))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "format": self.format,
                "restore_size": self.restore_size, "path": self.path, "manifest_key": self.manifest_key,
                "bytes_read": self.bytes_read, "device": self.device}


@dataclass(frozen=True)
class SnapshotInstance:
    id: str
    name: str
    metadata: dict[str, str]
    vdisks: tuple[SnapshotDisk, ...]
    #: what the platform keeps for the next snapshot and for restores (libvirt: the
    #: checkpoint name and the domain description); never shown through the API
    platform: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotInstance:
        return cls(id=data["id"], name=data["name"], metadata=dict(data.get("metadata") or {}),
                   vdisks=tuple(SnapshotDisk.from_json(d) for d in data.get("vdisks", [])),
                   platform=dict(data.get("platform") or {}))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "metadata": self.metadata,
                "vdisks": [d.to_json() for d in self.vdisks], "platform": self.platform}


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    workload_id: str
    project_id: str
    user_id: str
    name: str
    description: str
    snapshot_type: str
    status: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    size: int
    restore_size: int
    uploaded_size: int
    progress_percent: int
    progress_msg: str
    error_msg: str | None
    warning_msg: str | None
    time_taken: int
    host: str
    pinned: bool
    metadata: dict[str, str]
    instances: tuple[SnapshotInstance, ...]
    deleted_reason: str | None = None
    #: the tiers of a tiered schedule the snapshot was taken for (None: the 4.x form)
    schedule_tiers: tuple[str, ...] | None = None


def snapshot_record(row: Snapshot) -> SnapshotRecord:
    return SnapshotRecord(
        id=row.id, workload_id=row.workload_id, project_id=row.project_id, user_id=row.user_id,
        name=row.name, description=row.description, snapshot_type=row.snapshot_type,
        status=row.status, created_at=row.created_at, updated_at=row.updated_at,
        finished_at=row.finished_at, size=row.size, restore_size=row.restore_size,
        uploaded_size=row.uploaded_size, progress_percent=row.progress_percent,
        progress_msg=row.progress_msg, error_msg=row.error_msg, warning_msg=row.warning_msg,
        time_taken=row.time_taken, host=row.host, pinned=row.pinned,
        metadata=dict(row.meta or {}),
        instances=tuple(SnapshotInstance.from_json(i) for i in row.instances or []),
        deleted_reason=row.deleted_reason,
        schedule_tiers=None if row.schedule_tiers is None else tuple(row.schedule_tiers))


@dataclass(frozen=True)
class SnapshotFilter:
    project_id: str | None
    workload_id: str | None = None
    status: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = 1000
    marker: str | None = None


def get_snapshot(session: Session, snapshot_id: str, project_id: str | None,
                 workload_id: str | None = None) -> SnapshotRecord:
    query = select(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.deleted.is_(False))
    if project_id is not None:
        query = query.where(Snapshot.project_id == project_id)
    if workload_id is not None:
        query = query.where(Snapshot.workload_id == workload_id)
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return snapshot_record(row)


def list_snapshots(session: Session, wanted: SnapshotFilter) -> list[SnapshotRecord]:
    """Live snapshots, oldest first (as the original)."""
    query = select(Snapshot).where(Snapshot.deleted.is_(False))
    if wanted.project_id is not None:
        query = query.where(Snapshot.project_id == wanted.project_id)
    if wanted.workload_id is not None:
        query = query.where(Snapshot.workload_id == wanted.workload_id)
    if wanted.status is not None:
        query = query.where(Snapshot.status == wanted.status)
    if wanted.date_from is not None:
        query = query.where(Snapshot.created_at >= wanted.date_from)
    if wanted.date_to is not None:
        query = query.where(Snapshot.created_at <= wanted.date_to)
    if wanted.marker is not None:
        anchor = session.execute(select(Snapshot.created_at, Snapshot.id).where(
            Snapshot.id == wanted.marker)).first()
        if anchor is None:
            raise InvalidInput(f"marker: snapshot {wanted.marker} could not be found.", "marker")
        query = query.where(or_(Snapshot.created_at > anchor.created_at,
                                and_(Snapshot.created_at == anchor.created_at, Snapshot.id > anchor.id)))
    query = query.order_by(Snapshot.created_at, Snapshot.id).limit(wanted.limit)
    return [snapshot_record(row) for row in session.scalars(query)]


def latest_available(session: Session, workload_id: str) -> SnapshotRecord | None:
    row = session.scalars(select(Snapshot).where(
        Snapshot.workload_id == workload_id, Snapshot.status == states.SNAP_AVAILABLE,
        Snapshot.deleted.is_(False)).order_by(Snapshot.created_at.desc(), Snapshot.id.desc()).limit(1)).first()
    return snapshot_record(row) if row else None


def incrementals_since_full(session: Session, workload_id: str) -> int:
    rows = session.execute(select(Snapshot.snapshot_type).where(
        Snapshot.workload_id == workload_id, Snapshot.status == states.SNAP_AVAILABLE,
        Snapshot.deleted.is_(False)).order_by(Snapshot.created_at.desc(), Snapshot.id.desc())).scalars()
    count = 0
    for kind in rows:
        if kind == "full":
            break
        count += 1
    return count


def count_live(session: Session, workload_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Snapshot).where(
        Snapshot.workload_id == workload_id, Snapshot.deleted.is_(False))) or 0
