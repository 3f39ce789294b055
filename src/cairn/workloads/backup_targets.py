"""Backup targets and backup target types as resources (docs/backup_targets.md).

Two kinds of backup target live side by side:

- *configured* targets, the `[target:NAME]` sections of the configuration file: listed
  as resources (their id is their name), read-only over the API (they change with the
  file); a type may point at one and one may be the default.
- *created* targets, made by an admin over the API: a row in `backup_targets` (id a
  UUID), type `nfs` (the directory an NFS export is mounted at on every Cairn host) or
  `s3` (a bucket, its keys named by a `secret_ref`, see `s3_credentials`). Creating one
  writes its marker (as `cairn target init` does for a configured one), so a target
  that answers 200 is ready for workloads.

A *backup target type* names a target for workloads: public, or assigned to projects.
`place` decides where a new workload lives: an admin's `metadata.backup_media_target`,
else the type the request names in `backup_target_types` (refused unless it is public
or assigned to the workload's project), else the default type (when the project may
use it), else the default target, else the configured target with the most free space.

Every refusal names the field (`backup_target.<field>`, `backup_target_type.<field>`,
`workload.backup_target_types`) and writes nothing.
"""

from __future__ import annotations

import base64
import math
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from cairn.config import S3TargetSettings, TargetSettings
from cairn.db.database import Database
from cairn.db.models import (
    BackupTargetRow,
    BackupTargetTypeProject,
    BackupTargetTypeRow,
    ServiceSetting,
    Workload,
)
from cairn.errors import CairnError, Conflict, InvalidInput, NotFound
from cairn.targets import marker
from cairn.workloads.s3_credentials import CredentialsLookup, check_reference, credentials_lookup
from cairn.workloads.storage import BackupTarget, BackupTargets, TargetLookup, open_target
from cairn.workloads.storage_s3 import S3BackupTarget

NFS, S3 = "nfs", "s3"
FROM_API, FROM_CONFIGURATION = "api", "configuration"
_DEFAULT_KEY = "default_backup_target"
_EXPORT = re.compile(r"[^\s:/]+:/\S*")
TARGET_FIELD = "backup_target"
TYPE_FIELD = "backup_target_type"
WORKLOAD_FIELD = "workload.backup_target_types"


@dataclass(frozen=True)
class TargetTypeRecord:
    id: str
    name: str
    description: str | None
    backup_target: str
    is_public: bool
    is_default: bool
    user_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetRecord:
    id: str
    type: str
    source: str
    filesystem_export: str | None
    mount_path: str | None
    is_default: bool
    status: str
    capacity: int | None
    used: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    nfs_mount_opts: str | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_prefix: str | None = None
    secret_ref: str | None = None
    immutable: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    types: tuple[TargetTypeRecord, ...] = ()


@dataclass(frozen=True)
class TargetInput:
    type: str
    filesystem_export: str | None = None
    mount_path: str | None = None
    nfs_mount_opts: str | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_prefix: str | None = None
    secret_ref: str | None = None
    immutable: bool = False
    is_default: bool = False
    btt_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TypeInput:
    name: str
    backup_target: str
    description: str | None = None
    is_public: bool = True
    is_default: bool = False
    projects: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


# -- the settings of created targets, for the registry ---------------------------------------


def target_settings(row: BackupTargetRow, credentials: CredentialsLookup) -> TargetSettings:
    """What `BackupTargets` opens for a created target; an S3 target's keys are looked
    up from its `secret_ref` now, through `credentials`."""
    if row.type == S3:
        assert row.s3_endpoint_url and row.s3_bucket and row.secret_ref, "an S3 row has its location"
        keys = credentials(row.secret_ref)
        return TargetSettings(name=row.id, path=None, type="s3", s3=S3TargetSettings(
            endpoint=row.s3_endpoint_url, bucket=row.s3_bucket, access_key=keys.access_key,
            secret_key=keys.secret_key, prefix=row.s3_prefix or "", region=row.s3_region or "us-east-1"))
    assert row.mount_path, "an NFS row has its mount path"
    return TargetSettings(name=row.id, path=Path(row.mount_path), export=row.filesystem_export)


def settings_lookup(database: Database, credentials: CredentialsLookup) -> TargetLookup:
    """The registry's way to a created target by id (None: no such row)."""
    def lookup(name: str) -> TargetSettings | None:
        with database.reader() as session:
            row = session.get(BackupTargetRow, name)
            if row is None:
                return None
            session.expunge(row)
        return target_settings(row, credentials)
    return lookup


# -- parsing helpers -------------------------------------------------------------------------


def flag(name: str, value: Any, default: bool = False) -> bool:
    """A Trilio flag: 0/1, true/false (JSON or text); anything else is a 400 naming it."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "yes", "no"):
        return value.strip().lower() in ("1", "true", "yes")
    raise InvalidInput(f"{name.rsplit('.', 1)[-1]}: {value!r} is not 0, 1, true or false.", name)


def _default_mount_path(data_dir: Path, export: str) -> Path:
    """Where an export is expected when the request names no mount path: Trilio's
    scheme, the export's URL-safe base64 under one directory."""
    encoded = base64.urlsafe_b64encode(export.encode()).decode().rstrip("=")
    return data_dir / "mounts" / encoded


# -- the service ------------------------------------------------------------------------------


class BackupTargetService:
    """Creates, lists, shows and deletes targets and types; `place` chooses a new
    workload's target."""

    def __init__(self, targets: BackupTargets, data_dir: Path, clock: Callable[[], datetime],
                 credentials: CredentialsLookup | None = None) -> None:
        self.targets = targets
        self.data_dir = data_dir
        self.clock = clock
        self.credentials = credentials or credentials_lookup()

    # -- targets -------------------------------------------------------------------------

    def create_target(self, session: Session, data: TargetInput) -> TargetRecord:
        kind = (data.type or "").strip().lower()
        if kind not in (NFS, S3):
            raise InvalidInput(f"type: {data.type!r} is not one of nfs, s3.", f"{TARGET_FIELD}.type")
        now = self.clock()
        target_id = str(uuid.uuid4())
        row = BackupTargetRow(id=target_id, type=kind, immutable=False, meta=dict(data.metadata),
                              created_at=now, updated_at=now, nfs_mount_opts=data.nfs_mount_opts)
        if kind == NFS:
            self._nfs_fields(session, data, row)
        else:
            self._s3_fields(session, data, row)
        type_name = (data.btt_name or row.filesystem_export or target_id).strip()
        self._check_type_name(session, type_name, f"{TARGET_FIELD}.btt_name")
        # Open the target as the registry will, and write its marker: an API answer of 200
        # means workloads can be placed on it.
        target = open_target(self._settings_for_new(row))
        if data.immutable:
            self._check_immutable(target)
            row.immutable = True
        self._check_unmarked(target, kind)
        try:
            target.init()
        except CairnError as exc:
            raise Conflict(f"Backup target {row.filesystem_export}: {exc.message}") from exc
        session.add(row)
        session.flush()
        self._add_type(session, TypeInput(name=type_name, backup_target=target_id), user_id=None, now=now)
        if data.is_default:
            self._set_default_target(session, target_id)
        session.flush()
        return self.get_target(session, target_id)

    def _nfs_fields(self, session: Session, data: TargetInput, row: BackupTargetRow) -> None:
        for name, value in (("s3_endpoint_url", data.s3_endpoint_url), ("s3_bucket", data.s3_bucket),
                            ("s3_region_name", data.s3_region), ("s3_prefix", data.s3_prefix),
                            ("secret_ref", data.secret_ref)):
            if value is not None:
                raise InvalidInput(f"{name}: only an s3 target has it; this one is nfs.", f"{TARGET_FIELD}.{name}")
        if data.immutable:
            raise InvalidInput("immutable: an nfs target cannot enforce immutability (a file on a share "
                               "can always be removed); only an s3 bucket with Object Lock enabled can.",
                               f"{TARGET_FIELD}.immutable")
        export = (data.filesystem_export or "").strip()
        if not export:
            raise InvalidInput("filesystem_export: required for an nfs target (host:/export).",
                               f"{TARGET_FIELD}.filesystem_export")
        if not _EXPORT.fullmatch(export):
            raise InvalidInput(f"filesystem_export: {export!r} is not of the form host:/export.",
                               f"{TARGET_FIELD}.filesystem_export")
        mount = Path(data.mount_path) if data.mount_path else _default_mount_path(self.data_dir, export)
        where = f"{TARGET_FIELD}.filesystem_export_mount_path"
        if not mount.is_absolute() or ".." in mount.parts:
            raise InvalidInput(f"filesystem_export_mount_path: {str(mount)!r} must be an absolute path "
                               "without '..'.", where)
        mount = Path(os.path.normpath(mount))
        for other in self.list_targets(session, with_status=False):
            if other.filesystem_export == export:
                raise InvalidInput(f"filesystem_export: {export} is already backup target {other.id}.",
                                   f"{TARGET_FIELD}.filesystem_export")
            if other.mount_path and Path(other.mount_path) == mount:
                raise InvalidInput(f"filesystem_export_mount_path: {mount} is already backup target "
                                   f"{other.id}.", where)
        if not mount.is_dir():
            raise InvalidInput(f"filesystem_export_mount_path: {mount} is not a directory on this host; "
                               f"mount {export} there first.", where)
        row.filesystem_export = export
        row.mount_path = str(mount)

    def _s3_fields(self, session: Session, data: TargetInput, row: BackupTargetRow) -> None:
        for name, value in (("filesystem_export", data.filesystem_export),
                            ("filesystem_export_mount_path", data.mount_path),
                            ("nfs_mount_opts", data.nfs_mount_opts)):
            if value is not None:
                raise InvalidInput(f"{name}: only an nfs target has it; this one is s3.", f"{TARGET_FIELD}.{name}")
        endpoint = (data.s3_endpoint_url or "").strip().rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidInput("s3_endpoint_url: required for an s3 target, an http:// or https:// URL.",
                               f"{TARGET_FIELD}.s3_endpoint_url")
        bucket = (data.s3_bucket or "").strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,254}", bucket):
            raise InvalidInput(f"s3_bucket: {data.s3_bucket!r} is not a bucket name (lowercase letters, digits, "
                               "'.', '-', 3 to 255 characters).", f"{TARGET_FIELD}.s3_bucket")
        if not data.secret_ref:
            raise InvalidInput("secret_ref: required for an s3 target (the secret holding its keys).",
                               f"{TARGET_FIELD}.secret_ref")
        prefix = (data.s3_prefix or "").strip().strip("/")
        if prefix and any(part in ("", ".", "..") or part.startswith(".tmp-") for part in prefix.split("/")):
            raise InvalidInput(f"s3_prefix: {prefix!r} must be a relative key without '.', '..', empty or "
                               "'.tmp-' segments.", f"{TARGET_FIELD}.s3_prefix")
        row.s3_endpoint_url = endpoint
        row.s3_bucket = bucket
        row.s3_region = (data.s3_region or "us-east-1").strip()
        row.s3_prefix = prefix or None
        row.secret_ref = check_reference(data.secret_ref)
        row.filesystem_export = f"{endpoint.split('://', 1)[1]}/{bucket}" + (f"/{prefix}" if prefix else "")
        for other in self.list_targets(session, with_status=False):
            if other.filesystem_export == row.filesystem_export:
                raise InvalidInput(f"s3_bucket: {row.filesystem_export} is already backup target {other.id}.",
                                   f"{TARGET_FIELD}.s3_bucket")

    def _check_unmarked(self, target: BackupTarget | S3BackupTarget, kind: str) -> None:
        """Refuse, naming the field to fix, a place that is not an empty target's: a
        missing bucket, keys the server refuses, another target's marker."""
        state = target.state()
        if state.state == marker.UNMARKED:
            return
        if kind == NFS:
            where = "filesystem_export_mount_path"
        else:
            where = {marker.MISSING: "s3_bucket", marker.FOREIGN: "s3_prefix"}.get(state.state, "secret_ref")
        raise InvalidInput(f"{where}: {state.path} cannot become a new backup target: {state.detail}.",
                           f"{TARGET_FIELD}.{where}")

    def _settings_for_new(self, row: BackupTargetRow) -> TargetSettings:
        return target_settings(row, self.credentials)

    def _check_immutable(self, target: BackupTarget | S3BackupTarget) -> None:
        assert isinstance(target, S3BackupTarget)
        try:
            locked = target.root.object_lock_enabled()
        except CairnError as exc:
            raise InvalidInput(f"immutable: cannot ask bucket {target.root.bucket} whether Object Lock is "
                               f"enabled: {exc.message}", f"{TARGET_FIELD}.immutable") from exc
        if not locked:
            raise InvalidInput(f"immutable: bucket {target.root.bucket} at {target.root.settings.endpoint} "
                               "does not report S3 Object Lock enabled, so its objects could be removed; "
                               "create the bucket with Object Lock, or leave immutable out.",
                               f"{TARGET_FIELD}.immutable")

    def list_targets(self, session: Session, with_status: bool = True) -> list[TargetRecord]:
        """The configured targets (configuration order), then the created ones (oldest first)."""
        default = self._default_target(session)
        types = self._types_by_target(session)
        records = [self._configured(name, default, types, with_status) for name in self._configured_names()]
        rows = session.scalars(select(BackupTargetRow).order_by(BackupTargetRow.created_at, BackupTargetRow.id))
        records += [self._created(row, default, types, with_status) for row in rows]
        return records

    def names_matching(self, session: Session, share: str) -> list[str]:
        """The targets a workload list's `nfs_share` filter means: configured ones by name,
        export or path; created ones by id, export or mount path."""
        created = session.scalars(select(BackupTargetRow.id).where(or_(
            BackupTargetRow.id == share, BackupTargetRow.filesystem_export == share,
            BackupTargetRow.mount_path == share)))
        return self.targets.names_matching(share) + list(created)

    def get_target(self, session: Session, target_id: str) -> TargetRecord:
        default = self._default_target(session)
        types = self._types_by_target(session)
        if self.targets.is_configured(target_id):
            return self._configured(target_id, default, types, True)
        row = session.get(BackupTargetRow, target_id)
        if row is None:
            raise NotFound(f"Backup target {target_id} could not be found.")
        return self._created(row, default, types, True)

    def delete_target(self, session: Session, target_id: str) -> None:
        if self.targets.is_configured(target_id):
            raise Conflict(f"Backup target {target_id} comes from the configuration file; remove its "
                           f"[target:{target_id}] section there instead.")
        row = session.get(BackupTargetRow, target_id, with_for_update=True)
        if row is None:
            raise NotFound(f"Backup target {target_id} could not be found.")
        holding = session.scalar(select(func.count()).select_from(Workload).where(
            Workload.backup_target == target_id, Workload.deleted.is_(False)))
        if holding:
            raise Conflict(f"Backup target {target_id} holds {holding} workload(s); delete them first.")
        type_ids = list(session.scalars(select(BackupTargetTypeRow.id)
                                        .where(BackupTargetTypeRow.backup_target == target_id)))
        if type_ids:
            session.execute(delete(BackupTargetTypeProject).where(BackupTargetTypeProject.type_id.in_(type_ids)))
            session.execute(delete(BackupTargetTypeRow).where(BackupTargetTypeRow.id.in_(type_ids)))
        if self._default_target(session) == target_id:
            session.execute(delete(ServiceSetting).where(ServiceSetting.key == _DEFAULT_KEY))
        session.delete(row)
        session.flush()
        self.targets.forget(target_id)

    def set_default_target(self, session: Session, target_id: str) -> TargetRecord:
        self.get_target(session, target_id)  # 404 for an unknown one
        self._set_default_target(session, target_id)
        session.flush()
        return self.get_target(session, target_id)

    def _set_default_target(self, session: Session, target_id: str) -> None:
        row = session.get(ServiceSetting, _DEFAULT_KEY, with_for_update=True)
        if row is None:
            session.add(ServiceSetting(key=_DEFAULT_KEY, value=target_id))
        else:
            row.value = target_id

    def _default_target(self, session: Session) -> str | None:
        return session.scalar(select(ServiceSetting.value).where(ServiceSetting.key == _DEFAULT_KEY))

    def _configured_names(self) -> list[str]:
        return [target.name for target in self.targets]

    def _exists(self, session: Session, target: str) -> bool:
        return self.targets.is_configured(target) or session.get(BackupTargetRow, target) is not None

    def _configured(self, name: str, default: str | None, types: dict[str, list[TargetTypeRecord]],
                    with_status: bool) -> TargetRecord:
        target = self.targets.get(name)
        status, capacity, used = _usage(target) if with_status else ("unknown", None, None)
        if isinstance(target, S3BackupTarget):
            s3 = target.root.settings
            return TargetRecord(id=name, type=S3, source=FROM_CONFIGURATION, filesystem_export=target.label,
                                mount_path=None, is_default=default == name, status=status, capacity=None,
                                used=None, s3_endpoint_url=s3.endpoint, s3_bucket=s3.bucket, s3_region=s3.region,
                                s3_prefix=s3.prefix or None, types=tuple(types.get(name, ())))
        return TargetRecord(id=name, type=NFS, source=FROM_CONFIGURATION, filesystem_export=target.export,
                            mount_path=str(target.path), is_default=default == name, status=status,
                            capacity=capacity, used=used, types=tuple(types.get(name, ())))

    def _created(self, row: BackupTargetRow, default: str | None, types: dict[str, list[TargetTypeRecord]],
                 with_status: bool) -> TargetRecord:
        status: str = "unknown"
        capacity = used = None
        if with_status:
            try:
                try:
                    opened = self.targets.get(row.id)
                except NotFound:  # created in this unit of work: not committed yet
                    opened = open_target(self._settings_for_new(row))
                status, capacity, used = _usage(opened)
            except CairnError:  # its secret cannot be read now: the target cannot be used
                status = "offline"
        return TargetRecord(id=row.id, type=row.type, source=FROM_API, filesystem_export=row.filesystem_export,
                            mount_path=row.mount_path, is_default=default == row.id, status=status,
                            capacity=capacity, used=used, created_at=row.created_at, updated_at=row.updated_at,
                            nfs_mount_opts=row.nfs_mount_opts, s3_endpoint_url=row.s3_endpoint_url,
                            s3_bucket=row.s3_bucket, s3_region=row.s3_region, s3_prefix=row.s3_prefix,
                            secret_ref=row.secret_ref, immutable=row.immutable, metadata=dict(row.meta or {}),
                            types=tuple(types.get(row.id, ())))

    # -- types ---------------------------------------------------------------------------

    def create_type(self, session: Session, data: TypeInput, user_id: str | None) -> TargetTypeRecord:
        name = (data.name or "").strip()
        if not name:
            raise InvalidInput("name: required, 1 to 255 characters.", f"{TYPE_FIELD}.name")
        self._check_type_name(session, name, f"{TYPE_FIELD}.name")
        if not self._exists(session, data.backup_target):
            raise InvalidInput(f"backup_targets_id: backup target {data.backup_target} could not be found.",
                               f"{TYPE_FIELD}.backup_targets_id")
        _check_projects(data.projects, f"{TYPE_FIELD}.project_list")
        if data.is_public and data.projects:
            raise InvalidInput("project_list: a public type is open to every project; give projects only "
                               "with is_public false.", f"{TYPE_FIELD}.project_list")
        type_id = self._add_type(session, TypeInput(name=name, backup_target=data.backup_target,
                                                    description=data.description, is_public=data.is_public,
                                                    projects=data.projects, metadata=data.metadata),
                                 user_id=user_id, now=self.clock())
        if data.is_default:
            self._set_default_type(session, type_id)
        session.flush()
        return self.get_type(session, type_id, None)

    def _add_type(self, session: Session, data: TypeInput, user_id: str | None, now: datetime) -> str:
        type_id = str(uuid.uuid4())
        session.add(BackupTargetTypeRow(id=type_id, name=data.name, description=data.description,
                                        backup_target=data.backup_target, is_public=data.is_public,
                                        is_default=False, user_id=user_id, meta=dict(data.metadata),
                                        created_at=now, updated_at=now))
        session.flush()
        for project in dict.fromkeys(data.projects):
            session.add(BackupTargetTypeProject(type_id=type_id, project_id=project, created_at=now))
        return type_id

    def _check_type_name(self, session: Session, name: str, field_name: str) -> None:
        if len(name) > 255:
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: at most 255 characters.", field_name)
        taken = session.scalar(select(BackupTargetTypeRow.id).where(BackupTargetTypeRow.name == name))
        if taken:
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: backup target type {name!r} already exists "
                               f"({taken}).", field_name)

    def list_types(self, session: Session, project_scope: str | None) -> list[TargetTypeRecord]:
        """Every type (admins: `project_scope` None), or those a project may use."""
        query = select(BackupTargetTypeRow).order_by(BackupTargetTypeRow.created_at, BackupTargetTypeRow.id)
        if project_scope is not None:
            assigned = select(BackupTargetTypeProject.type_id).where(
                BackupTargetTypeProject.project_id == project_scope)
            query = query.where(or_(BackupTargetTypeRow.is_public.is_(True), BackupTargetTypeRow.id.in_(assigned)))
        rows = list(session.scalars(query))
        projects = self._projects(session, [row.id for row in rows])
        return [_type_record(row, projects.get(row.id, ())) for row in rows]

    def get_type(self, session: Session, type_id: str, project_scope: str | None) -> TargetTypeRecord:
        row = session.get(BackupTargetTypeRow, type_id)
        if row is not None:
            record = _type_record(row, self._projects(session, [row.id]).get(row.id, ()))
            if project_scope is None or record.is_public or project_scope in record.projects:
                return record
        raise NotFound(f"Backup target type {type_id} could not be found.")

    def delete_type(self, session: Session, type_id: str) -> None:
        row = session.get(BackupTargetTypeRow, type_id, with_for_update=True)
        if row is None:
            raise NotFound(f"Backup target type {type_id} could not be found.")
        session.execute(delete(BackupTargetTypeProject).where(BackupTargetTypeProject.type_id == type_id))
        session.delete(row)
        session.flush()

    def change_projects(self, session: Session, type_id: str, add: list[str], remove: list[str],
                        field_name: str) -> TargetTypeRecord:
        row = session.get(BackupTargetTypeRow, type_id, with_for_update=True)
        if row is None:
            raise NotFound(f"Backup target type {type_id} could not be found.")
        _check_projects(add or remove, field_name)
        if not (add or remove):
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: at least one project id is required.", field_name)
        if add and row.is_public:
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: backup target type {row.name} is public, open "
                               "to every project; projects are assigned to a type that is not public.", field_name)
        now = self.clock()
        current = set(self._projects(session, [type_id]).get(type_id, ()))
        for project in dict.fromkeys(add):
            if project not in current:
                session.add(BackupTargetTypeProject(type_id=type_id, project_id=project, created_at=now))
        if remove:
            session.execute(delete(BackupTargetTypeProject).where(
                BackupTargetTypeProject.type_id == type_id, BackupTargetTypeProject.project_id.in_(remove)))
        row.updated_at = now
        session.flush()
        return self.get_type(session, type_id, None)

    def set_default_type(self, session: Session, type_id: str) -> TargetTypeRecord:
        if session.get(BackupTargetTypeRow, type_id) is None:
            raise NotFound(f"Backup target type {type_id} could not be found.")
        self._set_default_type(session, type_id)
        session.flush()
        return self.get_type(session, type_id, None)

    def _set_default_type(self, session: Session, type_id: str) -> None:
        for row in session.scalars(select(BackupTargetTypeRow).where(
                or_(BackupTargetTypeRow.is_default.is_(True), BackupTargetTypeRow.id == type_id))
                .with_for_update()):
            row.is_default = row.id == type_id

    def _projects(self, session: Session, type_ids: list[str]) -> dict[str, tuple[str, ...]]:
        if not type_ids:
            return {}
        found: dict[str, list[str]] = {}
        for type_id, project in session.execute(
                select(BackupTargetTypeProject.type_id, BackupTargetTypeProject.project_id)
                .where(BackupTargetTypeProject.type_id.in_(type_ids))
                .order_by(BackupTargetTypeProject.id)):
            found.setdefault(type_id, []).append(project)
        return {key: tuple(value) for key, value in found.items()}

    def _types_by_target(self, session: Session) -> dict[str, list[TargetTypeRecord]]:
        by_target: dict[str, list[TargetTypeRecord]] = {}
        for record in self.list_types(session, None):
            by_target.setdefault(record.backup_target, []).append(record)
        return by_target

    # -- placement -------------------------------------------------------------------------

    def place(self, session: Session, project_id: str, wanted_type: str | None,
              wanted_target: str | None) -> tuple[BackupTarget | S3BackupTarget, str | None]:
        """The target a new workload of `project_id` lives on, and the type it came by."""
        if wanted_type is not None:
            record = self._usable_type(session, wanted_type, project_id)
            target = self._open(record.backup_target, WORKLOAD_FIELD)
            if wanted_target is not None and self.targets.resolve(wanted_target).name != target.name:
                raise InvalidInput(f"backup_target_types: type {record.name} is on backup target {target.name}, "
                                   f"not on metadata.backup_media_target {wanted_target!r}; give one of them.",
                                   WORKLOAD_FIELD)
            return target, record.id
        if wanted_target is not None:
            return self._resolve(wanted_target), None
        default_type = session.scalar(select(BackupTargetTypeRow).where(BackupTargetTypeRow.is_default.is_(True)))
        if default_type is not None:
            projects = self._projects(session, [default_type.id]).get(default_type.id, ())
            if default_type.is_public or project_id in projects:
                return self._open(default_type.backup_target, WORKLOAD_FIELD), default_type.id
        default = self._default_target(session)
        if default is not None:
            return self._open(default, WORKLOAD_FIELD), None
        return self.targets.choose(), None

    def _usable_type(self, session: Session, wanted: str, project_id: str) -> TargetTypeRecord:
        row = session.get(BackupTargetTypeRow, wanted) or session.scalar(
            select(BackupTargetTypeRow).where(BackupTargetTypeRow.name == wanted))
        if row is None:
            raise InvalidInput(f"backup_target_types: backup target type {wanted} could not be found.",
                               WORKLOAD_FIELD)
        record = _type_record(row, self._projects(session, [row.id]).get(row.id, ()))
        if not record.is_public and project_id not in record.projects:
            raise InvalidInput(f"backup_target_types: backup target type {record.name} ({record.id}) is neither "
                               f"public nor assigned to project {project_id}.", WORKLOAD_FIELD)
        return record

    def _open(self, name: str, field_name: str) -> BackupTarget | S3BackupTarget:
        try:
            return self.targets.get(name)
        except NotFound:
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: backup target {name} no longer exists.",
                               field_name) from None

    def _resolve(self, wanted: str) -> BackupTarget | S3BackupTarget:
        """An admin's `metadata.backup_media_target`: a configured target (name, export or
        path), or a created one by id or export."""
        try:
            return self.targets.resolve(wanted)
        except InvalidInput:
            try:
                return self.targets.get(wanted)
            except (NotFound, InvalidInput):
                raise InvalidInput(f"metadata.backup_media_target: no backup target is named {wanted!r}.",
                                   "workload.metadata.backup_media_target") from None


def _check_projects(projects: tuple[str, ...] | list[str], field_name: str) -> None:
    for project in projects:
        if not isinstance(project, str) or not project.strip() or len(project) > 64:
            raise InvalidInput(f"{field_name.rsplit('.', 1)[-1]}: {project!r} is not a project id (1 to 64 "
                               "characters).", field_name)


def _type_record(row: BackupTargetTypeRow, projects: tuple[str, ...]) -> TargetTypeRecord:
    return TargetTypeRecord(id=row.id, name=row.name, description=row.description,
                            backup_target=row.backup_target, is_public=row.is_public, is_default=row.is_default,
                            user_id=row.user_id, metadata=dict(row.meta or {}), created_at=row.created_at,
                            updated_at=row.updated_at, projects=projects)


def _usage(target: BackupTarget | S3BackupTarget) -> tuple[str, int | None, int | None]:
    """`available` or `offline` (its marker checks or not), and a directory's size and use."""
    ready = target.state().ready
    status = "available" if ready else "offline"
    if isinstance(target, S3BackupTarget) or not ready:
        return status, None, None
    stats = os.statvfs(target.path)
    capacity = stats.f_blocks * stats.f_frsize
    return status, capacity, capacity - stats.f_bfree * stats.f_frsize


def human_size(size: int | None) -> str | None:
    """Trilio's `capacity` and `used` form: "2.4 TB"."""
    if size is None:
        return None
    if size < 1024:
        return f"{size} B"
    exponent = min(int(math.log(size, 1024)), 5)
    return f"{size / 1024 ** exponent:.1f} {('B', 'KB', 'MB', 'GB', 'TB', 'PB')[exponent]}"
