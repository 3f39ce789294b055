"""The JSON shapes of backup targets and backup target types (Trilio 6.x's keys)."""

from __future__ import annotations

from typing import Any

from cairn import __version__
from cairn.clock import isoformat
from cairn.workloads.backup_targets import S3, TargetRecord, TargetTypeRecord, human_size


def target_type(t: TargetTypeRecord, detail: bool = True) -> dict[str, Any]:
    if not detail:
        return {"id": t.id, "name": t.name, "is_public": t.is_public, "is_default": t.is_default}
    return {
        "id": t.id,
        "created_at": isoformat(t.created_at),
        "updated_at": isoformat(t.updated_at),
        "version": __version__,
        "user_id": t.user_id,
        "name": t.name,
        "description": t.description,
        "backup_targets_id": t.backup_target,
        "is_public": t.is_public,
        "is_default": t.is_default,
        "projects": list(t.projects),
        "metadata": dict(t.metadata),
    }


def target(t: TargetRecord, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": t.id,
        "type": t.type,
        "source": t.source,
        "created_at": isoformat(t.created_at),
        "updated_at": isoformat(t.updated_at),
        "version": __version__,
        "filesystem_export": t.filesystem_export,
        "filesystem_export_mount_path": t.mount_path,
        "is_default": t.is_default,
        "capacity": human_size(t.capacity),
        "used": human_size(t.used),
        "status": t.status,
        "immutable": t.immutable,
        "metadata": dict(t.metadata),
        "backup_target_types": [target_type(bt) for bt in t.types],
    }
    if t.type == S3:
        body.update({"s3_endpoint_url": t.s3_endpoint_url, "s3_bucket": t.s3_bucket,
                     "s3_region_name": t.s3_region, "s3_prefix": t.s3_prefix, "secret_ref": t.secret_ref})
    else:
        body["nfs_mount_opts"] = t.nfs_mount_opts
    if not detail:
        return {key: body[key] for key in ("id", "type", "filesystem_export", "is_default", "status")}
    return body
