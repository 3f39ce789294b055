"""The `local` platform: instances an operator registers with `cairn instance add`.

The inventory lives in the `instances` table; each instance has one or more disks that
are raw or qcow2 files (or block devices) on this host.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.clock import utcnow
from cairn.db.models import Instance
from cairn.errors import Conflict, InvalidInput, NotFound
from cairn.platforms.base import DiskInfo, FileDisksPlatform, InstanceInfo, Recorder
from cairn.platforms.disk_probe import probe_disk

SessionFactory = Callable[[], AbstractContextManager[Session]]


#: the key of an instance row's metadata that names the worker reaching its disks
HOST_KEY = "host"
#: a disk's metadata key that leaves it out of snapshots (`cairn.workloads.disk_exclusion`)
EXCLUDE_DISK_KEY = "exclude_from_backup"
#: the namespace of the name-based (uuid5) ids of restored instances
RESTORED_INSTANCE_NAMESPACE = uuid.UUID("5d2c6f0e-8a1b-4c7e-9f3d-2b6a1e4c8d70")


def _info(row: Instance) -> InstanceInfo:
    disks = tuple(DiskInfo(path=d["path"], format=d["format"], size=d["size"],
                           metadata=dict(d.get("metadata") or {})) for d in row.disks)
    metadata = dict(row.meta or {})
    host = metadata.pop(HOST_KEY, None)
    return InstanceInfo(id=row.id, project_id=row.project_id, name=row.name, disks=disks,
                        metadata=metadata, host=host or None)


def register_instance(session: Session, project_id: str, name: str, disk_paths: list[str],
                      host: str | None = None, instance_id: str | None = None,
                      metadata: dict[str, str] | None = None,
                      excluded: list[str] | None = None) -> InstanceInfo:
    """Add an instance to the inventory after checking each disk can be read.

    `host` names the worker (`cairn worker --name`) that reaches its disks; jobs on
    them run there. None: the disks are on storage every worker reaches. `instance_id`
    defaults to a new random id. `metadata` is the instance's (e.g.
    `exclude_boot_disk_from_backup`); each disk of `excluded` (one of `disk_paths`)
    gets the disk metadata `exclude_from_backup = true`, which leaves it out of
    snapshots."""
    if host is not None and (not host.strip() or len(host) > 255 or host != host.strip()):
        raise InvalidInput("host: must be a worker name of 1 to 255 characters, without surrounding "
                           "blanks.", "host")
    if not project_id.strip():
        raise InvalidInput("project: must not be empty.", "project")
    if not name.strip() or len(name) > 255:
        raise InvalidInput("name: must be 1 to 255 characters.", "name")
    if not disk_paths:
        raise InvalidInput("disk: at least one disk is required.", "disk")
    disks = []
    for path in disk_paths:
        absolute = os.path.abspath(path)
        fmt, size = probe_disk(absolute)
        disks.append({"path": absolute, "format": fmt, "size": size})
    if len({d["path"] for d in disks}) != len(disks):
        raise InvalidInput("disk: the same disk is given twice.", "disk")
    _mark_excluded(disks, excluded or [])
    meta = _checked_metadata(metadata or {})
    if host:
        meta[HOST_KEY] = host
    row = Instance(id=instance_id or str(uuid.uuid4()), project_id=project_id, name=name, disks=disks,
                   meta=meta, created_at=utcnow())
    session.add(row)
    return _info(row)


def _checked_metadata(metadata: dict[str, str]) -> dict[str, str]:
    for key, value in metadata.items():
        if not key or len(key) > 255 or len(value) > 255:
            raise InvalidInput("metadata: keys are 1 to 255 characters, values at most 255.", "metadata")
        if key == HOST_KEY:
            raise InvalidInput("metadata: 'host' is set by --host.", "metadata")
    return dict(metadata)


def _mark_excluded(disks: list[dict[str, Any]], excluded: list[str]) -> None:
    """Set (or clear) each disk's `exclude_from_backup` from the paths in `excluded`."""
    wanted = {os.path.abspath(path) for path in excluded}
    unknown = wanted - {d["path"] for d in disks}
    if unknown:
        raise InvalidInput(f"exclude-disk: {sorted(unknown)[0]} is not a disk of the instance.", "exclude-disk")
    for disk in disks:
        metadata = dict(disk.get("metadata") or {})
        if disk["path"] in wanted:
            metadata[EXCLUDE_DISK_KEY] = "true"
        else:
            metadata.pop(EXCLUDE_DISK_KEY, None)
        if metadata:
            disk["metadata"] = metadata
        else:
            disk.pop("metadata", None)


def update_instance(session: Session, instance_id: str, metadata: dict[str, str],
                    unset: list[str], excluded: list[str] | None) -> InstanceInfo:
    """Change an instance's metadata (set `metadata`, remove the keys of `unset`) and,
    when `excluded` is given, which of its disks are left out of snapshots."""
    row = session.get(Instance, instance_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"Instance {instance_id} could not be found.")
    meta = dict(row.meta or {})
    meta.update(_checked_metadata(metadata))
    for key in unset:
        if key != HOST_KEY:
            meta.pop(key, None)
    row.meta = meta
    if excluded is not None:
        disks = [dict(d) for d in row.disks]
        _mark_excluded(disks, excluded)
        row.disks = disks
    session.flush()
    return _info(row)


def list_instances(session: Session, project_id: str | None = None) -> list[InstanceInfo]:
    query = select(Instance).where(Instance.deleted_at.is_(None)).order_by(Instance.created_at)
    if project_id:
        query = query.where(Instance.project_id == project_id)
    return [_info(row) for row in session.scalars(query)]


class LocalPlatform(FileDisksPlatform):
    """Platform driver over the operator-registered inventory."""

    def __init__(self, reader: SessionFactory, writer: SessionFactory) -> None:
        self._reader = reader
        self._writer = writer

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        if not instance_ids:
            return {}
        with self._reader() as session:
            rows = session.scalars(select(Instance).where(
                Instance.id.in_(instance_ids), Instance.project_id == project_id,
                Instance.deleted_at.is_(None)))
            return {row.id: _info(row) for row in rows}

    def confirm(self, instance: InstanceInfo) -> None:
        for disk in instance.disks:
            if not os.access(disk.path, os.R_OK):
                raise Conflict(f"Disk {disk.path} of instance {instance.name} ({instance.id}) "
                               "cannot be read.")

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        """The restored disks registered as a new instance of the inventory, on the
        worker host that wrote them.

        The instance's id is derived from the restore and its first disk's path (unique
        to that restore), so a call run again after a lost commit finds the instance the
        first call committed instead of adding a second one."""
        paths = [path for _device, path, _format in disks]
        instance_id = str(uuid.uuid5(RESTORED_INSTANCE_NAMESPACE, f"{label}\n{os.path.abspath(paths[0])}"))
        with self._writer() as session:
            existing = session.get(Instance, instance_id)
            if existing is not None:
                return _info(existing)
            return register_instance(session, project_id, name, paths, host, instance_id)
