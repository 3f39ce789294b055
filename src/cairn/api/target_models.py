"""Request and response models of the backup target and backup target type routes
(docs/backup_targets.md); field names are Trilio 6.x's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cairn.api.models import Metadata, MetadataField, Scalar, Strict, Text

Path = Field(default=None, min_length=1, max_length=1024)


class BackupTargetBody(Strict):
    type: str = Field(min_length=1, max_length=16)
    filesystem_export: str | None = Path
    #: Cairn: where the export is mounted on every Cairn host (default: under data_dir/mounts)
    filesystem_export_mount_path: str | None = Path
    nfs_mount_opts: str | None = Path
    s3_endpoint_url: str | None = Path
    s3_bucket: str | None = Field(default=None, min_length=1, max_length=255)
    s3_region_name: str | None = Field(default=None, min_length=1, max_length=64)
    #: Cairn: keys go under this prefix of the bucket
    s3_prefix: str | None = Path
    secret_ref: str | None = Path
    is_default: Scalar | None = None
    immutable: Scalar | None = None
    btt_name: str | None = Field(default=None, min_length=1, max_length=255)
    metadata: Metadata | None = MetadataField


class BackupTargetCreateRequest(Strict):
    backup_target: BackupTargetBody


class BackupTargetTypeBody(Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Text
    backup_targets_id: str = Field(min_length=1, max_length=255)
    is_public: Scalar | None = None
    is_default: Scalar | None = None
    project_list: list[str] | None = Field(default=None, max_length=1000)
    backup_target_type_metadata: Metadata | None = MetadataField
    metadata: Metadata | None = MetadataField


class BackupTargetTypeCreateRequest(Strict):
    backup_target_type: BackupTargetTypeBody


class AddProjectsRequest(Strict):
    add_projects: list[str] = Field(max_length=1000)


class RemoveProjectsRequest(Strict):
    remove_projects: list[str] = Field(max_length=1000)


# -- responses ---------------------------------------------------------------------------


class BackupTargetTypeOut(BaseModel):
    id: str
    name: str
    description: str | None
    backup_targets_id: str
    is_public: bool
    is_default: bool
    user_id: str | None
    created_at: str | None
    updated_at: str | None
    version: str
    metadata: dict[str, str]
    projects: list[str] | None = None


class BackupTargetOut(BaseModel):
    id: str
    type: str
    source: str
    created_at: str | None
    updated_at: str | None
    version: str
    filesystem_export: str | None
    filesystem_export_mount_path: str | None
    is_default: bool
    capacity: str | None
    used: str | None
    status: str
    immutable: bool
    metadata: dict[str, str]
    backup_target_types: list[BackupTargetTypeOut]
    model_config = {"extra": "allow"}


class BackupTargetOne(BaseModel):
    backup_targets: BackupTargetOut


class BackupTargetList(BaseModel):
    backup_targets: list[BackupTargetOut]


class BackupTargetTypeOne(BaseModel):
    backup_target_types: BackupTargetTypeOut


class BackupTargetTypeList(BaseModel):
    backup_target_types: list[dict[str, Any]]
